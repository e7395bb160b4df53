// Human-readable renderings of sizes, durations, times and job states.
// Pure functions; thread-safe.
#ifndef LORAD_CLIENT_FORMAT_H_
#define LORAD_CLIENT_FORMAT_H_

#include <cstdint>
#include <string>

#include "lorad/v1/lorad.pb.h"

namespace lorad::client {

// Binary units with one decimal: "0 B", "1023 B", "1.5 KiB", "2.0 GiB".
// Negative sizes render as "-".
std::string HumanBytes(int64_t bytes);

// "HH:MM:SS" (hours grow past 99 as needed); "--:--:--" when negative or
// not finite, meaning "unknown".
std::string FormatDuration(double seconds);

// Local time as "YYYY-MM-DD HH:MM:SS"; "-" for 0 (never set).
std::string FormatUnixTime(int64_t unix_seconds);

// "RUNNING", "SUCCEEDED", ...; "UNKNOWN" for values outside the enum.
std::string JobStateName(lorad::v1::JobState state);

// Whether a job in `state` will not change again.
bool IsFinalState(lorad::v1::JobState state);

// A signed percentage difference of `actual` against `reference`, e.g.
// "+12%" or "-3%"; empty when reference is not positive.
std::string PercentDelta(double actual, double reference);

}  // namespace lorad::client

#endif  // LORAD_CLIENT_FORMAT_H_
