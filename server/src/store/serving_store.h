// Durable records of serving: the adapter registry and batch inference jobs
// (jobs, their events, their per-line results), in the same SQLite file as
// the JobStore, through a connection of its own.
//
// Like the JobStore, each record is its serialized proto plus the columns the
// queries need; the tables are created if missing, so a file written before
// they existed gains them on open. Durability and error mapping follow the
// JobStore (WAL, synchronous=NORMAL, each call one commit; Unavailable for a
// busy file, ResourceExhausted for a full disk, DataLoss for a record that
// does not parse). Nothing here aborts the process.
//
// This class is thread-safe: one connection guarded by a mutex.
#ifndef LORAD_SERVER_STORE_SERVING_STORE_H_
#define LORAD_SERVER_STORE_SERVING_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
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

class ServingStore {
 public:
  // Opens `db_path` (normally the JobStore's file) and creates the serving
  // tables when missing. FailedPrecondition when it cannot be opened.
  static absl::StatusOr<std::unique_ptr<ServingStore>> Open(
      const std::string& db_path);
  ~ServingStore();
  ServingStore(const ServingStore&) = delete;

  // True when this Open created the adapters table: the file comes from a
  // lorad without the registry (adapters of older jobs may need adding).
  bool created_registry() const { return created_registry_; }
  ServingStore& operator=(const ServingStore&) = delete;

  // ---- adapters, keyed by name (the current version only).
  // Inserts or replaces the adapter named `adapter.name()`.
  absl::Status PutAdapter(const v1::Adapter& adapter);
  // NotFound naming the adapter when there is none.
  absl::StatusOr<v1::Adapter> GetAdapter(const std::string& name);
  // Sorted by name.
  absl::StatusOr<std::vector<v1::Adapter>> ListAdapters();
  // NotFound when there is none.
  absl::Status DeleteAdapter(const std::string& name);

  // ---- batch jobs.
  // AlreadyExists for a stored id.
  absl::Status CreateBatchJob(const v1::BatchJob& job);
  absl::StatusOr<v1::BatchJob> GetBatchJob(const std::string& id);
  // Newest first, at most `limit` (100 when <= 0).
  absl::StatusOr<std::vector<v1::BatchJob>> ListBatchJobs(int limit);
  // NotFound when absent.
  absl::Status UpdateBatchJob(const v1::BatchJob& job);
  // Oldest first.
  absl::StatusOr<std::vector<v1::BatchJob>> BatchJobsInStates(
      const std::vector<v1::JobState>& states);

  // Stores `event` for its job_id with the next seq, which it returns.
  // NotFound for an unknown job.
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
  // Results with index > after_index, ascending, at most `limit`.
  absl::StatusOr<std::vector<std::pair<int64_t, std::string>>> BatchResults(
      const std::string& job_id, int64_t after_index, int limit);

 private:
  explicit ServingStore(sqlite3* db) : db_(db) {}
  absl::Status Init();
  absl::StatusOr<sqlite3_stmt*> Prepare(const char* sql, absl::string_view op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Error(int rc, absl::string_view op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs a bound statement that returns no rows.
  absl::Status Done(sqlite3_stmt* stmt, absl::string_view op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Steps a bound SELECT whose column 0 is a serialized proto.
  template <typename Proto>
  absl::StatusOr<std::vector<Proto>> ReadAll(sqlite3_stmt* stmt,
                                             absl::string_view op)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  bool created_registry_ = false;
  absl::Mutex mu_;
  sqlite3* const db_ ABSL_PT_GUARDED_BY(mu_);
  std::vector<std::pair<std::string, sqlite3_stmt*>> statements_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_STORE_SERVING_STORE_H_
