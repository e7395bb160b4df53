// One lorad per data directory: a second daemon on the same --data_dir
// refuses to start and names the holder's pid; the lock goes with its
// holder, even one killed with SIGKILL. And a start removes the temp files
// an interrupted run left behind.
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon_process.h"
#include "gtest/gtest.h"

namespace lorad::testing {
namespace {

struct Exited {
  int status = -1;
  std::string stderr_text;
};

// Runs lorad with `flags` to its exit (killed after `timeout`), collecting
// its stderr.
Exited RunLoradToExit(const std::vector<std::string>& flags,
                      absl::Duration timeout) {
  std::vector<std::string> args = {LoradBinary()};
  args.insert(args.end(), flags.begin(), flags.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int fds[2];
  Exited exited;
  if (::pipe2(fds, O_CLOEXEC) != 0) return exited;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], STDERR_FILENO);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(fds[1]);
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left))) <= 0) {
      continue;
    }
    char buf[512];
    const ssize_t n = ::read(fds[0], buf, sizeof(buf));
    if (n <= 0) break;
    exited.stderr_text.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  ::waitpid(pid, &exited.status, 0);
  return exited;
}

class FaultsLockTest : public ::testing::Test {
 protected:
  std::string data_dir() const { return dir_.path() + "/data"; }
  std::vector<std::string> Flags() const {
    return {"--address=127.0.0.1:0", "--metrics_address=", "--http_address=",
            absl::StrCat("--data_dir=", data_dir()),
            absl::StrCat("--worker_binary=", WorkerBinary())};
  }

  TempDir dir_;
};

TEST_F(FaultsLockTest, SecondDaemonOnSameDataDirRefusesNamingTheHolder) {
  auto first = DaemonProcess::Start(data_dir(), {});
  ASSERT_TRUE(first.ok()) << first.status();

  const Exited second = RunLoradToExit(Flags(), absl::Seconds(60));
  ASSERT_TRUE(WIFEXITED(second.status))
      << "the second lorad did not exit by itself; stderr: "
      << second.stderr_text;
  EXPECT_NE(WEXITSTATUS(second.status), 0);
  EXPECT_NE(second.stderr_text.find(absl::StrCat("pid ", (*first)->pid())),
            std::string::npos)
      << second.stderr_text;
  EXPECT_NE(second.stderr_text.find("--data_dir"), std::string::npos)
      << second.stderr_text;
  // The first one is unaffected.
  EXPECT_TRUE(ProcessRunning((*first)->pid()));

  // Once it stops, the directory is free again.
  const int status = (*first)->Terminate();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  auto third = DaemonProcess::Start(data_dir(), {});
  ASSERT_TRUE(third.ok()) << third.status();
  std::ifstream lock(data_dir() + "/lock");
  pid_t written = 0;
  lock >> written;
  EXPECT_EQ(written, (*third)->pid());
}

TEST_F(FaultsLockTest, LockOfAKilledDaemonIsNotStale) {
  auto first = DaemonProcess::Start(data_dir(), {});
  ASSERT_TRUE(first.ok()) << first.status();
  (*first)->Kill();
  auto second = DaemonProcess::Start(data_dir(), {});
  ASSERT_TRUE(second.ok()) << second.status();
}

TEST_F(FaultsLockTest, StartRemovesLeftoverTempFiles) {
  std::filesystem::create_directories(data_dir() + "/datasets");
  std::filesystem::create_directories(data_dir() +
                                      "/adapter_registry/.staging/0badc0de");
  const std::string temp = data_dir() + "/datasets/abc.jsonl.tmp.4242.7";
  const std::string kept = data_dir() + "/datasets/notes.tmp.txt";
  std::ofstream(temp) << "half written";
  std::ofstream(kept) << "not a temp file";
  std::ofstream(data_dir() + "/adapter_registry/.staging/0badc0de/x")
      << "staged";

  auto daemon = DaemonProcess::Start(data_dir(), {});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  EXPECT_FALSE(std::filesystem::exists(temp));
  EXPECT_FALSE(std::filesystem::exists(data_dir() +
                                       "/adapter_registry/.staging/0badc0de"));
  EXPECT_TRUE(std::filesystem::exists(kept));
}

}  // namespace
}  // namespace lorad::testing
