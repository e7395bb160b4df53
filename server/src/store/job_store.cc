#include "store/job_store.h"

#include <sqlite3.h>

#include <cstdlib>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "lorad/common/status_macros.h"
#include "store/sqlite_util.h"

namespace lorad::server {
namespace {

namespace v1 = ::lorad::v1;

constexpr int kDefaultListLimit = 100;

// Version 1. Every statement is idempotent, so two processes creating the
// schema at once both succeed.
constexpr char kCreateSchemaSql[] = R"sql(
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS datasets (
  id TEXT PRIMARY KEY NOT NULL,
  created_at INTEGER NOT NULL,
  proto BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS datasets_by_created ON datasets (created_at);
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY NOT NULL,
  state INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  proto BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at);
CREATE TABLE IF NOT EXISTS job_events (
  job_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  proto BLOB NOT NULL,
  PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
PRAGMA user_version = 1;
COMMIT;
)sql";

absl::Status ErrorFor(sqlite3* db, int rc, absl::string_view op) {
  return SqliteStatus("job store", db, rc, op);
}

template <typename Proto>
absl::StatusOr<std::string> Serialize(const Proto& p, absl::string_view op) {
  std::string bytes;
  if (!p.SerializeToString(&bytes)) {
    return absl::InternalError(
        absl::StrCat("job store: ", op, ": the record does not serialize"));
  }
  return bytes;
}

template <typename Proto>
absl::StatusOr<Proto> ParseColumn(sqlite3_stmt* s, int col,
                                  absl::string_view op) {
  Proto p;
  if (!p.ParseFromArray(sqlite3_column_blob(s, col),
                        sqlite3_column_bytes(s, col))) {
    return absl::DataLossError(
        absl::StrCat("job store: ", op, ": a stored record does not parse"));
  }
  return p;
}

// Steps a bound SELECT whose column 0 is a proto, parsing every row.
template <typename Proto>
absl::StatusOr<std::vector<Proto>> ReadAll(sqlite3* db, sqlite3_stmt* s,
                                           absl::string_view op) {
  std::vector<Proto> out;
  while (true) {
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return out;
    if (rc != SQLITE_ROW) return ErrorFor(db, rc, op);
    LORAD_ASSIGN_OR_RETURN(Proto p, ParseColumn<Proto>(s, 0, op));
    out.push_back(std::move(p));
  }
}

// Steps a bound SELECT expected to give at most one row with a proto in
// column 0; NotFound(`missing`) when it gives none.
template <typename Proto>
absl::StatusOr<Proto> ReadOne(sqlite3* db, sqlite3_stmt* s,
                              absl::string_view op, absl::string_view missing) {
  int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) return absl::NotFoundError(missing);
  if (rc != SQLITE_ROW) return ErrorFor(db, rc, op);
  return ParseColumn<Proto>(s, 0, op);
}

// Runs a statement that returns one text value (a PRAGMA), giving that value.
absl::StatusOr<std::string> QueryText(sqlite3* db, const char* sql,
                                      absl::string_view op) {
  std::string value;
  auto callback = [](void* out, int n, char** values, char**) {
    if (n > 0 && values[0] != nullptr) {
      *static_cast<std::string*>(out) = values[0];
    }
    return 0;
  };
  int rc = sqlite3_exec(db, sql, callback, &value, nullptr);
  if (rc != SQLITE_OK) return ErrorFor(db, rc, op);
  return value;
}

}  // namespace

JobStore::JobStore(sqlite3* db) : db_(db) {}

JobStore::~JobStore() {
  absl::MutexLock lock(&mu_);
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(
    const std::string& db_path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      db_path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (db == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("job store: open ", db_path, ": out of memory"));
  }
  // The store owns the handle from here, so every return closes it.
  auto store = absl::WrapUnique(new JobStore(db));
  if (rc != SQLITE_OK) {
    absl::MutexLock lock(&store->mu_);
    return store->SqlError(rc, absl::StrCat("open ", db_path));
  }
  LORAD_RETURN_IF_ERROR(store->Init());
  return store;
}

