#include "auth_util.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace lorad::testing {
namespace {

std::string Sha256Of(const std::string& token) {
  CommandResult result =
      RunCommand(absl::StrCat("printf %s '", token, "' | sha256sum"));
  return result.output.substr(0, 64);
}

}  // namespace

void WriteTokensFile(const std::string& path,
                     const std::map<std::string, std::string>& tokens) {
  std::string text = "# written by the test\n";
  for (const auto& [token, who] : tokens) {
    absl::StrAppend(&text, "sha256:", Sha256Of(token), " ", who, "\n");
  }
  std::string tmp = path + ".tmp";
  std::ofstream(tmp) << text;
  std::rename(tmp.c_str(), path.c_str());
}

std::unique_ptr<grpc::ClientContext> AuthContext(const std::string& token,
                                                 absl::Duration timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return context;
}

absl::StatusOr<std::unique_ptr<DaemonProcess>> StartLogged(
    const std::string& data_dir, const std::vector<std::string>& flags,
    const std::string& stderr_path) {
  // The child inherits fd 2 at fork; point it at the file for that moment.
  std::fflush(stderr);
  const int saved = ::dup(STDERR_FILENO);
  const int log =
      ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ::dup2(log, STDERR_FILENO);
  ::close(log);
  auto daemon = DaemonProcess::Start(data_dir, flags);
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  return daemon;
}

bool WaitForText(const std::string& path, const std::string& text,
                 absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    std::ifstream in(path);
    std::stringstream contents;
    contents << in.rdbuf();
    if (contents.str().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen(absl::StrCat(command, " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) {
    result.output.append(buf, n);
  }
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string MetricsUrl(const std::string& stderr_path) {
  if (!WaitForText(stderr_path, "/metrics\n")) return "";
  std::ifstream in(stderr_path);
  std::string line, url;
  const std::string prefix = "lorad: metrics on ";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) url = line.substr(prefix.size());
  }
  return url;
}

}  // namespace lorad::testing
