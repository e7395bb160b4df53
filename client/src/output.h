// Where loractl's output goes: human text or one JSON object per line on
// stdout, errors on stderr, and the exit codes that scripts rely on.
#ifndef LORAD_CLIENT_OUTPUT_H_
#define LORAD_CLIENT_OUTPUT_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "nlohmann/json.hpp"

namespace lorad::client {

// Process exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;      // Server-side error, failed job.
inline constexpr int kExitUsage = 2;        // Bad command line.
inline constexpr int kExitUnavailable = 3;  // Could not reach the daemon.

// kExitUnavailable for UNAVAILABLE and DEADLINE_EXCEEDED, kExitOk for OK,
// kExitFailure for everything else.
int ExitCodeFor(const absl::Status& status);

// "loractl: NOT_FOUND: job ft-1 not found".
std::string ErrorLine(const absl::Status& status);

// {"error":{"code":"NOT_FOUND","message":"..."}}
nlohmann::json ErrorJson(const absl::Status& status);

// A protobuf message as a single-line JSON object with the proto's field
// names (snake_case) and zero values included, so scripts see every field.
std::string MessageToJsonLine(const google::protobuf::Message& message);

// Writes to stdout/stderr in the mode the user chose. Not thread-safe.
class Output {
 public:
  Output(bool json, bool stdout_is_tty, bool stderr_is_tty);

  bool json() const { return json_; }
  // Live, redrawn lines (progress bars) belong on stdout.
  bool live_stdout() const { return !json_ && stdout_is_tty_; }
  // Live lines (upload progress) belong on stderr.
  bool live_stderr() const { return !json_ && stderr_is_tty_; }

  void PrintJson(const google::protobuf::Message& message);
  void PrintJson(const nlohmann::json& value);
  // Writes `text` to stdout as is and flushes.
  void Print(std::string_view text);
  // Writes `text` to stderr as is and flushes.
  void PrintErr(std::string_view text);

  // Reports `status` (stderr; also stdout as JSON in JSON mode) and returns
  // its exit code.
  int Fail(const absl::Status& status);

  // Reports a bad command line for `command` (with a pointer to its help)
  // and returns kExitUsage.
  int UsageFail(const absl::Status& status, std::string_view command);

 private:
  bool json_;
  bool stdout_is_tty_;
  bool stderr_is_tty_;
};

}  // namespace lorad::client

#endif  // LORAD_CLIENT_OUTPUT_H_