absl::Status JobStore::Init() {
  absl::MutexLock lock(&mu_);
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);

  LORAD_ASSIGN_OR_RETURN(
      std::string mode,
      QueryText(db_, "PRAGMA journal_mode=WAL", "set journal_mode=WAL"));
  // An in-memory or temporary database has no WAL; any file must.
  const char* file = sqlite3_db_filename(db_, "main");
  if (mode != "wal" && file != nullptr && file[0] != '\0') {
    return absl::FailedPreconditionError(
        absl::StrCat("job store: ", file,
                     ": cannot use WAL mode (journal_mode is ", mode, ")"));
  }
  LORAD_RETURN_IF_ERROR(Exec("PRAGMA synchronous=NORMAL", "set synchronous"));

  LORAD_ASSIGN_OR_RETURN(
      std::string version_text,
      QueryText(db_, "PRAGMA user_version", "read schema version"));
  int version = std::atoi(version_text.c_str());
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job store: schema version ", version,
        " is newer than this lorad understands (", kSchemaVersion, ")"));
  }
  if (version < kSchemaVersion) {
    absl::Status created = Exec(kCreateSchemaSql, "create schema");
    if (!created.ok()) {
      if (!sqlite3_get_autocommit(db_)) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      }
      return created;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<sqlite3_stmt*> JobStore::Prepare(const char* sql,
                                                absl::string_view op) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return it->second;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt,
                              nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return SqlError(rc, op);
  }
  statements_.emplace(sql, stmt);
  return stmt;
}

absl::Status JobStore::Exec(const char* sql, absl::string_view op) {
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqlError(rc, op);
  return absl::OkStatus();
}

absl::Status JobStore::SqlError(int rc, absl::string_view op) {
  return ErrorFor(db_, rc, op);
}

absl::Status JobStore::PutDataset(const v1::Dataset& ds) {
  if (ds.id().empty()) {
    return absl::InvalidArgumentError("job store: dataset id is empty");
  }
  const std::string op = absl::StrCat("put dataset ", ds.id());
  LORAD_ASSIGN_OR_RETURN(std::string bytes, Serialize(ds, op));
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      Prepare("INSERT OR REPLACE INTO datasets (id, created_at, proto) "
              "VALUES (?1, ?2, ?3)",
              op));
  ScopedStatement scope(s);
  int rc = Bind(s, ds.id(), ds.created_at_unix(), Blob{bytes});
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) return SqlError(rc, op);
  return absl::OkStatus();
}

absl::StatusOr<v1::Dataset> JobStore::GetDataset(const std::string& id) {
  const std::string op = absl::StrCat("get dataset ", id);
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      Prepare("SELECT proto FROM datasets WHERE id = ?1", op));
  ScopedStatement scope(s);
  if (int rc = Bind(s, id); rc != SQLITE_OK) return SqlError(rc, op);
  return ReadOne<v1::Dataset>(db_, s, op,
                              absl::StrCat("dataset ", id, " not found"));
}

absl::StatusOr<std::vector<v1::Dataset>> JobStore::ListDatasets() {
  constexpr absl::string_view kOp = "list datasets";
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      Prepare("SELECT proto FROM datasets ORDER BY created_at DESC, rowid DESC",
              kOp));
  ScopedStatement scope(s);
  return ReadAll<v1::Dataset>(db_, s, kOp);
}

absl::Status JobStore::CreateJob(const v1::FineTuneJob& job) {
  if (job.id().empty()) {
    return absl::InvalidArgumentError("job store: job id is empty");
  }
  const std::string op = absl::StrCat("create job ", job.id());
  LORAD_ASSIGN_OR_RETURN(std::string bytes, Serialize(job, op));
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      Prepare("INSERT INTO jobs (id, state, created_at, proto) "
              "VALUES (?1, ?2, ?3, ?4)",
              op));
  ScopedStatement scope(s);
  int rc = Bind(s, job.id(), static_cast<int64_t>(job.state()),
                job.created_at_unix(), Blob{bytes});
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
    return absl::AlreadyExistsError(
        absl::StrCat("job ", job.id(), " already exists"));
  }
  if (rc != SQLITE_DONE) return SqlError(rc, op);
  return absl::OkStatus();
}

absl::StatusOr<v1::FineTuneJob> JobStore::GetJob(const std::string& id) {
  const std::string op = absl::StrCat("get job ", id);
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                         Prepare("SELECT proto FROM jobs WHERE id = ?1", op));
  ScopedStatement scope(s);
  if (int rc = Bind(s, id); rc != SQLITE_OK) return SqlError(rc, op);
  return ReadOne<v1::FineTuneJob>(db_, s, op,
                                  absl::StrCat("job ", id, " not found"));
}

