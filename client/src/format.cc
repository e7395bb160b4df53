#include "format.h"

#include <cmath>
#include <ctime>

#include "absl/strings/str_format.h"

namespace lorad::client {

std::string HumanBytes(int64_t bytes) {
  if (bytes < 0) return "-";
  if (bytes < 1024) return absl::StrFormat("%d B", bytes);
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes) / 1024.0;
  size_t unit = 0;
  // Round first so that 1023.96 KiB becomes "1.0 MiB", not "1024.0 KiB".
  while (std::round(value * 10) / 10 >= 1024.0 &&
         unit + 1 < std::size(kUnits)) {
    value /= 1024.0;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 3.6e9) {
    return "--:--:--";
  }
  int64_t total = static_cast<int64_t>(std::llround(seconds));
  return absl::StrFormat("%02d:%02d:%02d", total / 3600, (total / 60) % 60,
                         total % 60);
}

std::string FormatUnixTime(int64_t unix_seconds) {
  if (unix_seconds <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  if (localtime_r(&t, &tm) == nullptr) return "-";
  char buf[32];
  if (std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm) == 0) {
    return "-";
  }
  return buf;
}

std::string JobStateName(lorad::v1::JobState state) {
  if (!lorad::v1::JobState_IsValid(state)) return "UNKNOWN";
  if (state == lorad::v1::JOB_STATE_UNSPECIFIED) return "UNSPECIFIED";
  return lorad::v1::JobState_Name(state);
}

bool IsFinalState(lorad::v1::JobState state) {
  return state == lorad::v1::SUCCEEDED || state == lorad::v1::FAILED ||
         state == lorad::v1::CANCELLED;
}

std::string PercentDelta(double actual, double reference) {
  if (!(reference > 0) || !std::isfinite(actual)) return "";
  double pct = (actual - reference) / reference * 100.0;
  return absl::StrFormat("%+.0f%%", pct);
}

}  // namespace lorad::client
