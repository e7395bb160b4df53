// lorad.v1.FineTuning: create, inspect, cancel and watch fine-tune jobs.
#ifndef LORAD_SERVER_API_FINE_TUNING_SERVICE_H_
#define LORAD_SERVER_API_FINE_TUNING_SERVICE_H_

#include "auth/ownership.h"
#include "jobs/admission.h"
#include "jobs/event_hub.h"
#include "jobs/job_journal.h"
#include "jobs/scheduler.h"
#include "lorad/v1/lorad.grpc.pb.h"
#include "store/dataset_store.h"
#include "store/job_store.h"

namespace lorad::server {

class FineTuningService final : public v1::FineTuning::CallbackService {
 public:
  // None are owned; all must outlive the service.
  FineTuningService(JobStore* store, DatasetStore* datasets,
                    JobJournal* journal, EventHub* hub, Scheduler* scheduler);

  // Validates the request (INVALID_ARGUMENT / NOT_FOUND naming the field),
  // fills the defaults, refuses a job that cannot fit the device
  // (RESOURCE_EXHAUSTED, see admission.h), stores the job (VALIDATING, then
  // QUEUED) and wakes the scheduler.
  grpc::ServerUnaryReactor* CreateJob(
      grpc::CallbackServerContext* context,
      const v1::CreateFineTuneJobRequest* request,
      v1::FineTuneJob* response) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context,
                                   const v1::GetFineTuneJobRequest* request,
                                   v1::FineTuneJob* response) override;
  // Newest first; limit 0 means 100.
  grpc::ServerUnaryReactor* ListJobs(
      grpc::CallbackServerContext* context,
      const v1::ListFineTuneJobsRequest* request,
      v1::ListFineTuneJobsResponse* response) override;
  // FAILED_PRECONDITION for a job already final.
  grpc::ServerUnaryReactor* CancelJob(
      grpc::CallbackServerContext* context,
      const v1::CancelFineTuneJobRequest* request,
      v1::FineTuneJob* response) override;
  grpc::ServerWriteReactor<v1::JobEvent>* WatchJob(
      grpc::CallbackServerContext* context,
      const v1::WatchFineTuneJobRequest* request) override;

  // Jobs are checked by `admission` (not owned) once it is set; set it
  // before serving.
  void set_admission(const Admission* admission) { admission_ = admission; }

  // Who sees and changes what (auth/ownership.h); not owned, may be null.
  void set_ownership(auth::Ownership* owners) { owners_ = owners; }

 private:
  auth::Ownership* owners_ = nullptr;
  JobStore* const store_;
  DatasetStore* const datasets_;
  JobJournal* const journal_;
  EventHub* const hub_;
  Scheduler* const scheduler_;
  const Admission* admission_ = nullptr;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_API_FINE_TUNING_SERVICE_H_
