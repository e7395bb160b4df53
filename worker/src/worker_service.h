// lorad.worker.v1.Worker: the process that owns the device. It loads a base
// model once per (directory, dtype) and keeps it; training jobs run one at a
// time; generation shares the same frozen base. This class is thread-safe.
#ifndef LORAD_WORKER_WORKER_SERVICE_H_
#define LORAD_WORKER_WORKER_SERVICE_H_

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "lorad/worker/llama_model.h"
#include "lorad/worker/v1/worker.grpc.pb.h"

namespace lorad::worker {

class WorkerServiceImpl final : public lorad::worker::v1::Worker::Service {
 public:
  // `device` is "auto", "cpu" or "cuda[:N]".
  explicit WorkerServiceImpl(torch::Device device);

  grpc::Status Train(
      grpc::ServerContext* context,
      const lorad::worker::v1::TrainRequest* request,
      grpc::ServerWriter<lorad::worker::v1::TrainEvent>* writer) override;
  grpc::Status Generate(
      grpc::ServerContext* context,
      const lorad::worker::v1::GenerateRequest* request,
      grpc::ServerWriter<lorad::v1::GenerateResponse>* writer) override;
  grpc::Status Ping(grpc::ServerContext* context,
                    const lorad::worker::v1::PingRequest* request,
                    lorad::worker::v1::PingResponse* response) override;
  grpc::Status GetMemory(
      grpc::ServerContext* context,
      const lorad::worker::v1::GetMemoryRequest* request,
      lorad::worker::v1::GetMemoryResponse* response) override;

 private:
  absl::StatusOr<const LlamaModel*> GetModel(const std::string& model,
                                             const std::string& cache_dir,
                                             const std::string& compute_dtype);

  const torch::Device device_;
  absl::Mutex models_mu_;
  std::map<std::string, std::unique_ptr<LlamaModel>> models_
      ABSL_GUARDED_BY(models_mu_);
  absl::Mutex train_mu_;  // one training job at a time
};

// absl::Status -> grpc::Status with the same code and message.
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace lorad::worker

#endif  // LORAD_WORKER_WORKER_SERVICE_H_
