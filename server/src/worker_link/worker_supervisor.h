// Runs the lorad-worker process: starts it, waits until it answers Ping,
// restarts it when it dies or when asked to, and kills it on Stop(). It only
// runs the process; calls to the worker go through WorkerClient, which learns
// of every change here through the listener.
#ifndef LORAD_SERVER_WORKER_LINK_WORKER_SUPERVISOR_H_
#define LORAD_SERVER_WORKER_LINK_WORKER_SUPERVISOR_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lorad/internal/worker/v1/worker.grpc.pb.h"

namespace lorad::server {

// One running worker process. A new process gets a new generation.
struct WorkerHandle {
  int64_t generation = 0;
  pid_t pid = -1;
  std::shared_ptr<worker::v1::Worker::Stub> stub;
};

// This class is thread-safe. The worker is forked from the supervisor's own
// thread, which lives until Stop(): the child asks the kernel to SIGKILL it
// when that thread (and so the daemon) goes away.
class WorkerSupervisor {
 public:
  struct Options {
    std::string binary;
    std::string device = "auto";
    // The unix socket the worker listens on. Paths too long for a socket
    // address are replaced by one under /tmp.
    std::string socket_path;
    absl::Duration start_timeout = absl::Seconds(120);
    // More command-line flags for the worker, e.g. "--max_batch=16".
    std::vector<std::string> extra_args;
    // Liveness: a ready worker is pinged every hang_timeout / 4 (at most
    // every 5 s), each Ping bounded by that interval; one that has answered
    // none for hang_timeout is taken as hung (SIGSTOP, a stuck device),
    // killed with SIGKILL and replaced. Its calls then fail UNAVAILABLE: it
    // is detected within about 1.25 x hang_timeout.
    absl::Duration hang_timeout = absl::Seconds(30);
  };

  explicit WorkerSupervisor(Options options);
  ~WorkerSupervisor();
  WorkerSupervisor(const WorkerSupervisor&) = delete;
  WorkerSupervisor& operator=(const WorkerSupervisor&) = delete;

  // Starts the supervising thread, which starts the worker at once.
  void Start();
  // Stops the worker (SIGTERM, then SIGKILL) and the thread. Idempotent.
  void Stop();

  // Where the worker stands now, without waiting.
  struct State {
    // FailedPrecondition when no worker can be started at all: the binary
    // is missing or not executable, or Start() has not been called.
    absl::Status unusable;
    // The worker that answers Ping now; empty while none does.
    std::optional<WorkerHandle> ready;
    bool stopping = false;
    // How many starts have failed so far, and why the last one did.
    int64_t failed_starts = 0;
    absl::Status last_error;
  };
  State state();

  // `listener` is called whenever a worker became ready, stopped being
  // ready (it exited, hung or is being restarted), a start failed or the
  // supervisor is stopping: on the supervisor's thread (or Stop()'s),
  // without its lock, so it may call state(); it must be quick and must not
  // call SetListener.
  // Replaces the listener before; nullptr removes it. Once SetListener
  // returns, the listener it replaced is not running and never runs again.
  void SetListener(std::function<void()> listener);

  // The caller saw the worker of `generation` fail; if it is still the
  // current one it is killed and a new one started.
  void Restart(int64_t generation);

  // False once the process of `generation` has exited or been replaced.
  bool IsAlive(int64_t generation);

 private:
  void Run();
  // Forks and execs the worker and waits for its Ping, with mu_ released.
  absl::StatusOr<WorkerHandle> Spawn() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reaps the child if it has exited; returns true if it had.
  bool ReapIfExited() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void KillChild(absl::Duration grace) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Pings the ready worker when its interval is due (mu_ released during the
  // call); kills it once it has been silent for hang_timeout. Returns true
  // when it killed it.
  bool CheckLiveness() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration PingInterval() const;
  void CallListener() ABSL_LOCKS_EXCLUDED(mu_);
  // CallListener with mu_ released meanwhile.
  void NotifyListener() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool restart_requested_ ABSL_GUARDED_BY(mu_) = false;
  // The child process, -1 when none (ready or still starting).
  pid_t pid_ ABSL_GUARDED_BY(mu_) = -1;
  // Set once the current child has answered Ping.
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  WorkerHandle current_ ABSL_GUARDED_BY(mu_);
  int64_t next_generation_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t failed_starts_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  absl::Time next_start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Liveness of the ready worker: its last answered Ping, the next one due.
  absl::Time last_pong_ ABSL_GUARDED_BY(mu_);
  absl::Time next_ping_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
  // Held while the listener runs, so SetListener can wait for it.
  absl::Mutex listener_mu_;
  std::function<void()> listener_ ABSL_GUARDED_BY(listener_mu_);
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_WORKER_LINK_WORKER_SUPERVISOR_H_
