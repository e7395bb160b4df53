// WorkerClient: the one owner of the server's calls to the worker
// (lorad.worker.v1 over the unix socket). The WorkerSupervisor runs the
// process; every other part of the server reaches the worker through here.
//
// Readiness. A call first waits for a ready worker (the supervisor names it:
// generation, pid, stub) for at most its ready wait. Waits are entries in a
// list that the supervisor's state changes wake and the shared TimerQueue
// ends at their deadline: no thread per wait, no polling. A wait that gets
// no worker ends FAILED_PRECONDITION (the worker binary is missing),
// UNAVAILABLE (a start failed meanwhile, or lorad is stopping; the message
// says why), DEADLINE_EXCEEDED or CANCELLED. Unary calls report every
// readiness failure but CANCELLED as UNAVAILABLE "the worker is not ready".
//
// Deadlines. Every call has one. Unary calls use their method's default in
// Options unless the caller gives one. A Generate stream is bounded by
// Options::generate_deadline overall. A Train stream has no fixed deadline
// (a job may run for hours); it has liveness instead: whenever the stream
// has been quiet for liveness_interval the client pings the worker (each
// Ping bounded by ping_deadline), and liveness_failures failed pings in a
// row cancel the stream, which then ends UNAVAILABLE. A hung worker
// (SIGSTOP, a stuck device) is so detected within about liveness_failures x
// (liveness_interval + ping_deadline).
//
// Cancellation. A Cancellation handle stops the calls made with it, and
// their waits for a worker, from any thread. A GenerateCall is cancelled
// through its own Cancel().
//
// Failures. The client reports nothing by itself: a caller that sees the
// worker fail (a broken training stream) hands its generation to Restart().
//
// This class is thread-safe.
#ifndef LORAD_SERVER_WORKER_LINK_WORKER_CLIENT_H_
#define LORAD_SERVER_WORKER_LINK_WORKER_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/client_callback.h"
#include "jobs/timer_queue.h"
#include "lorad/internal/worker/v1/worker.grpc.pb.h"
#include "worker_link/worker_supervisor.h"

namespace lorad::server {

class WorkerClient;

// Lets a caller stop its worker calls from another thread. This class is
// thread-safe; it must outlive the calls made with it.
class Cancellation {
 public:
  Cancellation() = default;
  Cancellation(const Cancellation&) = delete;
  Cancellation& operator=(const Cancellation&) = delete;

  // Ends every call made with this handle that is running or waiting for a
  // worker with CANCELLED; calls made later end CANCELLED at once.
  // Idempotent.
  void Cancel();
  bool cancelled() const;

