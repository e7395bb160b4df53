#include "worker_service.h"

#include <unistd.h>

#include <algorithm>
#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lorad/model/base_quantization.h"
#include "lorad/model/json_constraint.h"
#include "lorad/model/tiny_model.h"
#include "lorad/worker/device_memory.h"

namespace lorad::worker {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

// Writes a request's chunks as the engine produces them: the stream's
// listener (the engine's thread) and each completed write take the next one.
// Owned by itself until OnDone, and by whoever is working for it.
class WorkerServiceImpl::GenerateReactor final
    : public grpc::ServerWriteReactor<lorad::worker::v1::GenerateChunk>,
      public std::enable_shared_from_this<GenerateReactor> {
 public:
  static GenerateReactor* Start(WorkerServiceImpl* service,
                                const lorad::worker::v1::GenerateRequest& req) {
    std::shared_ptr<GenerateReactor> reactor(new GenerateReactor(req));
    reactor->self_ = reactor;
    service->pool_.Run([service, reactor] { reactor->Setup(service); });
    return reactor.get();
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) cancelled_ = true;
    }
    if (!ok) CancelStream();
    Pump();
  }

  void OnCancel() override {
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
    }
    CancelStream();
    Pump();
  }

  void OnDone() override {
    std::shared_ptr<GenerateReactor> last_reference;
    absl::MutexLock lock(&mu_);
    last_reference = std::move(self_);
  }

 private:
  explicit GenerateReactor(const lorad::worker::v1::GenerateRequest& req)
      : request_(req) {}

  // On the pool: may load the model and the adapter.
  void Setup(WorkerServiceImpl* service) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;  // cancelled meanwhile
    }
    absl::StatusOr<std::shared_ptr<GenerationStream>> stream =
        service->StartGeneration(request_);
    if (!stream.ok()) {
      End(ToGrpc(stream.status()));
      return;
    }
    std::weak_ptr<GenerateReactor> weak = weak_from_this();
    (*stream)->SetListener([weak] {
      if (std::shared_ptr<GenerateReactor> reactor = weak.lock()) {
        reactor->Pump();
      }
    });
    {
      absl::MutexLock lock(&mu_);
      stream_ = *stream;
    }
    CancelStream();
    Pump();
  }

  // Tells the engine to drop the request once the call is cancelled.
  void CancelStream() {
    std::shared_ptr<GenerationStream> stream;
    {
      absl::MutexLock lock(&mu_);
      if (!cancelled_) return;
      stream = stream_;
    }
    if (stream != nullptr) stream->Cancel();
  }

  // Starts the next write, or finishes, when that is due.
  void Pump() {
    grpc::Status status;
    bool finish = true;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || writing_) return;
      if (cancelled_) {
        finished_ = true;
        status = grpc::Status(grpc::StatusCode::CANCELLED, "client cancelled");
      } else if (stream_ == nullptr) {
        return;  // still setting up
      } else {
        switch (stream_->Next(&message_, absl::ZeroDuration())) {
          case GenerationStream::Event::kTimeout:
            return;
          case GenerationStream::Event::kMessage:
            writing_ = true;
            finish = false;
            break;
          case GenerationStream::Event::kEnd:
            finished_ = true;
            status = ToGrpc(stream_->status());
            break;
        }
      }
    }
    // Outside mu_: the reactions may run inside these calls.
    if (finish) {
      Finish(status);
    } else {
      StartWrite(&message_);
    }
  }

  void End(const grpc::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
    }
    Finish(status);
  }

  const lorad::worker::v1::GenerateRequest request_;
  std::shared_ptr<GenerateReactor> self_;
  lorad::worker::v1::GenerateChunk message_;
  absl::Mutex mu_;
  std::shared_ptr<GenerationStream> stream_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// Runs one job on the training thread and writes its events as they come;
