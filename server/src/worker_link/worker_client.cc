#include "worker_link/worker_client.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "api/grpc_status.h"

namespace lorad::server {
namespace {

// The wait's outcome when the supervisor's state settles it; empty while it
// must go on waiting.
std::optional<absl::StatusOr<WorkerHandle>> Verdict(
    const WorkerSupervisor::State& state, int64_t failed_starts_at_entry) {
  if (!state.unusable.ok()) return state.unusable;
  if (state.ready) return *state.ready;
  if (state.stopping) return absl::UnavailableError("lorad is shutting down");
  if (state.failed_starts > failed_starts_at_entry) {
    return absl::UnavailableError(
        absl::StrCat("cannot start the worker: ", state.last_error.message()));
  }
  return std::nullopt;
}

// Reads a Worker.Train stream for a caller that blocks on Next(), keeping one
// event in hand: the next read starts when the caller has taken it. Owned by
// the caller and by itself until OnDone.
class TrainReader final
    : public grpc::ClientReadReactor<worker::v1::TrainEvent> {
 public:
  enum class Got { kEvent, kQuiet, kEnd };

  static std::shared_ptr<TrainReader> Start(
      std::shared_ptr<worker::v1::Worker::Stub> stub,
      const worker::v1::TrainRequest& request) {
    auto reader = std::make_shared<TrainReader>();
    reader->self_ = reader;
    reader->stub_ = std::move(stub);
    reader->request_ = request;
    reader->stub_->async()->Train(&reader->context_, &reader->request_,
                                  reader.get());
    // The hold keeps OnDone back while the caller holds an event and may
    // still start the next read; the read that finds the end releases it.
    reader->AddHold();
    reader->StartRead(&reader->incoming_);
    reader->StartCall();
    return reader;
  }

  // Waits up to `quiet` for the next event.
  Got Next(worker::v1::TrainEvent* out, absl::Duration quiet) {
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return has_event_ || done_;
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), quiet);
      if (!has_event_) return done_ ? Got::kEnd : Got::kQuiet;
      *out = std::move(incoming_);
      has_event_ = false;
    }
    StartRead(&incoming_);
    return Got::kEvent;
  }

  void Cancel() { context_.TryCancel(); }

  grpc::Status status() {
    absl::MutexLock lock(&mu_);
    return status_;
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      RemoveHold();
      return;
    }
    absl::MutexLock lock(&mu_);
    has_event_ = true;
  }

  void OnDone(const grpc::Status& status) override {
    std::shared_ptr<TrainReader> last_reference;
    absl::MutexLock lock(&mu_);
    done_ = true;
    status_ = status;
    last_reference = std::move(self_);
  }

 private:
  std::shared_ptr<TrainReader> self_;
  std::shared_ptr<worker::v1::Worker::Stub> stub_;
  worker::v1::TrainRequest request_;
  grpc::ClientContext context_;
  worker::v1::TrainEvent incoming_;
  absl::Mutex mu_;
  bool has_event_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

// ---- Cancellation

void Cancellation::Cancel() {
  absl::MutexLock lock(&mu_);
  if (cancelled_) return;
  cancelled_ = true;
  for (auto& [id, hook] : hooks_) hook();
  hooks_.clear();
}

bool Cancellation::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

uint64_t Cancellation::Add(std::function<void()> hook) {
  absl::MutexLock lock(&mu_);
  if (cancelled_) return 0;
  const uint64_t id = next_id_++;
  hooks_.emplace(id, std::move(hook));
  return id;
}

void Cancellation::Remove(uint64_t id) {
  absl::MutexLock lock(&mu_);
  hooks_.erase(id);
}

class WorkerClient::CancelScope {
 public:
  // `cancel` may be null.
  CancelScope(Cancellation* cancel, std::function<void()> hook)
      : cancel_(cancel) {
    if (cancel_ != nullptr) id_ = cancel_->Add(std::move(hook));
  }
  ~CancelScope() {
    if (cancel_ != nullptr && id_ != 0) cancel_->Remove(id_);
  }
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

  // The handle was cancelled before the scope began: the hook never runs.
  bool already_cancelled() const { return cancel_ != nullptr && id_ == 0; }

 private:
  Cancellation* const cancel_;
  uint64_t id_ = 0;
};

// ---- GenerateCall

void GenerateCall::ReadNext() {
  {
    absl::MutexLock lock(&mu_);
    if (phase_ != Phase::kRunning || cancelled_ || !holding_ || reading_) {
      return;
    }
    reading_ = true;
  }
  StartRead(&chunk_);
}

