// Durable fine-tune jobs and their events, in the shared Db (lorad.db):
// tables `jobs` (id, state, created_at, proto) and `job_events` (job_id,
// seq, proto).
//
// Each record is kept as its serialized proto plus the columns the queries
// need, so adding a proto field needs no schema change. Durability, the
// schema version and the error codes are the Db's (see store/db.h): each
// call is one commit; messages name "job store" and the operation ("job
// store: update job ftjob-1: database or disk is full"); a record that does
// not parse is DataLoss. Nothing here aborts the process.
//
// This class is thread-safe (the Db serializes calls).
#ifndef LORAD_SERVER_STORE_JOB_STORE_H_
#define LORAD_SERVER_STORE_JOB_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
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

class JobStore {
 public:
  // Adds the tables to `db` when missing. `db` and `env` (the clock for
  // event times) are not owned and must outlive the store.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(
      Db* db, Env* env = Env::Default());

  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Inserts a new job. AlreadyExists when a job with its id is stored;
  // InvalidArgument when the id is empty.
  absl::Status CreateJob(const v1::FineTuneJob& job);
  // NotFound naming the id when there is no such job.
  absl::StatusOr<v1::FineTuneJob> GetJob(const std::string& id);
  // At most `limit` jobs (100 when limit <= 0), newest first
  // (created_at_unix, then the latest created); with `owned_by`, only that
  // owner's (the owners table must be in the same Db).
  absl::StatusOr<std::vector<v1::FineTuneJob>> ListJobs(
      int limit, const std::optional<OwnedBy>& owned_by = std::nullopt);
  // Replaces the stored job with the same id. NotFound when absent.
  absl::Status UpdateJob(const v1::FineTuneJob& job);
  // The jobs whose state is one of `states`, oldest first (created_at_unix,
  // then id). Empty `states` gives an empty list.
  absl::StatusOr<std::vector<v1::FineTuneJob>> JobsInStates(
      const std::vector<v1::JobState>& states);

  // A state change and its events, in one transaction: replaces the stored
  // job and appends `events` (each gets job_id = job.id(), its seq and, when
  // 0, its time). All of it is stored or none of it. NotFound when the job
  // is absent.
  absl::Status UpdateJobWithEvents(const v1::FineTuneJob& job,
                                   std::vector<v1::JobEvent>& events);

  // Stores `event` for the job named by event.job_id, assigning
  // event.seq = 1 + the job's last seq (1 for its first event) and, when it
  // is 0, time_unix_ms = the Env's now. Returns the seq. Seqs of one job are
  // unique and consecutive even under concurrent calls. NotFound when the
  // job is not stored; InvalidArgument when job_id is empty.
  absl::StatusOr<int64_t> AppendEvent(v1::JobEvent event);
  // The job's events with seq > after_seq in ascending seq order, at most
  // `limit` of them (all when limit <= 0). Empty for an unknown job.
  absl::StatusOr<std::vector<v1::JobEvent>> EventsAfter(
      const std::string& job_id, int64_t after_seq, int limit);

 private:
  JobStore(Db* db, Env* env);

  Db* const db_;
  JobTable<v1::FineTuneJob> jobs_;
  EventLog events_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_STORE_JOB_STORE_H_
