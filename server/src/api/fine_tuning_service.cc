#include "api/fine_tuning_service.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "api/grpc_status.h"
#include "api/watch_job_reactor.h"
#include "auth/call_gate.h"
#include "auth/ownership.h"
#include "jobs/job_validation.h"
#include "lorad/common/status_macros.h"

namespace lorad::server {
namespace {

std::string NewJobId() {
  std::random_device random;
  uint64_t bits = (uint64_t{random()} << 32) | random();
  return absl::StrFormat("ftjob-%012x", bits & ((uint64_t{1} << 48) - 1));
}

absl::StatusOr<v1::FineTuneJob> Create(
    DatasetStore& datasets, JobJournal& journal, const Admission* admission,
    const v1::CreateFineTuneJobRequest& req) {
  v1::FineTuneJob job;
  job.set_id(NewJobId());
  job.set_model(req.model());
  job.set_training_file(req.training_file());
  job.set_validation_file(req.validation_file());
  *job.mutable_hyperparameters() = req.hyperparameters();
  job.set_suffix(req.suffix());
  job.set_created_at_unix(absl::ToUnixSeconds(absl::Now()));
  LORAD_RETURN_IF_ERROR(ValidateJob(datasets, req.has_hyperparameters(), job));
  std::string note;
  if (admission != nullptr) {
    LORAD_RETURN_IF_ERROR(admission->CheckFineTune(job, &note));
  }
  job.set_state(v1::VALIDATING);
  LORAD_RETURN_IF_ERROR(journal.Create(job, "validating"));
  return journal.Update(job.id(), [&note](v1::FineTuneJob& job,
                                          std::vector<v1::JobEvent>& events) {
    if (!note.empty()) events.emplace_back().set_log(note);
    TransitionTo(job, v1::QUEUED, "queued", events);
    return absl::OkStatus();
  });
}

}  // namespace

FineTuningService::FineTuningService(JobStore* store, DatasetStore* datasets,
                                     JobJournal* journal, EventHub* hub,
                                     Scheduler* scheduler)
    : store_(store),
      datasets_(datasets),
      journal_(journal),
      hub_(hub),
      scheduler_(scheduler) {}

grpc::ServerUnaryReactor* FineTuningService::CreateJob(
    grpc::CallbackServerContext* context,
    const v1::CreateFineTuneJobRequest* request, v1::FineTuneJob* response) {
  if (auto* refused = auth::RefuseUnary(context)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status seen = auth::CheckVisible(owners_, context, auth::Kind::kDataset,
                                         request->training_file());
  if (seen.ok() && !request->validation_file().empty()) {
    seen = auth::CheckVisible(owners_, context, auth::Kind::kDataset,
                              request->validation_file());
  }
  absl::StatusOr<v1::FineTuneJob> job =
      seen.ok()
          ? auth::Claimed(owners_, auth::CallerOrAnonymous(context),
                          auth::Kind::kJob,
                          Create(*datasets_, *journal_, admission_, *request))
          : absl::StatusOr<v1::FineTuneJob>(seen);
  if (job.ok()) {
    *response = *std::move(job);
    scheduler_->Notify();
  }
  reactor->Finish(ToGrpcStatus(job.status()));
  return reactor;
}

grpc::ServerUnaryReactor* FineTuningService::GetJob(
    grpc::CallbackServerContext* context,
    const v1::GetFineTuneJobRequest* request, v1::FineTuneJob* response) {
  if (auto* refused = auth::RefuseUnary(context)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (FinishIfError(reactor, ValidateName("job_id", request->job_id()))) {
    return reactor;
  }
  absl::StatusOr<v1::FineTuneJob> job = auth::Visible(
      owners_, context, auth::Kind::kJob, store_->GetJob(request->job_id()));
  if (job.ok()) *response = *std::move(job);
  reactor->Finish(ToGrpcStatus(job.status()));
  return reactor;
}

grpc::ServerUnaryReactor* FineTuningService::ListJobs(
    grpc::CallbackServerContext* context,
    const v1::ListFineTuneJobsRequest* request,
    v1::ListFineTuneJobsResponse* response) {
  if (auto* refused = auth::RefuseUnary(context)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (request->limit() < 0) {
    reactor->Finish(ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrFormat("limit must be >= 0, got %d", request->limit()))));
    return reactor;
  }
  const int limit =
      request->limit() == 0 ? 100 : std::min(request->limit(), 10000);
  // The owner filter is in the query, so a page holds `limit` of the
  // caller's own jobs whenever it has that many.
  absl::StatusOr<std::vector<v1::FineTuneJob>> jobs = store_->ListJobs(
      limit, auth::ListFilter(owners_, context, auth::Kind::kJob));
  if (jobs.ok()) {
    for (v1::FineTuneJob& job : *jobs) *response->add_jobs() = std::move(job);
  }
  reactor->Finish(ToGrpcStatus(jobs.status()));
  return reactor;
}

grpc::ServerUnaryReactor* FineTuningService::CancelJob(
    grpc::CallbackServerContext* context,
    const v1::CancelFineTuneJobRequest* request, v1::FineTuneJob* response) {
  if (auto* refused = auth::RefuseUnary(context)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (FinishIfError(reactor, ValidateName("job_id", request->job_id()))) {
    return reactor;
  }
  absl::Status seen =
      auth::CheckVisible(owners_, context, auth::Kind::kJob, request->job_id());
  absl::StatusOr<v1::FineTuneJob> job =
      seen.ok() ? scheduler_->Cancel(request->job_id())
                : absl::StatusOr<v1::FineTuneJob>(seen);
  if (job.ok()) *response = *std::move(job);
  reactor->Finish(ToGrpcStatus(job.status()));
  return reactor;
}

grpc::ServerWriteReactor<v1::JobEvent>* FineTuningService::WatchJob(
    grpc::CallbackServerContext* context,
    const v1::WatchFineTuneJobRequest* request) {
  if (auto* refused = auth::RefuseWriter<v1::JobEvent>(context)) return refused;
  if (auto* hidden = auth::HiddenWriter<v1::JobEvent>(
          owners_, context, auth::Kind::kJob, request->job_id()))
    return hidden;
  return new WatchJobReactor(journal_, hub_, request->job_id(),
                             request->after_seq(), request->history_only());
}

}  // namespace lorad::server
