#include "jobs/job_journal.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "api/grpc_status.h"
#include "lorad/common/status_macros.h"

namespace lorad::server {

bool IsFinalState(v1::JobState state) {
  return state == v1::SUCCEEDED || state == v1::FAILED ||
         state == v1::CANCELLED;
}

void TransitionTo(v1::FineTuneJob& job, v1::JobState state,
                  absl::string_view message, std::vector<v1::JobEvent>& events,
                  const v1::JobError* error) {
  job.set_state(state);
  if (IsFinalState(state))
    job.set_finished_at_unix(absl::ToUnixSeconds(absl::Now()));
  if (error != nullptr) *job.mutable_error() = *error;
  v1::JobEvent& event = events.emplace_back();
  v1::StateChange* change = event.mutable_state();
  change->set_state(state);
  change->set_message(std::string(message));
  if (error != nullptr) *change->mutable_error() = *error;
}

v1::JobError MakeJobError(const absl::Status& status) {
  v1::JobError error;
  error.set_code(StatusCodeName(status.code()));
  error.set_message(std::string(status.message()));
  return error;
}

absl::Status JobJournal::Create(const v1::FineTuneJob& job,
                                absl::string_view message) {
  absl::MutexLock lock(&mu_);
  LORAD_RETURN_IF_ERROR(store_->CreateJob(job));
  std::vector<v1::JobEvent> events;
  v1::FineTuneJob copy = job;
  TransitionTo(copy, job.state(), message, events);
  return StoreAndPublish(job.id(), events);
}

absl::StatusOr<v1::FineTuneJob> JobJournal::Update(const std::string& job_id,
                                                   Mutator mutate) {
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(v1::FineTuneJob job, store_->GetJob(job_id));
  if (IsFinalState(job.state())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job_id, " is already ", v1::JobState_Name(job.state())));
  }
  std::vector<v1::JobEvent> events;
  LORAD_RETURN_IF_ERROR(mutate(job, events));
  // The job and its events in one transaction: a state change is never
  // stored without its event, nor an event without its state.
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  for (v1::JobEvent& event : events) {
    if (event.time_unix_ms() == 0) event.set_time_unix_ms(now_ms);
  }
  LORAD_RETURN_IF_ERROR(store_->UpdateJobWithEvents(job, events));
  for (const v1::JobEvent& event : events) hub_->Publish(event);
  return job;
}

absl::StatusOr<JobJournal::WatchStart> JobJournal::Watch(
    const std::string& job_id, int64_t after_seq, EventHub::Callback callback) {
  constexpr int kPage = 1000;
  absl::MutexLock lock(&mu_);
  WatchStart start;
  LORAD_ASSIGN_OR_RETURN(start.job, store_->GetJob(job_id));
  int64_t after = after_seq;
  while (true) {
    LORAD_ASSIGN_OR_RETURN(std::vector<v1::JobEvent> page,
                           store_->EventsAfter(job_id, after, kPage));
    if (page.empty()) break;
    after = page.back().seq();
    const bool last_page = page.size() < kPage;
    for (v1::JobEvent& event : page) start.history.push_back(std::move(event));
    if (last_page) break;
  }
  start.subscription_id = hub_->Subscribe(job_id, std::move(callback));
  return start;
}

absl::Status JobJournal::Log(const std::string& job_id,
                             absl::string_view message,
                             const v1::MemoryUsage* memory) {
  return Update(job_id,
                [&](v1::FineTuneJob&, std::vector<v1::JobEvent>& events) {
                  v1::JobEvent& event = events.emplace_back();
                  event.set_log(std::string(message));
                  if (memory != nullptr) *event.mutable_memory() = *memory;
                  return absl::OkStatus();
                })
      .status();
}

absl::Status JobJournal::StoreAndPublish(const std::string& job_id,
                                         std::vector<v1::JobEvent>& events) {
  int64_t now_ms = absl::ToUnixMillis(absl::Now());
  for (v1::JobEvent& event : events) {
    event.set_job_id(job_id);
    if (event.time_unix_ms() == 0) event.set_time_unix_ms(now_ms);
    LORAD_ASSIGN_OR_RETURN(int64_t seq, store_->AppendEvent(event));
    event.set_seq(seq);
    hub_->Publish(event);
  }
  return absl::OkStatus();
}

}  // namespace lorad::server