 private:
  friend class WorkerClient;
  // Runs `hook` once at Cancel(), under this handle's lock (so it must not
  // block). Returns its id for Remove, or 0 without keeping it when the
  // handle is already cancelled.
  uint64_t Add(std::function<void()> hook);
  // Once this returns, the hook is not running and never runs.
  void Remove(uint64_t id);

  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, std::function<void()>> hooks_
      ABSL_GUARDED_BY(mu_);
};

// How one call is made; every field is optional.
struct CallOptions {
  // How long to wait for a ready worker. Unset: Options::ready_timeout;
  // zero: only a worker that is ready now.
  std::optional<absl::Duration> ready_wait;
  // The call's deadline once sent. Unset: its method's default.
  std::optional<absl::Duration> deadline;
  // Not owned; null: the call cannot be cancelled.
  Cancellation* cancel = nullptr;
  // Out, not owned: set by unary calls to the worker they were sent to.
  WorkerHandle* worker = nullptr;
};

// One Worker.Generate stream driven by gRPC callbacks, for the serving path:
// no thread waits for the worker or for the stream. Subclass it and start it
// with WorkerClient::StartGenerate. The stream is read one chunk at a time:
// nothing more is read until ReadNext(), so a consumer that stops reading
// stops the worker's stream too (flow control end to end).
//
// The object must stay alive until OnEnd() is called; OnEnd may delete it.
// Cancel() and ReadNext() are thread-safe.
class GenerateCall
    : private grpc::ClientReadReactor<worker::v1::GenerateChunk> {
 public:
  GenerateCall() = default;
  ~GenerateCall() override = default;

  // Asks for the chunk after the one OnChunk had; call it once per OnChunk.
  void ReadNext();
  // Stops the stream, or the wait for a worker before it: OnEnd follows
  // with CANCELLED unless it has already been called. Does nothing after.
  void Cancel();

 protected:
  // One chunk, valid until ReadNext(). Runs on a gRPC thread; must not
  // block.
  virtual void OnChunk(const worker::v1::GenerateChunk& chunk) = 0;
  // Called once, last: OK after the last chunk, otherwise why the stream
  // failed or never started. Runs on a gRPC or timer thread; must not
  // block. Nothing of this object is touched after it returns.
  virtual void OnEnd(const absl::Status& status) = 0;

 private:
  friend class WorkerClient;
  enum class Phase { kIdle, kWaiting, kRunning, kEnded };

  // From WorkerClient once the wait for a worker is over.
  void Begin(absl::StatusOr<WorkerHandle> worker);
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

  WorkerClient* client_ = nullptr;
  worker::v1::GenerateRequest request_;
  absl::Duration deadline_;
  grpc::ClientContext context_;
  worker::v1::GenerateChunk chunk_;
  std::shared_ptr<worker::v1::Worker::Stub> stub_;
  absl::Mutex mu_;
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kIdle;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t wait_id_ ABSL_GUARDED_BY(mu_) = 0;
  // A read is outstanding.
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  // The hold that keeps OnDone from running while OnChunk's consumer may
  // still ask for more; released when the stream ends or is cancelled.
  bool holding_ ABSL_GUARDED_BY(mu_) = false;
};

class WorkerClient {
 public:
  struct Options {
    // How long a call waits for a ready worker unless it says otherwise.
    absl::Duration ready_timeout = absl::Seconds(120);
    // Unary deadlines, per method.
    absl::Duration ping_deadline = absl::Seconds(5);
    absl::Duration memory_deadline = absl::Seconds(5);
    absl::Duration list_adapters_deadline = absl::Seconds(10);
    absl::Duration load_adapter_deadline = absl::Minutes(5);
    absl::Duration unload_adapter_deadline = absl::Seconds(60);
    absl::Duration export_merged_deadline = absl::Minutes(30);
    // A whole Generate stream, from the first chunk asked to the last.
    absl::Duration generate_deadline = absl::Hours(1);
    // Train liveness (see the top of this file).
    absl::Duration liveness_interval = absl::Seconds(10);
    int liveness_failures = 3;
  };

  // Neither is owned; both must outlive the client. The client becomes the
  // supervisor's listener (one client per supervisor).
  WorkerClient(WorkerSupervisor* supervisor, TimerQueue* timers,
               Options options);
  // Ends the waits still pending with UNAVAILABLE and waits for the timer
  // callbacks it scheduled. Calls still running must have ended.
  ~WorkerClient();
  WorkerClient(const WorkerClient&) = delete;
  WorkerClient& operator=(const WorkerClient&) = delete;

  const Options& options() const { return options_; }

  // Blocks until a worker is ready, for at most `wait` (zero: only one that
  // is ready now). Errors as in "Readiness" above.
  absl::StatusOr<WorkerHandle> AwaitReady(absl::Duration wait,
                                          Cancellation* cancel = nullptr);

  // Unary calls; errors are the worker's, or as described above.
  absl::StatusOr<worker::v1::PingResponse> Ping(const CallOptions& options);
  absl::StatusOr<worker::v1::GetMemoryResponse> GetMemory(
      const CallOptions& options);
  absl::StatusOr<worker::v1::ListWorkerAdaptersResponse> ListAdapters(
      const CallOptions& options);
  absl::StatusOr<worker::v1::LoadAdapterResponse> LoadAdapter(
      const worker::v1::LoadAdapterRequest& request,
      const CallOptions& options);
  absl::StatusOr<worker::v1::UnloadAdapterResponse> UnloadAdapter(
      const worker::v1::UnloadAdapterRequest& request,
      const CallOptions& options);
  absl::StatusOr<worker::v1::ExportMergedResponse> ExportMerged(
      const worker::v1::ExportMergedRequest& request,
      const CallOptions& options);