absl::StatusOr<std::vector<v1::FineTuneJob>> JobStore::ListJobs(int limit) {
  constexpr absl::string_view kOp = "list jobs";
  if (limit <= 0) limit = kDefaultListLimit;
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      Prepare("SELECT proto FROM jobs ORDER BY created_at DESC, rowid DESC "
              "LIMIT ?1",
              kOp));
  ScopedStatement scope(s);
  if (int rc = Bind(s, int64_t{limit}); rc != SQLITE_OK) {
    return SqlError(rc, kOp);
  }
  return ReadAll<v1::FineTuneJob>(db_, s, kOp);
}

absl::Status JobStore::UpdateJob(const v1::FineTuneJob& job) {
  const std::string op = absl::StrCat("update job ", job.id());
  LORAD_ASSIGN_OR_RETURN(std::string bytes, Serialize(job, op));
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      Prepare("UPDATE jobs SET state = ?2, created_at = ?3, proto = ?4 "
              "WHERE id = ?1",
              op));
  ScopedStatement scope(s);
  int rc = Bind(s, job.id(), static_cast<int64_t>(job.state()),
                job.created_at_unix(), Blob{bytes});
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) return SqlError(rc, op);
  if (sqlite3_changes(db_) == 0) {
    return absl::NotFoundError(absl::StrCat("job ", job.id(), " not found"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::FineTuneJob>> JobStore::JobsInStates(
    const std::vector<v1::JobState>& states) {
  constexpr absl::string_view kOp = "list jobs by state";
  if (states.empty()) return std::vector<v1::FineTuneJob>();
  // One statement for any set of states: the set is bound as a JSON array.
  std::string state_array =
      absl::StrCat("[",
                   absl::StrJoin(states, ",",
                                 [](std::string* out, v1::JobState st) {
                                   absl::StrAppend(out, static_cast<int>(st));
                                 }),
                   "]");
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      Prepare("SELECT proto FROM jobs "
              "WHERE state IN (SELECT value FROM json_each(?1)) "
              "ORDER BY created_at, id",
              kOp));
  ScopedStatement scope(s);
  if (int rc = Bind(s, state_array); rc != SQLITE_OK) return SqlError(rc, kOp);
  return ReadAll<v1::FineTuneJob>(db_, s, kOp);
}

absl::StatusOr<int64_t> JobStore::AppendEvent(v1::JobEvent event) {
  if (event.job_id().empty()) {
    return absl::InvalidArgumentError("job store: event job_id is empty");
  }
  const std::string op = absl::StrCat("append event to job ", event.job_id());
  if (event.time_unix_ms() == 0) {
    event.set_time_unix_ms(absl::ToUnixMillis(absl::Now()));
  }
  absl::MutexLock lock(&mu_);
  // The mutex makes read-then-insert atomic within this process; the primary
  // key (job_id, seq) rejects a duplicate from anywhere else.
  return AppendEventRow(
      [this](const char* sql, absl::string_view what)
          ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return Prepare(sql, what); },
      [this](int rc, absl::string_view what)
          ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return SqlError(rc, what); },
      "SELECT (SELECT COALESCE(MAX(seq), 0) FROM job_events "
      "WHERE job_id = ?1) FROM jobs WHERE id = ?1",
      "INSERT INTO job_events (job_id, seq, proto) VALUES (?1, ?2, ?3)",
      event.job_id(), "job", op,
      [&](int64_t seq) -> absl::StatusOr<std::string> {
        event.set_seq(seq);
        return Serialize(event, op);
      });
}

absl::StatusOr<std::vector<v1::JobEvent>> JobStore::EventsAfter(
    const std::string& job_id, int64_t after_seq, int limit) {
  const std::string op = absl::StrCat("read events of job ", job_id);
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      Prepare("SELECT proto FROM job_events WHERE job_id = ?1 AND seq > ?2 "
              "ORDER BY seq LIMIT ?3",
              op));
  ScopedStatement scope(s);
  // A negative LIMIT means no limit to SQLite.
  int rc = Bind(s, job_id, after_seq, int64_t{limit > 0 ? limit : -1});
  if (rc != SQLITE_OK) return SqlError(rc, op);
  return ReadAll<v1::JobEvent>(db_, s, op);
}

}  // namespace lorad::server