// the training thread waits only when the client falls far behind.
class WorkerServiceImpl::TrainReactor final
    : public grpc::ServerWriteReactor<lorad::worker::v1::TrainEvent> {
 public:
  static TrainReactor* Start(WorkerServiceImpl* service,
                             const lorad::worker::v1::TrainRequest& req) {
    std::shared_ptr<TrainReactor> reactor(new TrainReactor(req));
    reactor->self_ = reactor;
    service->training_.Run([service, reactor] { reactor->Run(service); });
    return reactor.get();
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) cancelled_ = true;
    }
    Pump();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }

  void OnDone() override {
    std::shared_ptr<TrainReactor> last_reference;
    absl::MutexLock lock(&mu_);
    last_reference = std::move(self_);
  }

 private:
  // Events held for the client beyond this make the training thread wait.
  static constexpr size_t kMaxQueued = 64;

  explicit TrainReactor(const lorad::worker::v1::TrainRequest& req)
      : request_(req) {}

  void Run(WorkerServiceImpl* service) {
    TrainCallbacks callbacks;
    callbacks.on_event = [this](const lorad::worker::v1::TrainEvent& event) {
      Enqueue(event);
    };
    callbacks.cancelled = [this] {
      absl::MutexLock lock(&mu_);
      return cancelled_;
    };
    const grpc::Status status =
        ToGrpc(service->RunTrain(request_, std::move(callbacks)));
    {
      absl::MutexLock lock(&mu_);
      ended_ = true;
      end_status_ = status;
    }
    Pump();
  }

  void Enqueue(const lorad::worker::v1::TrainEvent& event) {
    {
      absl::MutexLock lock(&mu_);
      auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return cancelled_ || queue_.size() < kMaxQueued;
      };
      mu_.Await(absl::Condition(&room));
      if (cancelled_) return;
      queue_.push_back(event);
    }
    Pump();
  }

  // Starts the next write, or finishes once the job has ended and its
  // events are written (or the call is cancelled).
  void Pump() {
    grpc::Status status;
    bool write = false;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || writing_) return;
      if (!queue_.empty() && !cancelled_) {
        message_ = std::move(queue_.front());
        queue_.pop_front();
        writing_ = write = true;
      } else if (ended_) {
        finished_ = true;
        status = end_status_;
      } else {
        return;
      }
    }
    // Outside mu_: the reactions may run inside these calls.
    if (write) {
      StartWrite(&message_);
    } else {
      Finish(status);
    }
  }

  const lorad::worker::v1::TrainRequest request_;
  std::shared_ptr<TrainReactor> self_;
  lorad::worker::v1::TrainEvent message_;
  absl::Mutex mu_;
  std::deque<lorad::worker::v1::TrainEvent> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status end_status_ ABSL_GUARDED_BY(mu_);
};

WorkerServiceImpl::WorkerServiceImpl(torch::Device device,
                                     WorkerOptions options)
    : device_(device),
      options_(options),
      turns_(options.inference_turns_per_training_turn),
      pool_(4),
      training_(std::max(1, options.max_concurrent_jobs)) {}

WorkerServiceImpl::~WorkerServiceImpl() = default;

absl::StatusOr<WorkerServiceImpl::Served*> WorkerServiceImpl::GetServed(
    const std::string& model, const std::string& cache_dir,
    const std::string& compute_dtype, const std::string& quantization) {
  auto quant = model::ParseBaseQuantization(quantization);
  if (!quant.ok()) return quant.status();
  auto dir = model::ResolveModelDir(model, cache_dir);
  if (!dir.ok()) return dir.status();
  torch::ScalarType dtype = torch::kFloat32;
  if (compute_dtype == "bfloat16" ||
      (compute_dtype != "float32" && device_.is_cuda())) {
    dtype = torch::kBFloat16;
  }
  std::string key = absl::StrCat(*dir, "|", c10::toString(dtype), "|",
                                 model::BaseQuantizationName(*quant));
  absl::MutexLock lock(&models_mu_);
  auto it = models_.find(key);
  if (it != models_.end()) return it->second.get();
  LoadOptions options;
  options.device = device_;
  options.dtype = dtype;
  options.quantization = *quant;
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
  // JSON mode: one factory per model (its vocabulary's bytes in tries),
  // built now; a vocabulary it cannot serve refuses JSON requests only.
  auto factory =
      model::JsonConstraintFactory::Create(served->model->tokenizer());
  std::shared_ptr<const model::JsonConstraintFactory> json;
  absl::Status json_status = factory.status();
  if (factory.ok()) json = std::move(*factory);
  engine.make_constraint =
      [json, json_status](const lorad::worker::v1::ResponseFormat& format)
      -> absl::StatusOr<std::unique_ptr<model::TokenConstraint>> {
    if (json == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "response_format ", format.type(),
          " is not available for this model: ", json_status.message()));
    }
    return json->Create(format.type(), format.json_schema());
  };
  served->engine = std::make_unique<Engine>(served->model.get(), engine);
  served->group = std::make_unique<TrainingGroup>(served->model.get(), &turns_);
  Served* ptr = served.get();
  models_[key] = std::move(served);
  return ptr;
}

