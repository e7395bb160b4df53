#include "worker_link/worker_supervisor.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "lorad/common/files.h"

namespace lorad::server {
namespace {

// sockaddr_un::sun_path holds 108 bytes including the terminator.
constexpr size_t kMaxSocketPath = 100;

// `wanted` when it fits; else worker.sock in a fresh private directory
// (mkdtemp: an unpredictable name, mode 0700) under $TMPDIR or /tmp, so no
// other user can take or watch the socket. When even that fails, `wanted`,
// and the worker's bind names the problem.
std::string UsableSocketPath(const std::string& wanted) {
  if (wanted.size() <= kMaxSocketPath) return wanted;
  const char* tmpdir = std::getenv("TMPDIR");
  std::string dir = absl::StrCat(
      tmpdir != nullptr && *tmpdir != '\0' && std::strlen(tmpdir) < 64 ? tmpdir
                                                                       : "/tmp",
      "/lorad-XXXXXX");
  if (::mkdtemp(dir.data()) == nullptr) return wanted;
  return dir + "/worker.sock";
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return absl::StrCat("signal ", WTERMSIG(status), " (",
                        ::strsignal(WTERMSIG(status)), ")");
  }
  return absl::StrCat("wait status ", status);
}

std::shared_ptr<grpc::Channel> WorkerChannel(const std::string& socket) {
  grpc::ChannelArguments args;
  // A restarted worker should be reached quickly, not after gRPC's default
  // reconnect backoff (which grows to minutes).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return grpc::CreateCustomChannel(absl::StrCat("unix:", socket),
                                   grpc::InsecureChannelCredentials(), args);
}

}  // namespace

WorkerSupervisor::WorkerSupervisor(Options options)
    : options_([&] {
        options.socket_path = UsableSocketPath(options.socket_path);
        return std::move(options);
      }()) {}

WorkerSupervisor::~WorkerSupervisor() { Stop(); }

void WorkerSupervisor::Start() {
  absl::MutexLock lock(&mu_);
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

void WorkerSupervisor::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  CallListener();
  if (thread_.joinable()) thread_.join();
}

WorkerSupervisor::State WorkerSupervisor::state() {
  State state;
  if (::access(options_.binary.c_str(), X_OK) != 0) {
    state.unusable = absl::FailedPreconditionError(
        absl::StrCat("worker binary ", options_.binary,
                     " is missing or not executable (was lorad-worker "
                     "built? see --worker_binary)"));
  }
  absl::MutexLock lock(&mu_);
  if (!started_ && state.unusable.ok()) {
    state.unusable =
        absl::FailedPreconditionError("the worker supervisor is not running");
  }
  if (ready_) state.ready = current_;
  state.stopping = stop_;
  state.failed_starts = failed_starts_;
  state.last_error = last_error_;
  return state;
}

void WorkerSupervisor::SetListener(std::function<void()> listener) {
  absl::MutexLock lock(&listener_mu_);
  listener_ = std::move(listener);
}

void WorkerSupervisor::CallListener() {
  absl::MutexLock lock(&listener_mu_);
  if (listener_) listener_();
}

void WorkerSupervisor::NotifyListener() {
  mu_.Unlock();
  CallListener();
  mu_.Lock();
}

void WorkerSupervisor::Restart(int64_t generation) {
  absl::MutexLock lock(&mu_);
  if (!ready_ || current_.generation != generation || pid_ < 0) return;
  ready_ = false;
  restart_requested_ = true;
}

bool WorkerSupervisor::IsAlive(int64_t generation) {
  absl::MutexLock lock(&mu_);
  if (!ready_ || current_.generation != generation || pid_ < 0) return false;
  siginfo_t info;
  std::memset(&info, 0, sizeof(info));
  // WNOWAIT: look without reaping; the supervising thread reaps.
  if (::waitid(P_PID, pid_, &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return false;
  }
  return info.si_pid != pid_;
}

void WorkerSupervisor::Run() {
  absl::MutexLock lock(&mu_);
  int consecutive_failures = 0;
  while (!stop_) {
    bool lost = pid_ > 0 && ReapIfExited();
    if (pid_ > 0 && restart_requested_) {
      std::fprintf(stderr, "lorad: restarting worker pid %d\n", pid_);
      KillChild(absl::ZeroDuration());
      lost = true;
    }
    restart_requested_ = false;
    if (pid_ > 0 && ready_ && CheckLiveness()) lost = true;
    // Waits still pending and readiness watchers hear of it at once.
    if (lost) NotifyListener();
    if (pid_ < 0 && absl::Now() >= next_start_) {
      absl::StatusOr<WorkerHandle> handle = Spawn();
      if (handle.ok()) {
        consecutive_failures = 0;
        current_ = *std::move(handle);
        ready_ = true;
        last_pong_ = absl::Now();
        next_ping_ = last_pong_ + PingInterval();
        std::fprintf(stderr, "lorad: worker pid %d is ready\n", pid_);
        NotifyListener();
      } else {
        ++failed_starts_;
        ++consecutive_failures;
        const bool repeated = handle.status() == last_error_;
        last_error_ = handle.status();
        absl::Duration backoff = std::min(
            absl::Seconds(30),
            absl::Milliseconds(500) * (1 << std::min(consecutive_failures, 6)));
        next_start_ = absl::Now() + backoff;
        if (!repeated) {
          std::fprintf(stderr, "lorad: %s (retrying in %s)\n",
                       std::string(handle.status().message()).c_str(),
                       absl::FormatDuration(backoff).c_str());
        }
        NotifyListener();
      }
      continue;
    }
    auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stop_ || restart_requested_;
    };
    absl::Duration nap = absl::Milliseconds(200);
    if (ready_) nap = std::min(nap, next_ping_ - absl::Now());
    mu_.AwaitWithTimeout(absl::Condition(&wake),
                         std::max(nap, absl::ZeroDuration()));
  }
  // The worker gives its open calls 8 s after SIGTERM (a training run saves
  // a checkpoint on its way out); SIGKILL only after that.
  if (pid_ > 0) KillChild(absl::Seconds(10));
  NotifyListener();
}

