// Runs the real lorad executable as a child process for integration tests.
#ifndef LORAD_TESTS_INTEGRATION_DAEMON_PROCESS_H_
#define LORAD_TESTS_INTEGRATION_DAEMON_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace lorad::testing {

// build/server/lorad and build/worker/lorad-worker of this build tree.
std::string LoradBinary();
std::string WorkerBinary();
bool WorkerBuilt();

// A fresh directory under /tmp (short, so unix socket paths fit), removed
// with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class DaemonProcess {
 public:
  // Starts lorad on 127.0.0.1 with a free port (and /metrics on another)
  // and `data_dir`, plus `extra_flags`, and waits until it prints "lorad
  // listening on ADDR".
  static absl::StatusOr<std::unique_ptr<DaemonProcess>> Start(
      const std::string& data_dir, const std::vector<std::string>& extra_flags,
      absl::Duration timeout = absl::Seconds(60));
  // Stops it (SIGTERM, then SIGKILL) if still running.
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  const std::string& address() const { return address_; }
  // The OpenAI-compatible HTTP API's host:port ("" when off).
  const std::string& http_address() const { return http_address_; }
  pid_t pid() const { return pid_; }

  // SIGKILL and reap.
  void Kill();
  // SIGTERM and wait (SIGKILL after `grace`); the wait status, or -1.
  int Terminate(absl::Duration grace = absl::Seconds(20));

 private:
  DaemonProcess(pid_t pid, std::string address)
      : pid_(pid), address_(std::move(address)) {}

  pid_t pid_;
  std::string address_;
  std::string http_address_;
};

// DaemonProcess::Start with --worker_binary=WorkerBinary() before
// `extra_flags`.
absl::StatusOr<std::unique_ptr<DaemonProcess>> StartWithWorker(
    const std::string& data_dir,
    const std::vector<std::string>& extra_flags = {});

// True while a process with this pid exists and is not a zombie.
bool ProcessRunning(pid_t pid);

}  // namespace lorad::testing

#endif  // LORAD_TESTS_INTEGRATION_DAEMON_PROCESS_H_