void GenerateCall::Cancel() {
  bool release = false;
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_ || phase_ == Phase::kEnded) return;
    cancelled_ = true;
    if (phase_ == Phase::kWaiting) {
      client_->CancelWait(wait_id_);
      return;
    }
    if (phase_ != Phase::kRunning) return;
    // With no read outstanding nothing would release the hold.
    release = holding_ && !reading_;
    if (release) holding_ = false;
  }
  context_.TryCancel();
  // Last: releasing the hold may run OnDone, and OnEnd may delete this.
  if (release) RemoveHold();
}

void GenerateCall::Begin(absl::StatusOr<WorkerHandle> worker) {
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_) {
      worker = absl::CancelledError("cancelled while waiting for the worker");
    }
    if (!worker.ok()) {
      phase_ = Phase::kEnded;
    } else {
      phase_ = Phase::kRunning;
      stub_ = worker->stub;
      context_.set_deadline(absl::ToChronoTime(absl::Now() + deadline_));
      reading_ = true;
      holding_ = true;
    }
  }
  if (!worker.ok()) {
    OnEnd(worker.status());
    return;
  }
  stub_->async()->Generate(&context_, &request_, this);
  AddHold();
  StartRead(&chunk_);
  StartCall();
}

void GenerateCall::OnReadDone(bool ok) {
  bool release = false;
  {
    absl::MutexLock lock(&mu_);
    reading_ = false;
    if (!ok) {
      release = holding_;
      holding_ = false;
    }
  }
  if (ok) {
    OnChunk(chunk_);
  } else if (release) {
    RemoveHold();
  }
}

void GenerateCall::OnDone(const grpc::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    phase_ = Phase::kEnded;
  }
  OnEnd(FromGrpcStatus(status));
}

// ---- WorkerClient

WorkerClient::WorkerClient(WorkerSupervisor* supervisor, TimerQueue* timers,
                           Options options)
    : supervisor_(supervisor), timers_(timers), options_(std::move(options)) {
  supervisor_->SetListener([this] {
    absl::MutexLock lock(&mu_);
    ScheduleLocked(absl::Now(), [this] {
      Settle(std::nullopt);
      NotifyReadiness();
    });
  });
}

void WorkerClient::SetReadinessObserver(std::function<void(bool)> observer) {
  absl::MutexLock lock(&observer_mu_);
  observer_ = std::move(observer);
  if (observer_) observer_(supervisor_->state().ready.has_value());
}

void WorkerClient::NotifyReadiness() {
  absl::MutexLock lock(&observer_mu_);
  if (observer_) observer_(supervisor_->state().ready.has_value());
}

WorkerClient::~WorkerClient() {
  supervisor_->SetListener(nullptr);
  absl::flat_hash_map<uint64_t, Waiter> pending;
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    pending.swap(waiters_);
    for (auto it = scheduled_.begin(); it != scheduled_.end();) {
      auto here = it++;
      if (timers_->Cancel(here->second)) scheduled_.erase(here);
    }
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return scheduled_.empty() && callbacks_running_ == 0;
    };
    mu_.Await(absl::Condition(&idle));
  }
  for (auto& [id, waiter] : pending) {
    waiter.done(absl::UnavailableError("lorad is shutting down"));
  }
}

uint64_t WorkerClient::ScheduleLocked(absl::Time when,
                                      std::function<void()> callback) {
  if (closing_) return 0;
  const uint64_t key = next_key_++;
  // The callback takes mu_ first, so it cannot start before its key is in
  // scheduled_.
  scheduled_[key] =
      timers_->Schedule(when, [this, key, callback = std::move(callback)] {
        {
          absl::MutexLock lock(&mu_);
          if (scheduled_.erase(key) == 0) return;
          ++callbacks_running_;
        }
        callback();
        absl::MutexLock lock(&mu_);
        --callbacks_running_;
      });
  return key;
}

void WorkerClient::Unschedule(uint64_t key) {
  absl::MutexLock lock(&mu_);
  auto it = scheduled_.find(key);
  if (it != scheduled_.end() && timers_->Cancel(it->second)) {
    scheduled_.erase(it);
  }
}

uint64_t WorkerClient::WhenReady(absl::Duration wait, ReadyCallback done) {
  const int64_t failed_starts = supervisor_->state().failed_starts;
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_wait_id_++;
  Waiter& waiter = waiters_[id];
  waiter.failed_starts_at_entry = failed_starts;
  waiter.wait = wait;
  waiter.done = std::move(done);
  const absl::Time now = absl::Now();
  // Settled first: with no wait, a worker that is ready now still counts.
  ScheduleLocked(now, [this, id] { Settle(id); });
  waiter.deadline_key = ScheduleLocked(now + wait, [this, id, wait] {
    Finish(id,
           absl::DeadlineExceededError(absl::StrCat(
               "no worker became ready within ", absl::FormatDuration(wait))));
  });
  return id;
}

