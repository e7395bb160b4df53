// lorad.v1.Inference: text generation, relayed to the worker.
#ifndef LORAD_SERVER_API_INFERENCE_SERVICE_H_
#define LORAD_SERVER_API_INFERENCE_SERVICE_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "auth/ownership.h"
#include "jobs/admission.h"
#include "lorad/internal/worker/v1/worker.pb.h"
#include "lorad/v1/lorad.grpc.pb.h"
#include "options.h"
#include "serving/adapter_registry.h"
#include "store/job_store.h"
#include "telemetry/metrics.h"
#include "worker_link/worker_client.h"

namespace lorad::server {

// Each call resolves its adapter (empty: the base model; otherwise the id of
// a SUCCEEDED job: NOT_FOUND / FAILED_PRECONDITION if not), a short read of
// the store on the gRPC thread, and relays the worker's Generate stream with
// callback reactors chained end to end: a chunk is written to the client,
// and only when that write completes is the next one read from the worker,
// so an unread client stream stalls its worker stream instead of buffering.
// No thread waits for the worker or a stream. Cancelling the call cancels
// the worker's; a failed worker call ends the call with its status.
class InferenceService final : public v1::Inference::CallbackService {
 public:
  // Neither pointer is owned; both must outlive the service.
  InferenceService(const DaemonOptions& options, JobStore* store,
                   WorkerClient* worker);
  // Waits for the relays still running (the server has cancelled them).
  ~InferenceService() override;

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* context,
      const v1::GenerateRequest* request) override;

  // The worker request for `request`, or why it cannot be served: first
  // ValidateGenerateRequest (InvalidArgument naming the field), then the
  // adapter (NotFound, FailedPrecondition).
  absl::StatusOr<worker::v1::GenerateRequest> Resolve(
      const v1::GenerateRequest& request);

  // Adapter names resolve through `registry` (not owned) once it is set;
  // set it before serving.
  void set_registry(AdapterRegistry* registry) { registry_ = registry; }

  // Requests are checked against the device's room by `admission` (not
  // owned) once it is set; set it before serving.
  void set_admission(const Admission* admission) { admission_ = admission; }
  const Admission* admission() const { return admission_; }
  // `request` back, or RESOURCE_EXHAUSTED when its KV cache cannot fit
  // (Admission::CheckGenerate); `request` while no admission is set.
  absl::StatusOr<worker::v1::GenerateRequest> Admit(
      worker::v1::GenerateRequest request) const;

  WorkerClient* worker() const { return worker_; }
  // Where finished requests are counted; not owned, may be null (none).
  void SetMetrics(Metrics* metrics) { metrics_ = metrics; }
  Metrics* metrics() const { return metrics_; }
  void RelayStarted();
  void RelayEnded();

  // Who sees and changes what (auth/ownership.h); not owned, may be null.
  void set_ownership(auth::Ownership* owners) { owners_ = owners; }

 private:
  auth::Ownership* owners_ = nullptr;
  const DataLayout layout_;
  const std::string base_model_;
  JobStore* const store_;
  WorkerClient* const worker_;
  Metrics* metrics_ = nullptr;
  AdapterRegistry* registry_ = nullptr;
  const Admission* admission_ = nullptr;
  absl::Mutex mu_;
  int relays_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_API_INFERENCE_SERVICE_H_
