// The table shape fine-tune jobs (JobStore) and batch jobs (BatchJobStore)
// share: one row per job, (id, state, created_at, proto), with the serialized
// proto as the record and the other columns for the queries. A part of those
// stores, not used on its own.
//
// This class is thread-safe (the Db serializes calls).
#ifndef LORAD_SERVER_STORE_JOB_TABLE_H_
#define LORAD_SERVER_STORE_JOB_TABLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "lorad/common/status_macros.h"
#include "lorad/v1/lorad.pb.h"
#include "store/db.h"
#include "store/event_log.h"

namespace lorad::server {

// The CREATE statements for a job table named `table`.
std::string JobTableSchema(absl::string_view table);

// `Proto` has id(), state() and created_at_unix().
template <typename Proto>
class JobTable {
 public:
  static constexpr int kDefaultListLimit = 100;

  // `db` is not owned and must outlive the table. `store` names the store
  // in messages and `what` a record ("job", "batch job").
  JobTable(Db* db, absl::string_view store, absl::string_view table,
           absl::string_view what)
      : db_(db),
        store_(store),
        what_(what),
        insert_(absl::StrCat("INSERT INTO ", table,
                             " (id, state, created_at, proto) "
                             "VALUES (?1, ?2, ?3, ?4)")),
        update_(absl::StrCat("UPDATE ", table,
                             " SET state = ?2, created_at = ?3, proto = ?4 "
                             "WHERE id = ?1")),
        get_(absl::StrCat("SELECT proto FROM ", table, " WHERE id = ?1")),
        list_(absl::StrCat("SELECT proto FROM ", table,
                           " ORDER BY created_at DESC, rowid DESC LIMIT ?1")),
        list_owned_(absl::StrCat(
            "SELECT proto FROM ", table,
            " WHERE id IN (SELECT id FROM owners WHERE kind = ?2 AND "
            "owner = ?3) ORDER BY created_at DESC, rowid DESC LIMIT ?1")),
        in_states_(
            absl::StrCat("SELECT proto FROM ", table,
                         " WHERE state IN (SELECT value FROM json_each(?1)) "
                         "ORDER BY created_at, id")) {}

  // Inserts a new record. AlreadyExists when its id is stored;
  // InvalidArgument when the id is empty.
  absl::Status Create(const Proto& job) {
    if (job.id().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(store_, ": ", what_, " id is empty"));
    }
    const Op op = MakeOp("create", job.id());
    LORAD_ASSIGN_OR_RETURN(std::string bytes, SerializeRecord(op, job));
    absl::StatusOr<int64_t> inserted =
        db_->Exec(op, insert_.c_str(),
                  {job.id(), static_cast<int64_t>(job.state()),
                   job.created_at_unix(), Blob{bytes}});
    if (absl::IsAlreadyExists(inserted.status())) {
      return absl::AlreadyExistsError(
          absl::StrCat(what_, " ", job.id(), " already exists"));
    }
    return inserted.status();
  }

  // Replaces the record with the same id. NotFound when absent.
  absl::Status Update(const Proto& job) { return UpdateWith(*db_, job); }
  // The same inside the caller's transaction.
  absl::Status UpdateIn(Txn& txn, const Proto& job) {
    return UpdateWith(txn, job);
  }

  // NotFound naming the id when there is no such record.
  absl::StatusOr<Proto> Get(const std::string& id) {
    return db_->QueryProto<Proto>(MakeOp("get", id), get_.c_str(), {id},
                                  NotFound(id).message());
  }

  // At most `limit` records (kDefaultListLimit when limit <= 0), newest
  // first (created_at_unix, then the latest created).
  absl::StatusOr<std::vector<Proto>> List(int limit) {
    if (limit <= 0) limit = kDefaultListLimit;
    return db_->QueryProtos<Proto>(
        Op{store_, absl::StrCat("list ", what_, "s")}, list_.c_str(), {limit});
  }

  // List for one owner: the records the owners table (store/owner_store.h,
  // which must share the Db) gives `owner` for `kind`; the limit applies
  // after the filter, so a page is full whenever that many records exist.
  absl::StatusOr<std::vector<Proto>> ListOwned(int limit,
                                               const std::string& kind,
                                               const std::string& owner) {
    if (limit <= 0) limit = kDefaultListLimit;
    return db_->QueryProtos<Proto>(
        Op{store_, absl::StrCat("list ", what_, "s of ", owner)},
        list_owned_.c_str(), {limit, kind, owner});
  }

  // The records whose state is one of `states`, oldest first
  // (created_at_unix, then id). Empty `states` gives an empty list.
  absl::StatusOr<std::vector<Proto>> InStates(
      const std::vector<v1::JobState>& states) {
    if (states.empty()) return std::vector<Proto>();
    // One statement for any set of states: the set is bound as a JSON array.
    const std::string array = absl::StrCat(
        "[",
        absl::StrJoin(states, ",",
                      [](std::string* out, v1::JobState state) {
                        absl::StrAppend(out, static_cast<int>(state));
                      }),
        "]");
    return db_->QueryProtos<Proto>(
        Op{store_, absl::StrCat("list ", what_, "s by state")},
        in_states_.c_str(), {array});
  }

 private:
  // `exec` is the Db or a Txn.
  template <typename Exec>
  absl::Status UpdateWith(Exec& exec, const Proto& job) {
    const Op op = MakeOp("update", job.id());
    LORAD_ASSIGN_OR_RETURN(std::string bytes, SerializeRecord(op, job));
    LORAD_ASSIGN_OR_RETURN(
        int64_t changed, exec.Exec(op, update_.c_str(),
                                   {job.id(), static_cast<int64_t>(job.state()),
                                    job.created_at_unix(), Blob{bytes}}));
    if (changed == 0) return NotFound(job.id());
    return absl::OkStatus();
  }
  Op MakeOp(absl::string_view verb, const std::string& id) const {
    return Op{store_, absl::StrCat(verb, " ", what_, " ", id)};
  }
  absl::Status NotFound(const std::string& id) const {
    return absl::NotFoundError(absl::StrCat(what_, " ", id, " not found"));
  }

  Db* const db_;
  const absl::string_view store_;
  const std::string what_;
  const std::string insert_;
  const std::string update_;
  const std::string get_;
  const std::string list_;
  const std::string list_owned_;
  const std::string in_states_;
};

// Replaces `job` in `table` and appends `events` to `log` (each given the
// job's id, and its seq once stored) in one transaction: a state change is
// never stored without its events, nor events without the state.
template <typename Proto>
absl::Status UpdateWithEvents(Db* db, const Op& op, JobTable<Proto>& table,
                              EventLog& log, const Proto& job,
                              std::vector<v1::JobEvent>& events) {
  std::vector<v1::JobEvent> stored = events;
  LORAD_RETURN_IF_ERROR(db->Transaction(op, [&](Txn& txn) -> absl::Status {
    LORAD_RETURN_IF_ERROR(table.UpdateIn(txn, job));
    for (v1::JobEvent& event : stored) {
      event.set_job_id(job.id());
      LORAD_RETURN_IF_ERROR(log.AppendIn(txn, &event));
    }
    return absl::OkStatus();
  }));
  events = std::move(stored);
  return absl::OkStatus();
}

}  // namespace lorad::server

#endif  // LORAD_SERVER_STORE_JOB_TABLE_H_
