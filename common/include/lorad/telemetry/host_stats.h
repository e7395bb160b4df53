// Host memory and process memory read from /proc (Linux).
#ifndef LORAD_TELEMETRY_HOST_STATS_H_
#define LORAD_TELEMETRY_HOST_STATS_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "lorad/v1/lorad.pb.h"

namespace lorad::telemetry {

// MemTotal and MemAvailable of `proc_dir`/meminfo, in bytes. NotFound when
// the file cannot be read, DataLoss when it lacks either line.
absl::StatusOr<v1::HostMemory> ReadHostMemory(const std::string& proc_dir);

// Cumulative CPU time of the whole machine (the "cpu" line of
// `proc_dir`/stat), in clock ticks.
struct CpuTimes {
  int64_t busy = 0;
  int64_t total = 0;
};
absl::StatusOr<CpuTimes> ReadCpuTimes(const std::string& proc_dir);

// The resident set of process `pid` (`proc_dir`/PID/statm), in bytes.
// NotFound when the process is gone or not visible.
absl::StatusOr<int64_t> ReadProcessRss(const std::string& proc_dir, pid_t pid);

// The process's short name (`proc_dir`/PID/comm), or "" when not visible.
std::string ReadProcessName(const std::string& proc_dir, pid_t pid);

}  // namespace lorad::telemetry

#endif  // LORAD_TELEMETRY_HOST_STATS_H_
