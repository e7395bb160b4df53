#include "worker_service.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "lorad/model/tiny_model.h"
#include "lorad/worker/device_memory.h"
#include "lorad/worker/trainer.h"

namespace lorad::worker {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

WorkerServiceImpl::WorkerServiceImpl(torch::Device device,
                                     WorkerOptions options)
    : device_(device),
      options_(options),
      turns_(options.inference_turns_per_training_turn) {}

absl::StatusOr<WorkerServiceImpl::Served*> WorkerServiceImpl::GetServed(
    const std::string& model, const std::string& cache_dir,
    const std::string& compute_dtype) {
  auto dir = model::ResolveModelDir(model, cache_dir);
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
  auto served = std::make_unique<Served>();
  served->model = std::move(*loaded);
  AdapterPoolOptions pool;
  pool.max_device_adapters = options_.max_device_adapters;
  pool.base_model_names = {
      model.empty() ? std::string(model::kTinyModelName) : model, *dir};
  served->pool = std::make_unique<AdapterPool>(served->model.get(), pool);
  EngineOptions engine;
  engine.max_batch = options_.max_batch;
  engine.turns = &turns_;
  served->engine = std::make_unique<Engine>(served->model.get(), engine);
  Served* ptr = served.get();
  models_[key] = std::move(served);
  return ptr;
}

absl::StatusOr<const LlamaModel*> WorkerServiceImpl::GetModel(
    const std::string& model, const std::string& cache_dir,
    const std::string& compute_dtype) {
  auto served = GetServed(model, cache_dir, compute_dtype);
  if (!served.ok()) return served.status();
  return (*served)->model.get();
}

grpc::Status WorkerServiceImpl::Train(
    grpc::ServerContext* context, const lorad::worker::v1::TrainRequest* req,
    grpc::ServerWriter<lorad::worker::v1::TrainEvent>* writer) {
  absl::MutexLock lock(&train_mu_);
  auto model = GetModel(req->model(), req->model_cache_dir(),
                        req->config().compute_dtype());
  if (!model.ok()) return ToGrpc(model.status());
  TrainJob job;
  job.job_id = req->job_id();
  job.base_model_name = req->model().empty() ? "tiny" : req->model();
  job.training_path = req->training_path();
  job.validation_path = req->validation_path();
  job.job_dir = req->job_dir();
  job.adapter_dir = req->adapter_dir();
  job.hp = req->config();
  TrainCallbacks callbacks;
  bool writer_ok = true;
  callbacks.on_event = [&](const lorad::worker::v1::TrainEvent& e) {
    if (writer_ok) writer_ok = writer->Write(e);
  };
  callbacks.cancelled = [&] { return context->IsCancelled() || !writer_ok; };
  callbacks.device_turns = &turns_;
  return ToGrpc(RunTraining(**model, job, callbacks));
}

absl::StatusOr<std::shared_ptr<const AdapterSet>>
WorkerServiceImpl::ResolveAdapter(
    Served& served, const lorad::worker::v1::GenerateRequest& req) {
  if (!req.adapter_name().empty()) {
    if (!served.pool->Contains(req.adapter_name())) {
      if (req.adapter_dir().empty()) {
        return absl::NotFoundError(
            absl::StrCat("adapter \"", req.adapter_name(), "\" is not loaded"));
      }
      auto loaded = served.pool->Load(req.adapter_name(), 0, req.adapter_dir(),
                                      /*pinned=*/false);
      if (!loaded.ok()) return loaded.status();
    }
    return served.pool->Acquire(req.adapter_name());
  }
  if (req.adapter_dir().empty()) return nullptr;
  auto read = served.pool->ReadAdapter(req.adapter_dir());
  if (!read.ok()) return read.status();
  return std::make_shared<const AdapterSet>(
      read->CopyTo(served.model->device(), torch::kFloat32));
}

grpc::Status WorkerServiceImpl::Generate(
    grpc::ServerContext* context, const lorad::worker::v1::GenerateRequest* req,
    grpc::ServerWriter<lorad::worker::v1::GenerateChunk>* writer) {
  auto served = GetServed(req->model(), req->model_cache_dir(), "auto");
  if (!served.ok()) return ToGrpc(served.status());
  absl::StatusOr<std::shared_ptr<const AdapterSet>> adapter;
  try {
    adapter = ResolveAdapter(**served, *req);
  } catch (const c10::Error& e) {
    adapter = absl::InternalError(absl::StrCat("loading the adapter failed: ",
                                               e.what_without_backtrace()));
  }
  if (!adapter.ok()) return ToGrpc(adapter.status());
  auto stream = (*served)->engine->Submit(req->sampling(), *std::move(adapter));
  if (!stream.ok()) return ToGrpc(stream.status());
  lorad::worker::v1::GenerateChunk message;
  for (;;) {
    switch ((*stream)->Next(&message, absl::Milliseconds(100))) {
      case GenerationStream::Event::kMessage:
        if (!writer->Write(message)) {
          (*stream)->Cancel();
          return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
        }
        break;
      case GenerationStream::Event::kTimeout:
        if (context->IsCancelled()) {
          (*stream)->Cancel();
          return grpc::Status(grpc::StatusCode::CANCELLED, "client cancelled");
        }
        break;
      case GenerationStream::Event::kEnd:
        return ToGrpc((*stream)->status());
    }
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

namespace {

void FillInfo(const PooledAdapterInfo& in,
              lorad::worker::v1::WorkerAdapterInfo* out) {
  out->set_name(in.name);
  out->set_version(in.version);
  out->set_rank(static_cast<int32_t>(in.rank));
  for (const std::string& t : in.target_modules) out->add_target_modules(t);
  out->set_size_bytes(in.size_bytes);
  out->set_residency(in.on_device ? "device" : "host");
  out->set_pinned(in.pinned);
  out->set_last_used_unix_ms(in.last_used_ms);
  out->set_adapter_dir(in.dir);
}

}  // namespace

grpc::Status WorkerServiceImpl::LoadAdapter(
    grpc::ServerContext*, const lorad::worker::v1::LoadAdapterRequest* req,
    lorad::worker::v1::LoadAdapterResponse* resp) {
  if (req->name().empty() || req->adapter_dir().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "LoadAdapter needs name and adapter_dir");
  }
  auto served = GetServed(req->model(), req->model_cache_dir(), "auto");
  if (!served.ok()) return ToGrpc(served.status());
  auto info = (*served)->pool->Load(req->name(), req->version(),
                                    req->adapter_dir(), req->pinned());
  if (!info.ok()) return ToGrpc(info.status());
  FillInfo(*info, resp->mutable_adapter());
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::UnloadAdapter(
    grpc::ServerContext*, const lorad::worker::v1::UnloadAdapterRequest* req,
    lorad::worker::v1::UnloadAdapterResponse*) {
  bool found = false;
  absl::MutexLock lock(&models_mu_);
  for (auto& [key, served] : models_) {
    found |= served->pool->Unload(req->name()).ok();
  }
  if (!found) {
    return grpc::Status(
        grpc::StatusCode::NOT_FOUND,
        absl::StrCat("adapter \"", req->name(), "\" is not loaded"));
  }
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::ListAdapters(
    grpc::ServerContext*, const lorad::worker::v1::ListWorkerAdaptersRequest*,
    lorad::worker::v1::ListWorkerAdaptersResponse* resp) {
  absl::MutexLock lock(&models_mu_);
  for (auto& [key, served] : models_) {
    for (const PooledAdapterInfo& info : served->pool->List()) {
      FillInfo(info, resp->add_adapters());
    }
  }
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::ExportMerged(
    grpc::ServerContext*, const lorad::worker::v1::ExportMergedRequest* req,
    lorad::worker::v1::ExportMergedResponse* resp) {
  torch::ScalarType dtype = torch::kBFloat16;
  if (req->dtype() == "float16") {
    dtype = torch::kHalf;
  } else if (!req->dtype().empty() && req->dtype() != "bfloat16") {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("dtype must be bfloat16 or float16, got ", req->dtype()));
  }
  auto served = GetServed(req->model(), req->model_cache_dir(), "auto");
  if (!served.ok()) return ToGrpc(served.status());
  std::optional<AdapterSet> adapter;
  if (!req->adapter_dir().empty()) {
    auto read = (*served)->pool->ReadAdapter(req->adapter_dir());
    if (!read.ok()) return ToGrpc(read.status());
    adapter = *std::move(read);
  }
  // Low priority: serving keeps its turns while the export runs.
  DeviceTurn turn(&turns_, DeviceTurn::Kind::kTraining);
  absl::StatusOr<int64_t> bytes;
  try {
    bytes = (*served)->model->ExportMerged(adapter ? &*adapter : nullptr,
                                           req->out_dir(), dtype);
  } catch (const c10::Error& e) {
    bytes = absl::InternalError(absl::StrCat("export failed in LibTorch: ",
                                             e.what_without_backtrace()));
  }
  if (!bytes.ok()) return ToGrpc(bytes.status());
  resp->set_out_dir(req->out_dir());
  resp->set_size_bytes(*bytes);
  return grpc::Status::OK;
}

}  // namespace lorad::worker
