#include "worker_service.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "lorad/worker/device_memory.h"
#include "lorad/worker/generator.h"
#include "lorad/worker/tiny_model.h"
#include "lorad/worker/trainer.h"

namespace lorad::worker {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

WorkerServiceImpl::WorkerServiceImpl(torch::Device device) : device_(device) {}

absl::StatusOr<const LlamaModel*> WorkerServiceImpl::GetModel(
    const std::string& model, const std::string& cache_dir,
    const std::string& compute_dtype) {
  auto dir = ResolveModelDir(model, cache_dir);
  if (!dir.ok()) return dir.status();
  torch::ScalarType dtype = torch::kFloat32;
  if (compute_dtype == "bfloat16" ||
      (compute_dtype != "float32" && device_.is_cuda())) {
    dtype = torch::kBFloat16;
  }
  std::string key = absl::StrCat(*dir, "|", c10::toString(dtype));
  absl::MutexLock lock(&models_mu_);
  auto it = models_.find(key);
  if (it != models_.end()) return it->second.get();
  LoadOptions options;
  options.device = device_;
  options.dtype = dtype;
  absl::StatusOr<std::unique_ptr<LlamaModel>> loaded;
  try {
    loaded = LlamaModel::Load(*dir, options);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(
        "loading ", *dir, " failed: ", e.what_without_backtrace()));
  }
  if (!loaded.ok()) return loaded.status();
  const LlamaModel* ptr = loaded->get();
  models_[key] = std::move(*loaded);
  return ptr;
}

grpc::Status WorkerServiceImpl::Train(
    grpc::ServerContext* context, const lorad::worker::v1::TrainRequest* req,
    grpc::ServerWriter<lorad::worker::v1::TrainEvent>* writer) {
  absl::MutexLock lock(&train_mu_);
  auto model = GetModel(req->model(), req->model_cache_dir(),
                        req->hyperparameters().compute_dtype());
  if (!model.ok()) return ToGrpc(model.status());
  TrainJob job;
  job.job_id = req->job_id();
  job.base_model_name = req->model().empty() ? "tiny" : req->model();
  job.training_path = req->training_path();
  job.validation_path = req->validation_path();
  job.job_dir = req->job_dir();
  job.adapter_dir = req->adapter_dir();
  job.hp = req->hyperparameters();
  TrainCallbacks callbacks;
  bool writer_ok = true;
  callbacks.on_event = [&](const lorad::worker::v1::TrainEvent& e) {
    if (writer_ok) writer_ok = writer->Write(e);
  };
  callbacks.cancelled = [&] { return context->IsCancelled() || !writer_ok; };
  return ToGrpc(RunTraining(**model, job, callbacks));
}

grpc::Status WorkerServiceImpl::Generate(
    grpc::ServerContext* context, const lorad::worker::v1::GenerateRequest* req,
    grpc::ServerWriter<lorad::v1::GenerateResponse>* writer) {
  auto model = GetModel(req->model(), req->model_cache_dir(), "auto");
  if (!model.ok()) return ToGrpc(model.status());
  std::optional<AdapterSet> adapter;
  if (!req->adapter_dir().empty()) {
    auto loaded = AdapterSet::LoadPeft(req->adapter_dir(), (*model)->config(),
                                       (*model)->device());
    if (!loaded.ok()) return ToGrpc(loaded.status());
    adapter = std::move(*loaded);
  }
  try {
    return ToGrpc(lorad::worker::Generate(
        **model, adapter ? &*adapter : nullptr, req->request(),
        [&](const lorad::v1::GenerateResponse& chunk) {
          return !context->IsCancelled() && writer->Write(chunk);
        }));
  } catch (const c10::Error& e) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        absl::StrCat("generation failed in LibTorch: ",
                                     e.what_without_backtrace()));
  }
}

grpc::Status WorkerServiceImpl::Ping(grpc::ServerContext*,
                                     const lorad::worker::v1::PingRequest*,
                                     lorad::worker::v1::PingResponse* resp) {
  resp->set_pid(::getpid());
  resp->set_device(device_.str());
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::GetMemory(
    grpc::ServerContext*, const lorad::worker::v1::GetMemoryRequest*,
    lorad::worker::v1::GetMemoryResponse* response) {
  *response->mutable_memory() = CurrentMemoryUsage(device_);
  response->set_pid(getpid());
  return grpc::Status::OK;
}

}  // namespace lorad::worker
