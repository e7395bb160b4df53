// Durable store of datasets, fine-tune jobs and job events in one SQLite
// file.
//
// Each record is kept as its serialized proto plus the columns the queries
// need (id, state, created_at, job_id/seq), so adding a proto field needs no
// schema change. The schema version lives in PRAGMA user_version; a file
// written by a newer lorad is refused rather than misread.
//
// Durability: the file is in WAL mode with synchronous=NORMAL, so a
// committed write survives a crash of the process; a power loss may lose the
// last few commits but never corrupts the file. Each call is one commit.
//
// Errors: every SQLite failure becomes a Status naming the operation
// ("job store: update job ftjob-1: database or disk is full"): Unavailable
// for a busy or locked file, ResourceExhausted for a full disk, DataLoss for
// a corrupt file or record, FailedPrecondition for a file that cannot be
// opened or written, Internal otherwise. Nothing here aborts the process.
//
// This class is thread-safe: one connection, guarded by a mutex, so calls
// are serialized. One process should own the file; a second one waits on
// SQLite's lock for up to the busy timeout, then gets Unavailable.
#ifndef LORAD_SERVER_STORE_JOB_STORE_H_
#define LORAD_SERVER_STORE_JOB_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "lorad/v1/lorad.pb.h"

struct sqlite3;
struct sqlite3_stmt;

namespace lorad::server {

class JobStore {
 public:
  // The schema version this code writes and reads.
  static constexpr int kSchemaVersion = 1;
  // How long a call waits for a lock held by another connection.
  static constexpr int kBusyTimeoutMs = 5000;

  // Opens (creating if needed) the database at `db_path` and its tables. The
  // parent directory must exist. FailedPrecondition when the file cannot be
  // opened, is not a database, or has a newer schema version.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(
      const std::string& db_path);

  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;
  // Closes the connection; everything committed stays in the file.
  ~JobStore();

  // Inserts `ds`, or replaces the dataset with the same id. InvalidArgument
  // when the id is empty.
  absl::Status PutDataset(const lorad::v1::Dataset& ds);
  // NotFound naming the id when there is no such dataset.
  absl::StatusOr<lorad::v1::Dataset> GetDataset(const std::string& id);
  // All datasets, newest first (created_at_unix, then the latest put).
  absl::StatusOr<std::vector<lorad::v1::Dataset>> ListDatasets();

  // Inserts a new job. AlreadyExists when a job with its id is stored;
  // InvalidArgument when the id is empty.
  absl::Status CreateJob(const lorad::v1::FineTuneJob& job);
  // NotFound naming the id when there is no such job.
  absl::StatusOr<lorad::v1::FineTuneJob> GetJob(const std::string& id);
  // At most `limit` jobs (100 when limit <= 0), newest first
  // (created_at_unix, then the latest created).
  absl::StatusOr<std::vector<lorad::v1::FineTuneJob>> ListJobs(int limit);
  // Replaces the stored job with the same id. NotFound when absent.
  absl::Status UpdateJob(const lorad::v1::FineTuneJob& job);
  // The jobs whose state is one of `states`, oldest first (created_at_unix,
  // then id). Empty `states` gives an empty list.
  absl::StatusOr<std::vector<lorad::v1::FineTuneJob>> JobsInStates(
      const std::vector<lorad::v1::JobState>& states);

  // Stores `event` for the job named by event.job_id, assigning
  // event.seq = 1 + the job's last seq (1 for its first event) and, when it
  // is 0, time_unix_ms = now. Returns the seq. Seqs of one job are unique and
  // consecutive even under concurrent calls. NotFound when the job is not
  // stored; InvalidArgument when job_id is empty.
  absl::StatusOr<int64_t> AppendEvent(lorad::v1::JobEvent event);
  // The job's events with seq > after_seq in ascending seq order, at most
  // `limit` of them (all when limit <= 0). Empty for an unknown job.
  absl::StatusOr<std::vector<lorad::v1::JobEvent>> EventsAfter(
      const std::string& job_id, int64_t after_seq, int limit);

 private:
  explicit JobStore(sqlite3* db);

  // Sets the pragmas and creates or checks the schema.
  absl::Status Init();

  // The cached prepared statement for `sql`, preparing it on first use.
  absl::StatusOr<sqlite3_stmt*> Prepare(const char* sql, absl::string_view op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs `sql` (no parameters, rows ignored).
  absl::Status Exec(const char* sql, absl::string_view op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The Status for SQLite result code `rc` met while doing `op`.
  absl::Status SqlError(int rc, absl::string_view op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  sqlite3* const db_ ABSL_PT_GUARDED_BY(mu_);  // owned
  // Prepared statements by SQL text; owned, finalized on destruction.
  std::unordered_map<std::string, sqlite3_stmt*> statements_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_STORE_JOB_STORE_H_