absl::StatusOr<const LlamaModel*> WorkerServiceImpl::GetModel(
    const std::string& model, const std::string& cache_dir,
    const std::string& compute_dtype, const std::string& quantization) {
  auto served = GetServed(model, cache_dir, compute_dtype, quantization);
  if (!served.ok()) return served.status();
  return (*served)->model.get();
}

absl::Status WorkerServiceImpl::RunTrain(
    const lorad::worker::v1::TrainRequest& req, TrainCallbacks callbacks) {
  auto served =
      GetServed(req.model(), req.model_cache_dir(),
                req.config().compute_dtype(), req.config().quantization());
  if (!served.ok()) return served.status();
  TrainJob job;
  job.job_id = req.job_id();
  job.base_model_name =
      req.model().empty() ? model::kTinyModelName : req.model();
  job.training_path = req.training_path();
  job.validation_path = req.validation_path();
  job.job_dir = req.job_dir();
  job.adapter_dir = req.adapter_dir();
  job.recorded_step = req.recorded_step();
  job.hp = req.config();
  callbacks.device_turns = &turns_;
  if (options_.max_concurrent_jobs > 1)
    callbacks.group = (*served)->group.get();
  return RunTraining(*(*served)->model, job, callbacks);
}

grpc::ServerWriteReactor<lorad::worker::v1::TrainEvent>*
WorkerServiceImpl::Train(grpc::CallbackServerContext*,
                         const lorad::worker::v1::TrainRequest* req) {
  return TrainReactor::Start(this, *req);
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

absl::StatusOr<std::shared_ptr<GenerationStream>>
WorkerServiceImpl::StartGeneration(
    const lorad::worker::v1::GenerateRequest& req) {
  auto served =
      GetServed(req.model(), req.model_cache_dir(), "auto", req.quantization());
  if (!served.ok()) return served.status();
  absl::StatusOr<std::shared_ptr<const AdapterSet>> adapter;
  try {
    adapter = ResolveAdapter(**served, req);
  } catch (const c10::Error& e) {
    adapter = absl::InternalError(absl::StrCat("loading the adapter failed: ",
                                               e.what_without_backtrace()));
  }
  if (!adapter.ok()) return adapter.status();
  return (*served)->engine->Submit(req.sampling(), *std::move(adapter));
}

grpc::ServerWriteReactor<lorad::worker::v1::GenerateChunk>*
WorkerServiceImpl::Generate(grpc::CallbackServerContext*,
                            const lorad::worker::v1::GenerateRequest* req) {
  return GenerateReactor::Start(this, *req);
}

grpc::ServerUnaryReactor* WorkerServiceImpl::Offload(
    grpc::CallbackServerContext* context, std::function<grpc::Status()> work) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  pool_.Run([reactor, work = std::move(work)] { reactor->Finish(work()); });
  return reactor;
}

