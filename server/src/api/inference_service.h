// lorad.v1.Inference: text generation, relayed to the worker.
#ifndef LORAD_SERVER_API_INFERENCE_SERVICE_H_
#define LORAD_SERVER_API_INFERENCE_SERVICE_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "lorad/internal/worker/v1/worker.pb.h"
#include "lorad/v1/lorad.grpc.pb.h"
#include "options.h"
#include "serving/adapter_registry.h"
#include "store/job_store.h"
#include "telemetry/metrics.h"
#include "worker_link/worker_supervisor.h"

namespace lorad::server {

// Each call resolves its adapter (empty: the base model; otherwise the id of
// a SUCCEEDED job: NOT_FOUND / FAILED_PRECONDITION if not) and relays the
// worker's Generate stream on a thread of its own, one response at a time.
// The worker is shared with training and serialises what it runs.
class InferenceService final : public v1::Inference::CallbackService {
 public:
  // Neither pointer is owned; both must outlive the service.
  InferenceService(const DaemonOptions& options, JobStore* store,
                   WorkerSupervisor* supervisor);
  // Waits for the relays still running (the server has cancelled them).
  ~InferenceService() override;

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* context,
      const v1::GenerateRequest* request) override;

  // The worker request for `request`, or why it cannot be served.
  absl::StatusOr<worker::v1::GenerateRequest> Resolve(
      const v1::GenerateRequest& request);

  // Adapter names resolve through `registry` (not owned) once it is set;
  // set it before serving.
  void set_registry(AdapterRegistry* registry) { registry_ = registry; }

  WorkerSupervisor* supervisor() const { return supervisor_; }
  // Where finished requests are counted; not owned, may be null (none).
  void SetMetrics(Metrics* metrics) { metrics_ = metrics; }
  Metrics* metrics() const { return metrics_; }
  void RelayStarted();
  void RelayEnded();

 private:
  const DataLayout layout_;
  const std::string base_model_;
  JobStore* const store_;
  WorkerSupervisor* const supervisor_;
  Metrics* metrics_ = nullptr;
  AdapterRegistry* registry_ = nullptr;
  absl::Mutex mu_;
  int relays_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_API_INFERENCE_SERVICE_H_
