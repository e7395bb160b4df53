// Durable batch inference jobs, their events and their per-line results,
// in the shared Db (lorad.db): tables `batch_jobs` (id, state, created_at,
// proto), `batch_events` (job_id, seq, proto) and `batch_results` (job_id,
// idx, json). The uploaded inputs live under <data_dir>/batch/ (see
// jobs/batch_runner.h).
//
// Durability, the schema version and the error codes are the Db's (see
// store/db.h): each call is one commit; messages name "batch job store" and
// the operation; a record that does not parse is DataLoss.
//
// This class is thread-safe (the Db serializes calls).
#ifndef LORAD_SERVER_STORE_BATCH_JOB_STORE_H_
#define LORAD_SERVER_STORE_BATCH_JOB_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lorad/common/env.h"
#include "lorad/v1/lorad.pb.h"
#include "store/db.h"
#include "store/event_log.h"
#include "store/job_table.h"
#include "store/owner_store.h"

namespace lorad::server {

class BatchJobStore {
 public:
  // Adds the tables to `db` when missing. `db` and `env` (the clock for
  // event times) are not owned and must outlive the store.
  static absl::StatusOr<std::unique_ptr<BatchJobStore>> Open(
      Db* db, Env* env = Env::Default());

  BatchJobStore(const BatchJobStore&) = delete;
  BatchJobStore& operator=(const BatchJobStore&) = delete;

  // AlreadyExists for a stored id; InvalidArgument for an empty one.
  absl::Status CreateBatchJob(const v1::BatchJob& job);
  // NotFound naming the id when there is no such job.
  absl::StatusOr<v1::BatchJob> GetBatchJob(const std::string& id);
  // Newest first, at most `limit` (100 when <= 0); with `owned_by`, only
  // that owner's (the owners table must be in the same Db).
  absl::StatusOr<std::vector<v1::BatchJob>> ListBatchJobs(
      int limit, const std::optional<OwnedBy>& owned_by = std::nullopt);
  // Replaces the stored job with the same id. NotFound when absent.
  absl::Status UpdateBatchJob(const v1::BatchJob& job);
  // UpdateBatchJob and AppendBatchEvent of each of `events` in one
  // transaction; sets each event's job_id and seq.
  absl::Status UpdateBatchJobWithEvents(const v1::BatchJob& job,
                                        std::vector<v1::JobEvent>& events);
  // The jobs whose state is one of `states`, oldest first (created_at_unix,
  // then id).
  absl::StatusOr<std::vector<v1::BatchJob>> BatchJobsInStates(
      const std::vector<v1::JobState>& states);

  // Stores `event` for its job_id with the next seq (1 for the first),
  // which it returns; a time_unix_ms of 0 becomes the Env's now. NotFound
  // for an unknown job.
  absl::StatusOr<int64_t> AppendBatchEvent(v1::JobEvent event);
  // Events with seq > after_seq in order; at most `limit` (all when <= 0).
  absl::StatusOr<std::vector<v1::JobEvent>> BatchEventsAfter(
      const std::string& job_id, int64_t after_seq, int limit);

  // Stores the result line (one JSON object, no newline) of input line
  // `index`, replacing any earlier one.
  absl::Status PutBatchResult(const std::string& job_id, int64_t index,
                              const std::string& json);
  // The indices that have a result, ascending.
  absl::StatusOr<std::vector<int64_t>> BatchResultIndices(
      const std::string& job_id);
  // Results with index > after_index, ascending, at most `limit` (all when
  // <= 0).
  absl::StatusOr<std::vector<std::pair<int64_t, std::string>>> BatchResults(
      const std::string& job_id, int64_t after_index, int limit);

 private:
  BatchJobStore(Db* db, Env* env);

  Db* const db_;
  JobTable<v1::BatchJob> jobs_;
  EventLog events_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_STORE_BATCH_JOB_STORE_H_
