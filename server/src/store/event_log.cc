#include "store/event_log.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/substitute.h"
#include "absl/time/time.h"
#include "lorad/common/status_macros.h"

namespace lorad::server {

std::string EventLog::Schema(absl::string_view table) {
  return absl::Substitute(R"sql(
CREATE TABLE IF NOT EXISTS $0 (
  job_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  proto BLOB NOT NULL,
  PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
)sql",
                          table);
}

EventLog::EventLog(Db* db, Env* env, absl::string_view store,
                   absl::string_view table, absl::string_view jobs_table,
                   absl::string_view what)
    : db_(db),
      env_(env),
      store_(store),
      what_(what),
      // One row with the job's last seq (0 before its first event), or no
      // row when the job does not exist.
      last_seq_(absl::Substitute(
          "SELECT (SELECT COALESCE(MAX(seq), 0) FROM $0 WHERE job_id = ?1) "
          "FROM $1 WHERE id = ?1",
          table, jobs_table)),
      insert_(absl::StrCat("INSERT INTO ", table,
                           " (job_id, seq, proto) VALUES (?1, ?2, ?3)")),
      after_(absl::StrCat("SELECT proto FROM ", table,
                          " WHERE job_id = ?1 AND seq > ?2 "
                          "ORDER BY seq LIMIT ?3")) {}

absl::StatusOr<int64_t> EventLog::Append(v1::JobEvent event) {
  const Op op{store_,
              absl::StrCat("append event to ", what_, " ", event.job_id())};
  // The transaction holds the write lock from its start, so read-then-insert
  // is atomic across threads and processes alike.
  LORAD_RETURN_IF_ERROR(db_->Transaction(
      op, [&](Txn& txn) -> absl::Status { return AppendIn(txn, &event); }));
  return event.seq();
}

absl::Status EventLog::AppendIn(Txn& txn, v1::JobEvent* event) {
  if (event->job_id().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(store_, ": event job_id is empty"));
  }
  const Op op{store_,
              absl::StrCat("append event to ", what_, " ", event->job_id())};
  if (event->time_unix_ms() == 0) {
    event->set_time_unix_ms(absl::ToUnixMillis(env_->Now()));
  }
  bool found = false;
  LORAD_RETURN_IF_ERROR(
      txn.Query(op, last_seq_.c_str(), {event->job_id()}, [&](const Row& row) {
        found = true;
        event->set_seq(row.Int(0) + 1);
        return absl::OkStatus();
      }));
  if (!found) {
    return absl::NotFoundError(
        absl::StrCat(what_, " ", event->job_id(), " not found"));
  }
  LORAD_ASSIGN_OR_RETURN(std::string bytes, SerializeRecord(op, *event));
  return txn
      .Exec(op, insert_.c_str(), {event->job_id(), event->seq(), Blob{bytes}})
      .status();
}

absl::StatusOr<std::vector<v1::JobEvent>> EventLog::After(
    const std::string& job_id, int64_t after_seq, int limit) {
  // A negative LIMIT means no limit to SQLite.
  return db_->QueryProtos<v1::JobEvent>(
      Op{store_, absl::StrCat("read events of ", what_, " ", job_id)},
      after_.c_str(), {job_id, after_seq, limit > 0 ? limit : -1});
}

}  // namespace lorad::server