absl::StatusOr<WorkerHandle> WorkerSupervisor::Spawn() {
  if (::access(options_.binary.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "worker binary ", options_.binary, " is missing or not executable"));
  }
  std::error_code ec;
  std::filesystem::create_directories(
      std::filesystem::path(options_.socket_path).parent_path(), ec);
  ::unlink(options_.socket_path.c_str());

  std::vector<std::string> args = {
      options_.binary, absl::StrCat("--socket=", options_.socket_path),
      absl::StrCat("--device=", options_.device)};
  args.insert(args.end(), options_.extra_args.begin(),
              options_.extra_args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    return absl::InternalError(
        absl::StrCat("fork failed: ", std::strerror(errno)));
  }
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(1);
    // The worker logs to the daemon's stderr; stdout stays the daemon's.
    ::dup2(STDERR_FILENO, STDOUT_FILENO);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;
  ready_ = false;
  WorkerHandle handle;
  handle.generation = next_generation_++;
  handle.pid = pid;
  std::fprintf(stderr, "lorad: started worker %s (pid %d)\n",
               options_.binary.c_str(), pid);

  mu_.Unlock();
  auto channel = WorkerChannel(options_.socket_path);
  handle.stub = worker::v1::Worker::NewStub(channel);
  const absl::Time deadline = absl::Now() + options_.start_timeout;
  absl::Status result;
  int wait_status = 0;
  bool exited = false;
  while (true) {
    if (::waitpid(pid, &wait_status, WNOHANG) == pid) {
      exited = true;
      result = absl::UnavailableError(
          absl::StrCat("worker exited while starting (",
                       DescribeWaitStatus(wait_status), ")"));
      break;
    }
    bool stopping;
    {
      absl::MutexLock relock(&mu_);
      stopping = stop_;
    }
    if (stopping) {
      result = absl::UnavailableError("lorad is shutting down");
      break;
    }
    if (std::filesystem::exists(options_.socket_path, ec)) {
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
      worker::v1::PingRequest request;
      worker::v1::PingResponse response;
      if (handle.stub->Ping(&context, request, &response).ok()) break;
    }
    if (absl::Now() > deadline) {
      result = absl::UnavailableError(
          absl::StrCat("worker did not answer Ping within ",
                       absl::FormatDuration(options_.start_timeout)));
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  mu_.Lock();
  if (exited) {
    pid_ = -1;
  } else if (!result.ok()) {
    KillChild(absl::ZeroDuration());
  }
  if (!result.ok()) return result;
  return handle;
}

absl::Duration WorkerSupervisor::PingInterval() const {
  return std::clamp(options_.hang_timeout / 4, absl::Milliseconds(20),
                    absl::Seconds(5));
}

bool WorkerSupervisor::CheckLiveness() {
  const absl::Time now = absl::Now();
  if (now < next_ping_) return false;
  const pid_t pid = pid_;
  const int64_t generation = current_.generation;
  std::shared_ptr<worker::v1::Worker::Stub> stub = current_.stub;
  const absl::Duration interval = PingInterval();
  mu_.Unlock();
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(now + interval));
  worker::v1::PingResponse response;
  const bool answered =
      stub->Ping(&context, worker::v1::PingRequest(), &response).ok();
  mu_.Lock();
  // Replaced, restarted or stopping meanwhile: nothing to judge.
  if (!ready_ || pid_ != pid || current_.generation != generation) {
    return false;
  }
  const absl::Time after = absl::Now();
  next_ping_ = after + interval;
  if (answered) {
    last_pong_ = after;
    return false;
  }
  if (after - last_pong_ < options_.hang_timeout) return false;
  std::fprintf(stderr,
               "lorad: worker pid %d has not answered Ping for %s "
               "(--worker_hang_timeout=%s); killing it (SIGKILL)\n",
               pid_, absl::FormatDuration(after - last_pong_).c_str(),
               absl::FormatDuration(options_.hang_timeout).c_str());
  KillChild(absl::ZeroDuration());
  return true;
}

bool WorkerSupervisor::ReapIfExited() {
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
  std::fprintf(stderr, "lorad: worker pid %d exited (%s)\n", pid_,
               DescribeWaitStatus(status).c_str());
  pid_ = -1;
  ready_ = false;
  return true;
}

void WorkerSupervisor::KillChild(absl::Duration grace) {
  if (pid_ < 0) return;
  if (grace > absl::ZeroDuration()) {
    ::kill(pid_, SIGTERM);
    const absl::Time deadline = absl::Now() + grace;
    while (absl::Now() < deadline) {
      if (ReapIfExited()) return;
      absl::SleepFor(absl::Milliseconds(50));
    }
  }
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  ready_ = false;
}

}  // namespace lorad::server