grpc::ServerUnaryReactor* WorkerServiceImpl::Ping(
    grpc::CallbackServerContext* context, const lorad::worker::v1::PingRequest*,
    lorad::worker::v1::PingResponse* resp) {
  resp->set_pid(::getpid());
  resp->set_device(device_.str());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* WorkerServiceImpl::GetMemory(
    grpc::CallbackServerContext* context,
    const lorad::worker::v1::GetMemoryRequest*,
    lorad::worker::v1::GetMemoryResponse* response) {
  *response->mutable_memory() = CurrentMemoryUsage(device_);
  response->set_pid(getpid());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
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

grpc::ServerUnaryReactor* WorkerServiceImpl::LoadAdapter(
    grpc::CallbackServerContext* context,
    const lorad::worker::v1::LoadAdapterRequest* req,
    lorad::worker::v1::LoadAdapterResponse* resp) {
  return Offload(context,
                 [this, req, resp] { return DoLoadAdapter(*req, resp); });
}

grpc::ServerUnaryReactor* WorkerServiceImpl::UnloadAdapter(
    grpc::CallbackServerContext* context,
    const lorad::worker::v1::UnloadAdapterRequest* req,
    lorad::worker::v1::UnloadAdapterResponse*) {
  return Offload(context, [this, req] { return DoUnloadAdapter(*req); });
}

grpc::ServerUnaryReactor* WorkerServiceImpl::ListAdapters(
    grpc::CallbackServerContext* context,
    const lorad::worker::v1::ListWorkerAdaptersRequest*,
    lorad::worker::v1::ListWorkerAdaptersResponse* resp) {
  return Offload(context, [this, resp] { return DoListAdapters(resp); });
}

grpc::ServerUnaryReactor* WorkerServiceImpl::ExportMerged(
    grpc::CallbackServerContext* context,
    const lorad::worker::v1::ExportMergedRequest* req,
    lorad::worker::v1::ExportMergedResponse* resp) {
  return Offload(context,
                 [this, req, resp] { return DoExportMerged(*req, resp); });
}

grpc::Status WorkerServiceImpl::DoLoadAdapter(
    const lorad::worker::v1::LoadAdapterRequest& req,
    lorad::worker::v1::LoadAdapterResponse* resp) {
  if (req.name().empty() || req.adapter_dir().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "LoadAdapter needs name and adapter_dir");
  }
  auto served =
      GetServed(req.model(), req.model_cache_dir(), "auto", req.quantization());
  if (!served.ok()) return ToGrpc(served.status());
  auto info = (*served)->pool->Load(req.name(), req.version(),
                                    req.adapter_dir(), req.pinned());
  if (!info.ok()) return ToGrpc(info.status());
  FillInfo(*info, resp->mutable_adapter());
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::DoUnloadAdapter(
    const lorad::worker::v1::UnloadAdapterRequest& req) {
  bool found = false;
  absl::MutexLock lock(&models_mu_);
  for (auto& [key, served] : models_) {
    found |= served->pool->Unload(req.name()).ok();
  }
  if (!found) {
    return grpc::Status(
        grpc::StatusCode::NOT_FOUND,
        absl::StrCat("adapter \"", req.name(), "\" is not loaded"));
  }
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::DoListAdapters(
    lorad::worker::v1::ListWorkerAdaptersResponse* resp) {
  absl::MutexLock lock(&models_mu_);
  for (auto& [key, served] : models_) {
    for (const PooledAdapterInfo& info : served->pool->List()) {
      FillInfo(info, resp->add_adapters());
    }
  }
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::DoExportMerged(
    const lorad::worker::v1::ExportMergedRequest& req,
    lorad::worker::v1::ExportMergedResponse* resp) {
  torch::ScalarType dtype = torch::kBFloat16;
  if (req.dtype() == "float16") {
    dtype = torch::kHalf;
  } else if (!req.dtype().empty() && req.dtype() != "bfloat16") {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("dtype must be bfloat16 or float16, got ", req.dtype()));
  }
  auto served =
      GetServed(req.model(), req.model_cache_dir(), "auto", req.quantization());
  if (!served.ok()) return ToGrpc(served.status());
  std::optional<AdapterSet> adapter;
  if (!req.adapter_dir().empty()) {
    auto read = (*served)->pool->ReadAdapter(req.adapter_dir());
    if (!read.ok()) return ToGrpc(read.status());
    adapter = *std::move(read);
  }
  // Low priority: serving keeps its turns while the export runs.
  DeviceTurn turn(&turns_, DeviceTurn::Kind::kTraining);
  absl::StatusOr<int64_t> bytes;
  try {
    bytes = (*served)->model->ExportMerged(adapter ? &*adapter : nullptr,
                                           req.out_dir(), dtype);
  } catch (const c10::Error& e) {
    bytes = absl::InternalError(absl::StrCat("export failed in LibTorch: ",
                                             e.what_without_backtrace()));
  }
  if (!bytes.ok()) return ToGrpc(bytes.status());
  resp->set_out_dir(req.out_dir());
  resp->set_size_bytes(*bytes);
  return grpc::Status::OK;
}

}  // namespace lorad::worker