  // Starts `call` (not owned) on `request`: it waits for a worker for
  // Options::ready_timeout, then streams. Returns at once; everything else
  // reaches `call` through its callbacks, never inside this function.
  void StartGenerate(const worker::v1::GenerateRequest& request,
                     GenerateCall* call);

  // One whole generation, blocking the caller: every chunk, in order.
  absl::StatusOr<std::vector<worker::v1::GenerateChunk>> Generate(
      const worker::v1::GenerateRequest& request, const CallOptions& options);

  // Streams Worker.Train on `worker` (from AwaitReady), handing each event to
  // `on_event` on the caller's thread; when it returns false the stream is
  // cancelled. Returns the stream's status: OK when the worker ended it,
  // CANCELLED when cancelled, UNAVAILABLE when the worker stopped answering
  // Ping (see "Deadlines" above), or the worker's error.
  absl::Status Train(
      const WorkerHandle& worker, const worker::v1::TrainRequest& request,
      Cancellation* cancel,
      absl::FunctionRef<bool(const worker::v1::TrainEvent&)> on_event);

  // `observer` hears whether a worker is ready: once before this returns,
  // then whenever that may have changed (on the timer's thread; it must be
  // quick and must not call this). nullptr removes it; once this returns,
  // the observer it replaced is not running and never runs again.
  void SetReadinessObserver(std::function<void(bool ready)> observer);

  // The worker of `generation` failed: if it is still the current one, the
  // supervisor kills it and starts another.
  void Restart(int64_t generation);
  // True when the worker of `generation` is gone (exited, or replaced), or
  // goes within `grace`.
  bool GoneWithin(int64_t generation, absl::Duration grace);

 private:
  friend class GenerateCall;
  using ReadyCallback = std::function<void(absl::StatusOr<WorkerHandle>)>;

  struct Waiter {
    int64_t failed_starts_at_entry = 0;
    absl::Duration wait;
    uint64_t deadline_key = 0;  // of the callback that ends it at its deadline
    ReadyCallback done;
  };

  // Adds a hook to a Cancellation for the length of a call.
  class CancelScope;

  // Registers a wait; `done` runs once, later, on the timer's thread (or in
  // the destructor). Returns the id for CancelWait.
  uint64_t WhenReady(absl::Duration wait, ReadyCallback done);
  // Ends a wait that is still pending with CANCELLED (later, as above).
  void CancelWait(uint64_t id);
  // Ends the waits that the supervisor's state now settles: all of them, or
  // just `id`.
  void Settle(std::optional<uint64_t> id);
  // Ends wait `id`, if still pending, with `result`.
  void Finish(uint64_t id, absl::StatusOr<WorkerHandle> result);
  // Runs `callback` on the timer's thread at `when`, counted so that the
  // destructor can wait for it. Returns a key for Unschedule (0 when
  // closing: it never runs).
  uint64_t ScheduleLocked(absl::Time when, std::function<void()> callback)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops a scheduled callback that has not started.
  void Unschedule(uint64_t key);
  // Starts `call` with the given wait for a worker and stream deadline.
  void Start(const worker::v1::GenerateRequest& request, GenerateCall* call,
             absl::Duration wait, absl::Duration deadline);

  template <typename Request, typename Response>
  absl::StatusOr<Response> Unary(
      grpc::Status (worker::v1::Worker::Stub::*method)(grpc::ClientContext*,
                                                       const Request&,
                                                       Response*),
      const Request& request, absl::Duration default_deadline,
      const CallOptions& options);

  // Calls the readiness observer, if any, with the supervisor's state now.
  void NotifyReadiness();

  WorkerSupervisor* const supervisor_;
  TimerQueue* const timers_;
  const Options options_;

  // Held while the observer runs, so SetReadinessObserver can wait for it.
  absl::Mutex observer_mu_;
  std::function<void(bool)> observer_ ABSL_GUARDED_BY(observer_mu_);

  absl::Mutex mu_;
  uint64_t next_wait_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  // Timer callbacks from ScheduleLocked that have not started: key -> the
  // TimerQueue's id.
  uint64_t next_key_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, TimerQueue::Id> scheduled_ ABSL_GUARDED_BY(mu_);
  int64_t callbacks_running_ ABSL_GUARDED_BY(mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_WORKER_LINK_WORKER_CLIENT_H_
