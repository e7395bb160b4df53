#include "store/batch_job_store.h"

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "lorad/common/status_macros.h"

namespace lorad::server {
namespace {

constexpr char kStore[] = "batch job store";

constexpr char kResultsSchemaSql[] = R"sql(
CREATE TABLE IF NOT EXISTS batch_results (
  job_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  json TEXT NOT NULL,
  PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;
)sql";

}  // namespace

absl::StatusOr<std::unique_ptr<BatchJobStore>> BatchJobStore::Open(Db* db,
                                                                   Env* env) {
  const std::string schema =
      absl::StrCat(JobTableSchema("batch_jobs"),
                   EventLog::Schema("batch_events"), kResultsSchemaSql);
  LORAD_RETURN_IF_ERROR(
      db->AddSchema(Op{kStore, "create tables"}, schema.c_str()));
  return absl::WrapUnique(new BatchJobStore(db, env));
}

BatchJobStore::BatchJobStore(Db* db, Env* env)
    : db_(db),
      jobs_(db, kStore, "batch_jobs", "batch job"),
      events_(db, env, kStore, "batch_events", "batch_jobs", "batch job") {}

absl::Status BatchJobStore::CreateBatchJob(const v1::BatchJob& job) {
  return jobs_.Create(job);
}

absl::StatusOr<v1::BatchJob> BatchJobStore::GetBatchJob(const std::string& id) {
  return jobs_.Get(id);
}

absl::StatusOr<std::vector<v1::BatchJob>> BatchJobStore::ListBatchJobs(
    int limit, const std::optional<OwnedBy>& owned_by) {
  if (owned_by.has_value()) {
    return jobs_.ListOwned(limit, owned_by->kind, owned_by->owner);
  }
  return jobs_.List(limit);
}

absl::Status BatchJobStore::UpdateBatchJob(const v1::BatchJob& job) {
  return jobs_.Update(job);
}

absl::Status BatchJobStore::UpdateBatchJobWithEvents(
    const v1::BatchJob& job, std::vector<v1::JobEvent>& events) {
  return UpdateWithEvents(
      db_,
      Op{kStore, absl::StrCat("update batch job ", job.id(), " with events")},
      jobs_, events_, job, events);
}

absl::StatusOr<std::vector<v1::BatchJob>> BatchJobStore::BatchJobsInStates(
    const std::vector<v1::JobState>& states) {
  return jobs_.InStates(states);
}

absl::StatusOr<int64_t> BatchJobStore::AppendBatchEvent(v1::JobEvent event) {
  return events_.Append(std::move(event));
}

absl::StatusOr<std::vector<v1::JobEvent>> BatchJobStore::BatchEventsAfter(
    const std::string& job_id, int64_t after_seq, int limit) {
  return events_.After(job_id, after_seq, limit);
}

absl::Status BatchJobStore::PutBatchResult(const std::string& job_id,
                                           int64_t index,
                                           const std::string& json) {
  return db_
      ->Exec(Op{kStore, absl::StrCat("store result ", index, " of ", job_id)},
             "INSERT OR REPLACE INTO batch_results (job_id, idx, json) "
             "VALUES (?1, ?2, ?3)",
             {job_id, index, json})
      .status();
}

absl::StatusOr<std::vector<int64_t>> BatchJobStore::BatchResultIndices(
    const std::string& job_id) {
  std::vector<int64_t> out;
  LORAD_RETURN_IF_ERROR(
      db_->Query(Op{kStore, absl::StrCat("list results of ", job_id)},
                 "SELECT idx FROM batch_results WHERE job_id = ?1 ORDER BY idx",
                 {job_id}, [&out](const Row& row) {
                   out.push_back(row.Int(0));
                   return absl::OkStatus();
                 }));
  return out;
}

absl::StatusOr<std::vector<std::pair<int64_t, std::string>>>
BatchJobStore::BatchResults(const std::string& job_id, int64_t after_index,
                            int limit) {
  std::vector<std::pair<int64_t, std::string>> out;
  LORAD_RETURN_IF_ERROR(db_->Query(
      Op{kStore, absl::StrCat("read results of ", job_id)},
      "SELECT idx, json FROM batch_results WHERE job_id = ?1 AND idx > ?2 "
      "ORDER BY idx LIMIT ?3",
      {job_id, after_index, limit > 0 ? limit : -1}, [&out](const Row& row) {
        out.emplace_back(row.Int(0), std::string(row.Text(1)));
        return absl::OkStatus();
      }));
  return out;
}

}  // namespace lorad::server
