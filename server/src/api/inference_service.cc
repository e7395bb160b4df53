#include "api/inference_service.h"

#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "api/grpc_status.h"
#include "grpcpp/client_context.h"
#include "lorad/internal/worker/v1/worker.grpc.pb.h"
#include "worker_link/wire.h"

namespace lorad::server {
namespace {

constexpr absl::Duration kWorkerWait = absl::Seconds(120);

// Relays one Generate call on its own thread: the thread blocks on the worker
// stream and on each write, the reactor callbacks never do.
class GenerateReactor final
    : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  GenerateReactor(InferenceService* service, const v1::GenerateRequest& request)
      : service_(service), request_(request) {
    service_->RelayStarted();
    std::thread([this] { Relay(); }).detach();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    write_pending_ = false;
    if (!ok) cancelled_ = true;
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (worker_call_ != nullptr) worker_call_->TryCancel();
  }

  void OnDone() override { delete this; }

 private:
  void Relay() {
    InferenceService* service = service_;
    grpc::Status status = RelayStream();
    RecordMetrics(status);
    // Finish may lead to OnDone and `delete this`: nothing of the reactor
    // is touched after it.
    Finish(status);
    service->RelayEnded();
  }

  // Waits in short slices so that a cancelled call stops waiting.
  absl::StatusOr<WorkerHandle> AwaitWorker() {
    const absl::Time deadline = absl::Now() + kWorkerWait;
    while (true) {
      absl::StatusOr<WorkerHandle> worker =
          service_->supervisor()->WaitReady(absl::Seconds(1));
      if (!absl::IsDeadlineExceeded(worker.status())) return worker;
      {
        absl::MutexLock lock(&mu_);
        if (cancelled_) return absl::CancelledError("generate cancelled");
      }
      if (absl::Now() > deadline) return worker;
    }
  }

  grpc::Status RelayStream() {
    absl::StatusOr<worker::v1::GenerateRequest> request =
        service_->Resolve(request_);
    if (!request.ok()) return ToGrpcStatus(request.status());
    absl::StatusOr<WorkerHandle> worker = AwaitWorker();
    if (!worker.ok()) return ToGrpcStatus(worker.status());

    grpc::ClientContext context;
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_) return grpc::Status::CANCELLED;
      worker_call_ = &context;
    }
    std::unique_ptr<grpc::ClientReader<worker::v1::GenerateChunk>> reader =
        worker->stub->Generate(&context, *request);
    worker::v1::GenerateChunk chunk;
    while (reader->Read(&chunk)) {
      response_ = ToPublic(chunk);
      NoteResponse(response_);
      {
        absl::MutexLock lock(&mu_);
        if (cancelled_) break;
        write_pending_ = true;
      }
      StartWrite(&response_);
      absl::MutexLock lock(&mu_);
      auto written = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !write_pending_;
      };
      mu_.Await(absl::Condition(&written));
      if (cancelled_) break;
    }
    bool cancelled;
    {
      absl::MutexLock lock(&mu_);
      cancelled = cancelled_;
      if (cancelled) context.TryCancel();
    }
    if (cancelled) {
      while (reader->Read(&chunk)) {
      }
    }
    grpc::Status status = reader->Finish();
    {
      absl::MutexLock lock(&mu_);
      worker_call_ = nullptr;
    }
    if (cancelled) return grpc::Status::CANCELLED;
    return status;
  }

  void NoteResponse(const v1::GenerateResponse& response) {
    if (first_token_ == absl::InfinitePast()) first_token_ = absl::Now();
    tokens_ += response.token_ids_size();
    if (response.has_usage()) usage_ = response.usage();
  }

  void RecordMetrics(const grpc::Status& status) {
    Metrics* metrics = service_->metrics();
    if (metrics == nullptr) return;
    std::string result = "ok";
    if (!status.ok()) {
      result = absl::AsciiStrToLower(absl::StatusCodeToString(
          static_cast<absl::StatusCode>(status.error_code())));
    }
    double ttft = first_token_ == absl::InfinitePast()
                      ? -1
                      : absl::ToDoubleSeconds(first_token_ - start_);
    if (usage_.time_to_first_token_seconds() > 0) {
      ttft = usage_.time_to_first_token_seconds();
    }
    metrics->RecordGenerate(
        request_.adapter(), result, ttft,
        absl::ToDoubleSeconds(absl::Now() - start_),
        usage_.completion_tokens() > 0 ? usage_.completion_tokens() : tokens_);
  }

  InferenceService* const service_;
  const v1::GenerateRequest request_;
  const absl::Time start_ = absl::Now();
  absl::Time first_token_ = absl::InfinitePast();
  int64_t tokens_ = 0;
  v1::GenerateUsage usage_;
  v1::GenerateResponse response_;
  absl::Mutex mu_;
  bool write_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* worker_call_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace

InferenceService::InferenceService(const DaemonOptions& options,
                                   JobStore* store,
                                   WorkerSupervisor* supervisor)
    : layout_(options.data_dir),
      base_model_(options.base_model),
      store_(store),
      supervisor_(supervisor) {}

InferenceService::~InferenceService() {
  absl::MutexLock lock(&mu_);
  auto idle = [this]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return relays_ == 0; };
  mu_.Await(absl::Condition(&idle));
}

grpc::ServerWriteReactor<v1::GenerateResponse>* InferenceService::Generate(
    grpc::CallbackServerContext* /*context*/,
    const v1::GenerateRequest* request) {
  return new GenerateReactor(this, *request);
}

absl::StatusOr<worker::v1::GenerateRequest> InferenceService::Resolve(
    const v1::GenerateRequest& request) {
  worker::v1::GenerateRequest out;
  out.set_model_cache_dir(layout_.ModelsDir());
  *out.mutable_sampling() = ToWorker(request);
  if (request.adapter().empty()) {
    out.set_model(base_model_);
    return out;
  }
  if (registry_ != nullptr) {
    absl::StatusOr<v1::Adapter> adapter =
        registry_->ResolveForGenerate(request.adapter());
    if (adapter.ok()) {
      out.set_model(adapter->base_model());
      out.set_adapter_dir(adapter->path());
      out.set_adapter_name(adapter->name());
      return out;
    }
    if (!absl::IsNotFound(adapter.status())) return adapter.status();
  }
  absl::StatusOr<v1::FineTuneJob> job = store_->GetJob(request.adapter());
  if (absl::IsNotFound(job.status())) {
    return absl::NotFoundError(absl::StrCat(
        "adapter ", request.adapter(),
        " not found (want a registered adapter name or the id of a "
        "succeeded fine-tune job)"));
  }
  if (!job.ok()) return job.status();
  if (job->state() != v1::SUCCEEDED) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job->id(), " is ", v1::JobState_Name(job->state()),
                     "; its adapter can be used once the job has SUCCEEDED"));
  }
  out.set_model(job->model());
  out.set_adapter_dir(job->adapter_path());
  return out;
}

void InferenceService::RelayStarted() {
  absl::MutexLock lock(&mu_);
  ++relays_;
  if (metrics_ != nullptr) metrics_->SetGenerateQueueDepth(relays_);
}

void InferenceService::RelayEnded() {
  absl::MutexLock lock(&mu_);
  --relays_;
  if (metrics_ != nullptr) metrics_->SetGenerateQueueDepth(relays_);
}

}  // namespace lorad::server
