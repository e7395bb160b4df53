#include "store/job_store.h"

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "lorad/common/status_macros.h"

namespace lorad::server {
namespace {

constexpr char kStore[] = "job store";

}  // namespace

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(Db* db, Env* env) {
  const std::string schema =
      absl::StrCat(JobTableSchema("jobs"), EventLog::Schema("job_events"));
  LORAD_RETURN_IF_ERROR(
      db->AddSchema(Op{kStore, "create tables"}, schema.c_str()));
  return absl::WrapUnique(new JobStore(db, env));
}

JobStore::JobStore(Db* db, Env* env)
    : db_(db),
      jobs_(db, kStore, "jobs", "job"),
      events_(db, env, kStore, "job_events", "jobs", "job") {}

absl::Status JobStore::CreateJob(const v1::FineTuneJob& job) {
  return jobs_.Create(job);
}

absl::StatusOr<v1::FineTuneJob> JobStore::GetJob(const std::string& id) {
  return jobs_.Get(id);
}

absl::StatusOr<std::vector<v1::FineTuneJob>> JobStore::ListJobs(
    int limit, const std::optional<OwnedBy>& owned_by) {
  if (owned_by.has_value()) {
    return jobs_.ListOwned(limit, owned_by->kind, owned_by->owner);
  }
  return jobs_.List(limit);
}

absl::Status JobStore::UpdateJob(const v1::FineTuneJob& job) {
  return jobs_.Update(job);
}

absl::StatusOr<std::vector<v1::FineTuneJob>> JobStore::JobsInStates(
    const std::vector<v1::JobState>& states) {
  return jobs_.InStates(states);
}

absl::Status JobStore::UpdateJobWithEvents(const v1::FineTuneJob& job,
                                           std::vector<v1::JobEvent>& events) {
  return UpdateWithEvents(
      db_, Op{kStore, absl::StrCat("update job ", job.id(), " with events")},
      jobs_, events_, job, events);
}

absl::StatusOr<int64_t> JobStore::AppendEvent(v1::JobEvent event) {
  return events_.Append(std::move(event));
}

absl::StatusOr<std::vector<v1::JobEvent>> JobStore::EventsAfter(
    const std::string& job_id, int64_t after_seq, int limit) {
  return events_.After(job_id, after_seq, limit);
}

}  // namespace lorad::server
