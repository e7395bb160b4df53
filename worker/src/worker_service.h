// lorad.worker.v1.Worker: the process that owns the device. It loads a base
// model once per (directory, dtype) and keeps it, with an adapter pool and a
// continuous-batching engine beside it; training jobs run one at a time and
// share the device with the engines through DeviceTurns, micro-batch by
// micro-batch. This class is thread-safe.
#ifndef LORAD_WORKER_WORKER_SERVICE_H_
#define LORAD_WORKER_WORKER_SERVICE_H_

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "lorad/internal/worker/v1/worker.grpc.pb.h"
#include "lorad/worker/adapter_pool.h"
#include "lorad/worker/device_turns.h"
#include "lorad/worker/engine.h"
#include "lorad/worker/llama_model.h"

namespace lorad::worker {

struct WorkerOptions {
  int max_device_adapters = 8;  // per base model; <= 0: unbounded
  int max_batch = 32;           // rows per decode step
  // While requests are being served, a training job gets one micro-batch
  // after this many engine turns.
  int inference_turns_per_training_turn = 4;
};

class WorkerServiceImpl final : public lorad::worker::v1::Worker::Service {
 public:
  explicit WorkerServiceImpl(torch::Device device,
                             WorkerOptions options = WorkerOptions());

  grpc::Status Train(
      grpc::ServerContext* context,
      const lorad::worker::v1::TrainRequest* request,
      grpc::ServerWriter<lorad::worker::v1::TrainEvent>* writer) override;
  grpc::Status Generate(
      grpc::ServerContext* context,
      const lorad::worker::v1::GenerateRequest* request,
      grpc::ServerWriter<lorad::worker::v1::GenerateChunk>* writer) override;
  grpc::Status Ping(grpc::ServerContext* context,
                    const lorad::worker::v1::PingRequest* request,
                    lorad::worker::v1::PingResponse* response) override;
  grpc::Status LoadAdapter(
      grpc::ServerContext* context,
      const lorad::worker::v1::LoadAdapterRequest* request,
      lorad::worker::v1::LoadAdapterResponse* response) override;
  grpc::Status UnloadAdapter(
      grpc::ServerContext* context,
      const lorad::worker::v1::UnloadAdapterRequest* request,
      lorad::worker::v1::UnloadAdapterResponse* response) override;
  grpc::Status ListAdapters(
      grpc::ServerContext* context,
      const lorad::worker::v1::ListWorkerAdaptersRequest* request,
      lorad::worker::v1::ListWorkerAdaptersResponse* response) override;
  grpc::Status ExportMerged(
      grpc::ServerContext* context,
      const lorad::worker::v1::ExportMergedRequest* request,
      lorad::worker::v1::ExportMergedResponse* response) override;
  grpc::Status GetMemory(
      grpc::ServerContext* context,
      const lorad::worker::v1::GetMemoryRequest* request,
      lorad::worker::v1::GetMemoryResponse* response) override;

 private:
  // One base model as loaded, with its adapter pool and serving engine.
  struct Served {
    std::unique_ptr<LlamaModel> model;
    std::unique_ptr<AdapterPool> pool;
    std::unique_ptr<Engine> engine;
  };
  absl::StatusOr<Served*> GetServed(const std::string& model,
                                    const std::string& cache_dir,
                                    const std::string& compute_dtype);
  absl::StatusOr<const LlamaModel*> GetModel(const std::string& model,
                                             const std::string& cache_dir,
                                             const std::string& compute_dtype);
  // The adapter a generate request asks for (nullptr: the base).
  absl::StatusOr<std::shared_ptr<const AdapterSet>> ResolveAdapter(
      Served& served, const lorad::worker::v1::GenerateRequest& request);

  const torch::Device device_;
  const WorkerOptions options_;
  DeviceTurns turns_;
  absl::Mutex models_mu_;
  std::map<std::string, std::unique_ptr<Served>> models_
      ABSL_GUARDED_BY(models_mu_);
  absl::Mutex train_mu_;  // one training job at a time
};

// absl::Status -> grpc::Status with the same code and message.
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace lorad::worker

#endif  // LORAD_WORKER_WORKER_SERVICE_H_
