// lorad.worker.v1.Worker: the process that owns the device. It loads a base
// model once per (directory, dtype) and keeps it, with an adapter pool and a
// continuous-batching engine beside it; training jobs run one at a time and
// share the device with the engines through DeviceTurns, micro-batch by
// micro-batch. This class is thread-safe.
#ifndef LORAD_WORKER_WORKER_SERVICE_H_
#define LORAD_WORKER_WORKER_SERVICE_H_

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "lorad/common/work_queue.h"
#include "lorad/internal/worker/v1/worker.grpc.pb.h"
#include "lorad/worker/adapter_pool.h"
#include "lorad/worker/device_turns.h"
#include "lorad/worker/engine.h"
#include "lorad/worker/llama_model.h"
#include "lorad/worker/trainer.h"
#include "lorad/worker/training_group.h"

namespace lorad::worker {

struct WorkerOptions {
  int max_device_adapters = 8;  // per base model; <= 0: unbounded
  int max_batch = 32;           // rows per decode step
  // While requests are being served, a training job gets one micro-batch
  // after this many engine turns.
  int inference_turns_per_training_turn = 4;
  // Fine-tune jobs run at the same time (the server's bound); above 1, the
  // jobs on one base have their micro-batches fused (training_group.h).
  int max_concurrent_jobs = 1;
};

// The service uses gRPC's callback API and never blocks a gRPC thread: a
// Generate call's setup (which may load the model and the adapter) and the
// adapter and export calls run on a small pool; a Train call runs on the
// training threads (max_concurrent_jobs at a time, later ones queue); the
// engine pushes each generated chunk through the request's GenerationStream,
// which wakes the call's reactor to write it. Ping and GetMemory answer at
// once.
class WorkerServiceImpl final
    : public lorad::worker::v1::Worker::CallbackService {
 public:
  explicit WorkerServiceImpl(torch::Device device,
                             WorkerOptions options = WorkerOptions());
  // Runs what the pools still hold (the server has shut down, so calls are
  // cancelled), then joins them.
  ~WorkerServiceImpl() override;

  grpc::ServerWriteReactor<lorad::worker::v1::TrainEvent>* Train(
      grpc::CallbackServerContext* context,
      const lorad::worker::v1::TrainRequest* request) override;
  grpc::ServerWriteReactor<lorad::worker::v1::GenerateChunk>* Generate(
      grpc::CallbackServerContext* context,
      const lorad::worker::v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Ping(
      grpc::CallbackServerContext* context,
      const lorad::worker::v1::PingRequest* request,
      lorad::worker::v1::PingResponse* response) override;
  grpc::ServerUnaryReactor* LoadAdapter(
      grpc::CallbackServerContext* context,
      const lorad::worker::v1::LoadAdapterRequest* request,
      lorad::worker::v1::LoadAdapterResponse* response) override;
  grpc::ServerUnaryReactor* UnloadAdapter(
      grpc::CallbackServerContext* context,
      const lorad::worker::v1::UnloadAdapterRequest* request,
      lorad::worker::v1::UnloadAdapterResponse* response) override;
  grpc::ServerUnaryReactor* ListAdapters(
      grpc::CallbackServerContext* context,
      const lorad::worker::v1::ListWorkerAdaptersRequest* request,
      lorad::worker::v1::ListWorkerAdaptersResponse* response) override;
  grpc::ServerUnaryReactor* ExportMerged(
      grpc::CallbackServerContext* context,
      const lorad::worker::v1::ExportMergedRequest* request,
      lorad::worker::v1::ExportMergedResponse* response) override;
  grpc::ServerUnaryReactor* GetMemory(
      grpc::CallbackServerContext* context,
      const lorad::worker::v1::GetMemoryRequest* request,
      lorad::worker::v1::GetMemoryResponse* response) override;

 private:
  class GenerateReactor;
  class TrainReactor;

  // One base model as loaded, with its adapter pool and serving engine.
  struct Served {
    std::unique_ptr<LlamaModel> model;
    std::unique_ptr<AdapterPool> pool;
    std::unique_ptr<Engine> engine;
    // Jobs training on this base at the same time share their passes.
    std::unique_ptr<TrainingGroup> group;
  };
  // The base `model` in `compute_dtype` with its block linears held as
  // `quantization` ("" or nf4, int8), loaded on first use; each
  // (directory, dtype, quantization) is its own entry, so an int8 base and
  // an NF4 base of the same model can both be loaded. InvalidArgument for
  // an unknown quantization.
  absl::StatusOr<Served*> GetServed(const std::string& model,
                                    const std::string& cache_dir,
                                    const std::string& compute_dtype,
                                    const std::string& quantization);
  absl::StatusOr<const LlamaModel*> GetModel(const std::string& model,
                                             const std::string& cache_dir,
                                             const std::string& compute_dtype,
                                             const std::string& quantization);
  // The adapter a generate request asks for (nullptr: the base).
  absl::StatusOr<std::shared_ptr<const AdapterSet>> ResolveAdapter(
      Served& served, const lorad::worker::v1::GenerateRequest& request);
  // Loads what `request` needs and queues it on its model's engine.
  absl::StatusOr<std::shared_ptr<GenerationStream>> StartGeneration(
      const lorad::worker::v1::GenerateRequest& request);
  // Runs one training job to its end, on the training thread.
  absl::Status RunTrain(const lorad::worker::v1::TrainRequest& request,
                        TrainCallbacks callbacks);
  // Runs `work` on the pool and finishes the unary call with its status.
  grpc::ServerUnaryReactor* Offload(grpc::CallbackServerContext* context,
                                    std::function<grpc::Status()> work);

  grpc::Status DoLoadAdapter(const lorad::worker::v1::LoadAdapterRequest& req,
                             lorad::worker::v1::LoadAdapterResponse* resp);
  grpc::Status DoUnloadAdapter(
      const lorad::worker::v1::UnloadAdapterRequest& req);
  grpc::Status DoListAdapters(
      lorad::worker::v1::ListWorkerAdaptersResponse* resp);
  grpc::Status DoExportMerged(const lorad::worker::v1::ExportMergedRequest& req,
                              lorad::worker::v1::ExportMergedResponse* resp);

  const torch::Device device_;
  const WorkerOptions options_;
  DeviceTurns turns_;
  absl::Mutex models_mu_;
  std::map<std::string, std::unique_ptr<Served>> models_
      ABSL_GUARDED_BY(models_mu_);
  // Declared last: destroyed (and joined) first, while what their tasks use
  // is still there.
  WorkQueue pool_;
  // max_concurrent_jobs threads: one per job running; later ones queue.
  WorkQueue training_;
};

// absl::Status -> grpc::Status with the same code and message.
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace lorad::worker

#endif  // LORAD_WORKER_WORKER_SERVICE_H_
