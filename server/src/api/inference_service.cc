#include "api/inference_service.h"

#include <atomic>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "api/grpc_status.h"
#include "auth/call_gate.h"
#include "auth/ownership.h"
#include "jobs/generate_validation.h"
#include "lorad/common/status_macros.h"
#include "worker_link/wire.h"

namespace lorad::server {
namespace {

// Relays one Generate call: the public call's write reactor and the worker
// call (a GenerateCall) drive each other. It deletes itself when both halves
// are done.
class GenerateRelay final
    : public grpc::ServerWriteReactor<v1::GenerateResponse>,
      public GenerateCall {
 public:
  GenerateRelay(InferenceService* service, const v1::GenerateRequest& request)
      : service_(service), request_(request) {
    service_->RelayStarted();
    absl::StatusOr<worker::v1::GenerateRequest> resolved =
        service_->Resolve(request_);
    if (resolved.ok()) resolved = service_->Admit(*std::move(resolved));
    if (!resolved.ok()) {
      halves_ = 1;  // no worker call
      Conclude(resolved.status());
      return;
    }
    service_->worker()->StartGenerate(*resolved, this);
  }

  // Public half.
  void OnWriteDone(bool ok) override {
    bool conclude;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      conclude = worker_ended_;
    }
    if (conclude) {
      Conclude(worker_status_);
    } else if (ok) {
      ReadNext();
    } else {
      Cancel();  // the client is gone; OnEnd follows
    }
  }

  void OnCancel() override { Cancel(); }

  void OnDone() override {
    service_->RelayEnded();
    Release();
  }

 private:
  // Worker half.
  void OnChunk(const worker::v1::GenerateChunk& chunk) override {
    response_ = ToPublic(chunk);
    NoteResponse(response_);
    {
      absl::MutexLock lock(&mu_);
      if (worker_ended_) return;
      writing_ = true;
    }
    StartWrite(&response_);
  }

  void OnEnd(const absl::Status& status) override {
    bool conclude;
    {
      absl::MutexLock lock(&mu_);
      worker_ended_ = true;
      worker_status_ = status;
      // A write still in flight concludes in OnWriteDone.
      conclude = !writing_;
    }
    if (conclude) Conclude(status);
    Release();
  }

  void Conclude(const absl::Status& status) {
    RecordMetrics(status);
    Finish(ToGrpcStatus(status));
  }

  // Each half calls this last; the second one deletes the relay.
  void Release() {
    if (halves_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  void NoteResponse(const v1::GenerateResponse& response) {
    if (first_token_ == absl::InfinitePast()) first_token_ = absl::Now();
    tokens_ += response.token_ids_size();
    if (response.has_usage()) usage_ = response.usage();
  }

  void RecordMetrics(const absl::Status& status) {
    Metrics* metrics = service_->metrics();
    if (metrics == nullptr) return;
    std::string result = "ok";
    if (!status.ok()) {
      result = absl::AsciiStrToLower(absl::StatusCodeToString(status.code()));
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
  std::atomic<int> halves_{2};
  // Written by the worker half only, one chunk at a time.
  absl::Time first_token_ = absl::InfinitePast();
  int64_t tokens_ = 0;
  v1::GenerateUsage usage_;
  v1::GenerateResponse response_;
  absl::Mutex mu_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool worker_ended_ ABSL_GUARDED_BY(mu_) = false;
  // Set once with worker_ended_, read after.
  absl::Status worker_status_;
};

}  // namespace

InferenceService::InferenceService(const DaemonOptions& options,
                                   JobStore* store, WorkerClient* worker)
    : layout_(options.data_dir),
      base_model_(options.base_model),
      store_(store),
      worker_(worker) {}

InferenceService::~InferenceService() {
  absl::MutexLock lock(&mu_);
  auto idle = [this]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return relays_ == 0; };
  mu_.Await(absl::Condition(&idle));
}

grpc::ServerWriteReactor<v1::GenerateResponse>* InferenceService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  if (auto* refused = auth::RefuseWriter<v1::GenerateResponse>(context))
    return refused;
  if (auto* hidden =
          request->adapter().empty()
              ? nullptr
              : auth::HiddenWriter<v1::GenerateResponse>(
                    owners_, context, auth::Kind::kAdapter, request->adapter()))
    return hidden;
  return new GenerateRelay(this, *request);
}

absl::StatusOr<worker::v1::GenerateRequest> InferenceService::Resolve(
    const v1::GenerateRequest& request) {
  LORAD_RETURN_IF_ERROR(ValidateGenerateRequest(request));
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
      out.set_quantization(adapter->quantization());
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
  if (job->hyperparameters().quantization() == "int8") {
    out.set_quantization("int8");
  }
  return out;
}

absl::StatusOr<worker::v1::GenerateRequest> InferenceService::Admit(
    worker::v1::GenerateRequest request) const {
  if (admission_ != nullptr) {
    LORAD_RETURN_IF_ERROR(admission_->CheckGenerate(request));
  }
  return request;
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
