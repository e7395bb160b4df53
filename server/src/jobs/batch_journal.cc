#include "jobs/batch_journal.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "jobs/job_journal.h"
#include "lorad/common/status_macros.h"

namespace lorad::server {

void TransitionBatchTo(v1::BatchJob& job, v1::JobState state,
                       absl::string_view message,
                       std::vector<v1::JobEvent>& events,
                       const v1::JobError* error) {
  job.set_state(state);
  if (IsFinalState(state)) {
    job.set_finished_at_unix(absl::ToUnixSeconds(absl::Now()));
  }
  if (error != nullptr) *job.mutable_error() = *error;
  v1::StateChange* change = events.emplace_back().mutable_state();
  change->set_state(state);
  change->set_message(std::string(message));
  if (error != nullptr) *change->mutable_error() = *error;
}

absl::Status BatchJournal::Create(const v1::BatchJob& job,
                                  absl::string_view message) {
  absl::MutexLock lock(&mu_);
  LORAD_RETURN_IF_ERROR(store_->CreateBatchJob(job));
  std::vector<v1::JobEvent> events;
  v1::BatchJob copy = job;
  TransitionBatchTo(copy, job.state(), message, events);
  return StoreAndPublish(job.id(), events);
}

absl::StatusOr<v1::BatchJob> BatchJournal::Update(const std::string& job_id,
                                                  Mutator mutate) {
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(v1::BatchJob job, store_->GetBatchJob(job_id));
  if (IsFinalState(job.state())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "batch job ", job_id, " is already ", v1::JobState_Name(job.state())));
  }
  std::vector<v1::JobEvent> events;
  LORAD_RETURN_IF_ERROR(mutate(job, events));
  // The job and its events in one transaction, as for fine-tune jobs.
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  for (v1::JobEvent& event : events) {
    if (event.time_unix_ms() == 0) event.set_time_unix_ms(now_ms);
  }
  LORAD_RETURN_IF_ERROR(store_->UpdateBatchJobWithEvents(job, events));
  for (const v1::JobEvent& event : events) hub_->Publish(event);
  return job;
}

absl::StatusOr<WatchJobReactor::Start> BatchJournal::Watch(
    const std::string& job_id, int64_t after_seq, EventHub::Callback callback) {
  absl::MutexLock lock(&mu_);
  WatchJobReactor::Start start;
  LORAD_ASSIGN_OR_RETURN(v1::BatchJob job, store_->GetBatchJob(job_id));
  start.final = IsFinalState(job.state());
  LORAD_ASSIGN_OR_RETURN(start.history,
                         store_->BatchEventsAfter(job_id, after_seq, 0));
  start.subscription_id = hub_->Subscribe(job_id, std::move(callback));
  return start;
}

absl::Status BatchJournal::StoreAndPublish(const std::string& job_id,
                                           std::vector<v1::JobEvent>& events) {
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  for (v1::JobEvent& event : events) {
    event.set_job_id(job_id);
    if (event.time_unix_ms() == 0) event.set_time_unix_ms(now_ms);
    LORAD_ASSIGN_OR_RETURN(int64_t seq, store_->AppendBatchEvent(event));
    event.set_seq(seq);
    hub_->Publish(event);
  }
  return absl::OkStatus();
}

}  // namespace lorad::server