void WorkerClient::CancelWait(uint64_t id) {
  absl::MutexLock lock(&mu_);
  if (!waiters_.contains(id)) return;
  ScheduleLocked(absl::Now(), [this, id] {
    Finish(id, absl::CancelledError("cancelled while waiting for the worker"));
  });
}

void WorkerClient::Settle(std::optional<uint64_t> id) {
  const WorkerSupervisor::State state = supervisor_->state();
  std::vector<std::pair<Waiter, absl::StatusOr<WorkerHandle>>> settled;
  {
    absl::MutexLock lock(&mu_);
    auto settle = [&](absl::flat_hash_map<uint64_t, Waiter>::iterator it) {
      std::optional<absl::StatusOr<WorkerHandle>> verdict =
          Verdict(state, it->second.failed_starts_at_entry);
      if (!verdict) return;
      settled.emplace_back(std::move(it->second), *std::move(verdict));
      waiters_.erase(it);
    };
    if (id) {
      auto it = waiters_.find(*id);
      if (it != waiters_.end()) settle(it);
    } else {
      for (auto it = waiters_.begin(); it != waiters_.end();) settle(it++);
    }
  }
  for (auto& [waiter, result] : settled) {
    Unschedule(waiter.deadline_key);
    waiter.done(std::move(result));
  }
}

void WorkerClient::Finish(uint64_t id, absl::StatusOr<WorkerHandle> result) {
  Waiter waiter;
  {
    absl::MutexLock lock(&mu_);
    auto it = waiters_.find(id);
    if (it == waiters_.end()) return;
    waiter = std::move(it->second);
    waiters_.erase(it);
  }
  Unschedule(waiter.deadline_key);
  waiter.done(std::move(result));
}

absl::StatusOr<WorkerHandle> WorkerClient::AwaitReady(absl::Duration wait,
                                                      Cancellation* cancel) {
  struct Outcome {
    absl::Notification done;
    absl::StatusOr<WorkerHandle> worker;
  };
  auto outcome = std::make_shared<Outcome>();
  const uint64_t id =
      WhenReady(wait, [outcome](absl::StatusOr<WorkerHandle> worker) {
        outcome->worker = std::move(worker);
        outcome->done.Notify();
      });
  {
    CancelScope scope(cancel, [this, id] { CancelWait(id); });
    if (scope.already_cancelled()) CancelWait(id);
    outcome->done.WaitForNotification();
  }
  return outcome->worker;
}

