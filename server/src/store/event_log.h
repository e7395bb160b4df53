// A per-job event log, (job_id, seq, proto), the shape fine-tune job events
// (JobStore) and batch job events (BatchJobStore) share. Each job's events
// are numbered 1, 2, ... in the order they are appended. A part of those
// stores, not used on its own.
//
// This class is thread-safe: an append is one transaction.
#ifndef LORAD_SERVER_STORE_EVENT_LOG_H_
#define LORAD_SERVER_STORE_EVENT_LOG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lorad/common/env.h"
#include "lorad/v1/lorad.pb.h"
#include "store/db.h"

namespace lorad::server {

class EventLog {
 public:
  // The CREATE statement for an event table named `table`.
  static std::string Schema(absl::string_view table);

  // `table` holds the events of the jobs in `jobs_table` (which has an id
  // column). `store` names the store in messages and `what` a job ("job",
  // "batch job"). `db` and `env` (the clock) are not owned and must outlive
  // the log.
  EventLog(Db* db, Env* env, absl::string_view store, absl::string_view table,
           absl::string_view jobs_table, absl::string_view what);

  // Stores `event` for the job named by event.job_id, assigning
  // event.seq = 1 + the job's last seq and, when it is 0, time_unix_ms =
  // now. Returns the seq. Seqs of one job are unique and consecutive even
  // under concurrent calls. NotFound when the job is not stored;
  // InvalidArgument when job_id is empty.
  absl::StatusOr<int64_t> Append(v1::JobEvent event);
  // The same inside the caller's transaction, setting event->seq (and
  // time_unix_ms when 0).
  absl::Status AppendIn(Txn& txn, v1::JobEvent* event);

  // The job's events with seq > after_seq in ascending seq order, at most
  // `limit` of them (all when limit <= 0). Empty for an unknown job.
  absl::StatusOr<std::vector<v1::JobEvent>> After(const std::string& job_id,
                                                  int64_t after_seq, int limit);

 private:
  Db* const db_;
  Env* const env_;
  const absl::string_view store_;
  const std::string what_;
  const std::string last_seq_;
  const std::string insert_;
  const std::string after_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_STORE_EVENT_LOG_H_
