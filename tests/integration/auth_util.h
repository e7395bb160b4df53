// Helpers of the auth_*/tls_* integration tests: token files, authorized
// contexts, a daemon whose stderr goes to a file.
#ifndef LORAD_TESTS_INTEGRATION_AUTH_UTIL_H_
#define LORAD_TESTS_INTEGRATION_AUTH_UTIL_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon_process.h"
#include "grpcpp/client_context.h"

namespace lorad::testing {

// "sha256:<hex of token> name role" lines for `tokens` (token -> "name
// role"), written to `path`.
void WriteTokensFile(const std::string& path,
                     const std::map<std::string, std::string>& tokens);

// A context with "authorization: Bearer <token>" (none when token is "")
// and a deadline `timeout` from now.
std::unique_ptr<grpc::ClientContext> AuthContext(
    const std::string& token, absl::Duration timeout = absl::Seconds(30));

// DaemonProcess::Start with lorad's stderr written to `stderr_path`.
absl::StatusOr<std::unique_ptr<DaemonProcess>> StartLogged(
    const std::string& data_dir, const std::vector<std::string>& flags,
    const std::string& stderr_path);

// Polls `path` until it contains `text` or `timeout` passes.
bool WaitForText(const std::string& path, const std::string& text,
                 absl::Duration timeout = absl::Seconds(60));

// The /metrics URL lorad logged to `stderr_path` ("lorad: metrics on URL"),
// waiting for it up to a minute; empty when it never came.
std::string MetricsUrl(const std::string& stderr_path);

// Runs `command` through the shell; its exit status and output (stdout and
// stderr).
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult RunCommand(const std::string& command);

}  // namespace lorad::testing

#endif  // LORAD_TESTS_INTEGRATION_AUTH_UTIL_H_