template <typename Request, typename Response>
absl::StatusOr<Response> WorkerClient::Unary(
    grpc::Status (worker::v1::Worker::Stub::*method)(grpc::ClientContext*,
                                                     const Request&, Response*),
    const Request& request, absl::Duration default_deadline,
    const CallOptions& options) {
  absl::StatusOr<WorkerHandle> worker = AwaitReady(
      options.ready_wait.value_or(options_.ready_timeout), options.cancel);
  if (absl::IsCancelled(worker.status())) return worker.status();
  if (!worker.ok()) {
    return absl::UnavailableError(
        absl::StrCat("the worker is not ready: ", worker.status().message()));
  }
  if (options.worker != nullptr) *options.worker = *worker;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(
      absl::Now() + options.deadline.value_or(default_deadline)));
  CancelScope scope(options.cancel, [&context] { context.TryCancel(); });
  if (scope.already_cancelled()) return absl::CancelledError("cancelled");
  Response response;
  grpc::Status status = ((*worker->stub).*method)(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<worker::v1::PingResponse> WorkerClient::Ping(
    const CallOptions& options) {
  return Unary(&worker::v1::Worker::Stub::Ping, worker::v1::PingRequest(),
               options_.ping_deadline, options);
}

absl::StatusOr<worker::v1::GetMemoryResponse> WorkerClient::GetMemory(
    const CallOptions& options) {
  return Unary(&worker::v1::Worker::Stub::GetMemory,
               worker::v1::GetMemoryRequest(), options_.memory_deadline,
               options);
}

absl::StatusOr<worker::v1::ListWorkerAdaptersResponse>
WorkerClient::ListAdapters(const CallOptions& options) {
  return Unary(&worker::v1::Worker::Stub::ListAdapters,
               worker::v1::ListWorkerAdaptersRequest(),
               options_.list_adapters_deadline, options);
}

absl::StatusOr<worker::v1::LoadAdapterResponse> WorkerClient::LoadAdapter(
    const worker::v1::LoadAdapterRequest& request, const CallOptions& options) {
  return Unary(&worker::v1::Worker::Stub::LoadAdapter, request,
               options_.load_adapter_deadline, options);
}

absl::StatusOr<worker::v1::UnloadAdapterResponse> WorkerClient::UnloadAdapter(
    const worker::v1::UnloadAdapterRequest& request,
    const CallOptions& options) {
  return Unary(&worker::v1::Worker::Stub::UnloadAdapter, request,
               options_.unload_adapter_deadline, options);
}

absl::StatusOr<worker::v1::ExportMergedResponse> WorkerClient::ExportMerged(
    const worker::v1::ExportMergedRequest& request,
    const CallOptions& options) {
  return Unary(&worker::v1::Worker::Stub::ExportMerged, request,
               options_.export_merged_deadline, options);
}

void WorkerClient::StartGenerate(const worker::v1::GenerateRequest& request,
                                 GenerateCall* call) {
  Start(request, call, options_.ready_timeout, options_.generate_deadline);
}

void WorkerClient::Start(const worker::v1::GenerateRequest& request,
                         GenerateCall* call, absl::Duration wait,
                         absl::Duration deadline) {
  call->client_ = this;
  call->request_ = request;
  call->deadline_ = deadline;
  // Held across WhenReady so that Begin (on the timer's thread) sees the
  // wait's id in place.
  absl::MutexLock lock(&call->mu_);
  call->phase_ = GenerateCall::Phase::kWaiting;
  call->wait_id_ = WhenReady(wait, [call](absl::StatusOr<WorkerHandle> worker) {
    call->Begin(std::move(worker));
  });
  if (call->cancelled_) CancelWait(call->wait_id_);
}

absl::StatusOr<std::vector<worker::v1::GenerateChunk>> WorkerClient::Generate(
    const worker::v1::GenerateRequest& request, const CallOptions& options) {
  struct Outcome {
    absl::Notification done;
    absl::Status status;
    std::vector<worker::v1::GenerateChunk> chunks;
  };
  class Collector final : public GenerateCall {
   public:
    explicit Collector(std::shared_ptr<Outcome> outcome)
        : outcome_(std::move(outcome)) {}

   private:
    void OnChunk(const worker::v1::GenerateChunk& chunk) override {
      outcome_->chunks.push_back(chunk);
      ReadNext();
    }
    void OnEnd(const absl::Status& status) override {
      // The caller may destroy this object once notified.
      std::shared_ptr<Outcome> outcome = outcome_;
      outcome->status = status;
      outcome->done.Notify();
    }
    const std::shared_ptr<Outcome> outcome_;
  };

  auto outcome = std::make_shared<Outcome>();
  Collector collector(outcome);
  {
    CancelScope scope(options.cancel, [&collector] { collector.Cancel(); });
    if (scope.already_cancelled()) collector.Cancel();
    Start(request, &collector,
          options.ready_wait.value_or(options_.ready_timeout),
          options.deadline.value_or(options_.generate_deadline));
    outcome->done.WaitForNotification();
  }
  if (!outcome->status.ok()) return outcome->status;
  return std::move(outcome->chunks);
}

absl::Status WorkerClient::Train(
    const WorkerHandle& worker, const worker::v1::TrainRequest& request,
    Cancellation* cancel,
    absl::FunctionRef<bool(const worker::v1::TrainEvent&)> on_event) {
  std::shared_ptr<TrainReader> reader =
      TrainReader::Start(worker.stub, request);
  int missed_pings = 0;
  bool hung = false;
  {
    CancelScope scope(cancel, [&reader] { reader->Cancel(); });
    if (scope.already_cancelled()) reader->Cancel();
    bool stopped = false;
    worker::v1::TrainEvent event;
    while (true) {
      const TrainReader::Got got =
          reader->Next(&event, options_.liveness_interval);
      if (got == TrainReader::Got::kEnd) break;
      if (got == TrainReader::Got::kEvent) {
        missed_pings = 0;
        if (!stopped && !on_event(event)) {
          stopped = true;
          reader->Cancel();
        }
        continue;
      }
      if (hung) continue;
      grpc::ClientContext context;
      context.set_deadline(
          absl::ToChronoTime(absl::Now() + options_.ping_deadline));
      worker::v1::PingResponse pong;
      if (worker.stub->Ping(&context, worker::v1::PingRequest(), &pong).ok()) {
        missed_pings = 0;
      } else if (++missed_pings >= options_.liveness_failures) {
        hung = true;
        reader->Cancel();
      }
    }
  }
  if (hung) {
    return absl::UnavailableError(absl::StrCat(
        "the worker stopped answering Ping (", missed_pings,
        " missed in a row, ", absl::FormatDuration(options_.ping_deadline),
        " each); its training stream was cancelled"));
  }
  return FromGrpcStatus(reader->status());
}

void WorkerClient::Restart(int64_t generation) {
  supervisor_->Restart(generation);
}

bool WorkerClient::GoneWithin(int64_t generation, absl::Duration grace) {
  // The supervisor notices an exit on its own schedule; IsAlive looks now.
  const absl::Time deadline = absl::Now() + grace;
  while (supervisor_->IsAlive(generation)) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

}  // namespace lorad::server
