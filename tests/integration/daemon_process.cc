#include "daemon_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace lorad::testing {
namespace {

constexpr char kListening[] = "lorad listening on ";
constexpr char kHttp[] = "lorad http on ";

bool WaitExit(pid_t pid, absl::Duration timeout, int* status) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    pid_t r = ::waitpid(pid, status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

}  // namespace

std::string LoradBinary() { return LORAD_BINARY_DIR "/server/lorad"; }
std::string WorkerBinary() { return LORAD_BINARY_DIR "/worker/lorad-worker"; }
bool WorkerBuilt() { return ::access(WorkerBinary().c_str(), X_OK) == 0; }

absl::StatusOr<std::unique_ptr<DaemonProcess>> StartWithWorker(
    const std::string& data_dir, const std::vector<std::string>& extra_flags) {
  std::vector<std::string> flags = {
      absl::StrCat("--worker_binary=", WorkerBinary())};
  flags.insert(flags.end(), extra_flags.begin(), extra_flags.end());
  return DaemonProcess::Start(data_dir, flags);
}

TempDir::TempDir() {
  char pattern[] = "/tmp/lorad-it-XXXXXX";
  const char* made = ::mkdtemp(pattern);
  path_ = made == nullptr ? "/tmp/lorad-it-fallback" : made;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

absl::StatusOr<std::unique_ptr<DaemonProcess>> DaemonProcess::Start(
    const std::string& data_dir, const std::vector<std::string>& extra_flags,
    absl::Duration timeout) {
  // Metrics on a free port too, so that daemons of concurrent tests do not
  // contend for the default one; a later --metrics_address overrides it.
  std::vector<std::string> args = {
      LoradBinary(), "--address=127.0.0.1:0", "--metrics_address=127.0.0.1:0",
      "--http_address=127.0.0.1:0", absl::StrCat("--data_dir=", data_dir)};
  args.insert(args.end(), extra_flags.begin(), extra_flags.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(fds[1]);

  // Read stdout until the listening line (lorad prints nothing else there).
  std::string out;
  std::string address;
  const absl::Time deadline = absl::Now() + timeout;
  while (address.empty()) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left))) <= 0) {
      continue;
    }
    char buf[512];
    ssize_t n = ::read(fds[0], buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    size_t at = out.find(kListening);
    if (at == std::string::npos) continue;
    size_t end = out.find('\n', at);
    if (end == std::string::npos) continue;
    at += std::strlen(kListening);
    address = out.substr(at, end - at);
  }
  // "lorad http on ADDR" comes before the listening line when HTTP is on.
  std::string http_address;
  if (size_t h = out.find(kHttp); h != std::string::npos) {
    h += std::strlen(kHttp);
    http_address = out.substr(h, out.find('\n', h) - h);
  }
  ::close(fds[0]);
  if (address.empty()) {
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return absl::UnavailableError(
        absl::StrCat("lorad did not report its address; stdout: ", out));
  }
  auto process =
      std::unique_ptr<DaemonProcess>(new DaemonProcess(pid, address));
  process->http_address_ = std::move(http_address);
  return process;
}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0) Terminate();
}

void DaemonProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

int DaemonProcess::Terminate(absl::Duration grace) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  if (!WaitExit(pid_, grace, &status)) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    status = -1;
  }
  pid_ = -1;
  return status;
}

bool ProcessRunning(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat) return false;
  std::string line;
  std::getline(stat, line);
  // pid (comm) STATE ...; comm may hold spaces, so look after the last ')'.
  size_t paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return false;
  const char state = line[paren + 2];
  return state != 'Z' && state != 'X';
}

}  // namespace lorad::testing
