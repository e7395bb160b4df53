// lorad.v1.BatchInference: batch inference jobs over gRPC.
#ifndef LORAD_SERVER_API_BATCH_SERVICE_H_
#define LORAD_SERVER_API_BATCH_SERVICE_H_

#include <cstdint>

#include "api/inference_service.h"
#include "auth/ownership.h"
#include "jobs/batch_journal.h"
#include "jobs/batch_runner.h"
#include "jobs/event_hub.h"
#include "lorad/common/work_queue.h"
#include "lorad/v1/lorad.grpc.pb.h"
#include "options.h"
#include "store/batch_job_store.h"

namespace lorad::server {

class BatchService final : public v1::BatchInference::CallbackService {
 public:
  // None are owned; all must outlive the service. Inputs are written
  // through options.env.
  BatchService(const DaemonOptions& options, BatchJobStore* store,
               BatchJournal* journal, EventHub* hub, BatchRunner* runner,
               InferenceService* inference);

  // Header, then chunks. RESOURCE_EXHAUSTED past --max_upload_bytes or
  // when the largest requests cannot fit the device batch_concurrency at a
  // time (Admission::CheckBatch, through the inference service's admission);
  // INVALID_ARGUMENT naming the line and field for a bad request line, and
  // NOT_FOUND / FAILED_PRECONDITION naming the line for an adapter that
  // cannot be served.
  grpc::ServerReadReactor<v1::CreateBatchJobRequest>* CreateJob(
      grpc::CallbackServerContext* context, v1::BatchJob* response) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context,
                                   const v1::GetBatchJobRequest* request,
                                   v1::BatchJob* response) override;
  grpc::ServerUnaryReactor* ListJobs(
      grpc::CallbackServerContext* context,
      const v1::ListBatchJobsRequest* request,
      v1::ListBatchJobsResponse* response) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* context,
                                      const v1::CancelBatchJobRequest* request,
                                      v1::BatchJob* response) override;
  grpc::ServerWriteReactor<v1::JobEvent>* WatchJob(
      grpc::CallbackServerContext* context,
      const v1::WatchBatchJobRequest* request) override;
  grpc::ServerWriteReactor<v1::BatchResultsChunk>* GetResults(
      grpc::CallbackServerContext* context,
      const v1::GetBatchResultsRequest* request) override;

  // Validates and stores a new job (QUEUED) and wakes the runner.
  absl::StatusOr<v1::BatchJob> Create(const v1::BatchJobHeader& header,
                                      const std::string& contents);

  // Who sees and changes what (auth/ownership.h); not owned, may be null.
  void set_ownership(auth::Ownership* owners) { owners_ = owners; }

 private:
  auth::Ownership* owners_ = nullptr;
  const DataLayout layout_;
  const int64_t max_upload_bytes_;
  Env* const env_;
  BatchJobStore* const store_;
  BatchJournal* const journal_;
  EventHub* const hub_;
  BatchRunner* const runner_;
  InferenceService* const inference_;
  WorkQueue work_{1};
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_API_BATCH_SERVICE_H_
