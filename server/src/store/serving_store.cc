#include "store/serving_store.h"

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

constexpr int kBusyTimeoutMs = 5000;

// Idempotent, so a file that has the JobStore's tables only gains these.
constexpr char kSchemaSql[] = R"sql(
CREATE TABLE IF NOT EXISTS adapters (
  name TEXT PRIMARY KEY NOT NULL,
  proto BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_jobs (
  id TEXT PRIMARY KEY NOT NULL,
  state INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  proto BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS batch_jobs_by_state
  ON batch_jobs (state, created_at, id);
CREATE TABLE IF NOT EXISTS batch_events (
  job_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  proto BLOB NOT NULL,
  PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS batch_results (
  job_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  json TEXT NOT NULL,
  PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;
)sql";

absl::Status ErrorFor(sqlite3* db, int rc, absl::string_view op) {
  return SqliteStatus("serving store", db, rc, op);
}

std::string StateArray(const std::vector<v1::JobState>& states) {
  return absl::StrCat("[",
                      absl::StrJoin(states, ",",
                                    [](std::string* out, v1::JobState s) {
                                      absl::StrAppend(out, static_cast<int>(s));
                                    }),
                      "]");
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServingStore>> ServingStore::Open(
    const std::string& db_path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      db_path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (db == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("serving store: open ", db_path, ": out of memory"));
  }
  auto store = absl::WrapUnique(new ServingStore(db));
  if (rc != SQLITE_OK) {
    absl::MutexLock lock(&store->mu_);
    return store->Error(rc, absl::StrCat("open ", db_path));
  }
  LORAD_RETURN_IF_ERROR(store->Init());
  return store;
}

ServingStore::~ServingStore() {
  absl::MutexLock lock(&mu_);
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

absl::Status ServingStore::Init() {
  absl::MutexLock lock(&mu_);
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
  int existing = 0;
  auto count = [](void* out, int, char** values, char**) {
    *static_cast<int*>(out) = values[0] != nullptr ? std::atoi(values[0]) : 0;
    return 0;
  };
  int rc = sqlite3_exec(db_,
                        "SELECT COUNT(*) FROM sqlite_master WHERE type = "
                        "'table' AND name = 'adapters'",
                        count, &existing, nullptr);
  if (rc != SQLITE_OK) return Error(rc, "read the schema");
  created_registry_ = existing == 0;
  for (const char* sql :
       {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", kSchemaSql}) {
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return Error(rc, "create serving tables");
  }
  return absl::OkStatus();
}

absl::StatusOr<sqlite3_stmt*> ServingStore::Prepare(const char* sql,
                                                    absl::string_view op) {
  for (auto& [text, stmt] : statements_) {
    if (text == sql) return stmt;
  }
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt,
                              nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return Error(rc, op);
  }
  statements_.emplace_back(sql, stmt);
  return stmt;
}

absl::Status ServingStore::Error(int rc, absl::string_view op) {
  return ErrorFor(db_, rc, op);
}

absl::Status ServingStore::Done(sqlite3_stmt* stmt, absl::string_view op) {
  int rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE) return Error(rc, op);
  return absl::OkStatus();
}

template <typename Proto>
absl::StatusOr<std::vector<Proto>> ServingStore::ReadAll(sqlite3_stmt* s,
                                                         absl::string_view op) {
  std::vector<Proto> out;
  while (true) {
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return out;
    if (rc != SQLITE_ROW) return Error(rc, op);
    Proto p;
    if (!p.ParseFromArray(sqlite3_column_blob(s, 0),
                          sqlite3_column_bytes(s, 0))) {
      return absl::DataLossError(absl::StrCat(
          "serving store: ", op, ": a stored record does not parse"));
    }
    out.push_back(std::move(p));
  }
}

absl::Status ServingStore::PutAdapter(const v1::Adapter& adapter) {
  const std::string op = absl::StrCat("put adapter ", adapter.name());
  const std::string bytes = adapter.SerializeAsString();
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      Prepare("INSERT OR REPLACE INTO adapters (name, proto) VALUES (?1, ?2)",
              op));
  ScopedStatement scope(s);
  if (int rc = Bind(s, adapter.name(), Blob{bytes}); rc != SQLITE_OK) {
    return Error(rc, op);
  }
  return Done(s, op);
}

absl::StatusOr<v1::Adapter> ServingStore::GetAdapter(const std::string& name) {
  const std::string op = absl::StrCat("get adapter ", name);
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      Prepare("SELECT proto FROM adapters WHERE name = ?1", op));
  ScopedStatement scope(s);
  if (int rc = Bind(s, name); rc != SQLITE_OK) return Error(rc, op);
  LORAD_ASSIGN_OR_RETURN(std::vector<v1::Adapter> rows,
                         ReadAll<v1::Adapter>(s, op));
  if (rows.empty()) {
    return absl::NotFoundError(absl::StrCat("adapter ", name, " not found"));
  }
  return rows.front();
}

absl::StatusOr<std::vector<v1::Adapter>> ServingStore::ListAdapters() {
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      Prepare("SELECT proto FROM adapters ORDER BY name", "list adapters"));
  ScopedStatement scope(s);
  return ReadAll<v1::Adapter>(s, "list adapters");
}

absl::Status ServingStore::DeleteAdapter(const std::string& name) {
  const std::string op = absl::StrCat("delete adapter ", name);
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                         Prepare("DELETE FROM adapters WHERE name = ?1", op));
  ScopedStatement scope(s);
  if (int rc = Bind(s, name); rc != SQLITE_OK) return Error(rc, op);
  LORAD_RETURN_IF_ERROR(Done(s, op));
  if (sqlite3_changes(db_) == 0) {
    return absl::NotFoundError(absl::StrCat("adapter ", name, " not found"));
  }
  return absl::OkStatus();
}

absl::Status ServingStore::CreateBatchJob(const v1::BatchJob& job) {
  const std::string op = absl::StrCat("create batch job ", job.id());
  const std::string bytes = job.SerializeAsString();
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      Prepare("INSERT INTO batch_jobs (id, state, created_at, proto) "
              "VALUES (?1, ?2, ?3, ?4)",
              op));
  ScopedStatement scope(s);
  int rc = Bind(s, job.id(), static_cast<int64_t>(job.state()),
                job.created_at_unix(), Blob{bytes});
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
    return absl::AlreadyExistsError(
        absl::StrCat("batch job ", job.id(), " already exists"));
  }
  if (rc != SQLITE_DONE) return Error(rc, op);
  return absl::OkStatus();
}

absl::StatusOr<v1::BatchJob> ServingStore::GetBatchJob(const std::string& id) {
  const std::string op = absl::StrCat("get batch job ", id);
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      Prepare("SELECT proto FROM batch_jobs WHERE id = ?1", op));
  ScopedStatement scope(s);
  if (int rc = Bind(s, id); rc != SQLITE_OK) return Error(rc, op);
  LORAD_ASSIGN_OR_RETURN(std::vector<v1::BatchJob> rows,
                         ReadAll<v1::BatchJob>(s, op));
  if (rows.empty()) {
    return absl::NotFoundError(absl::StrCat("batch job ", id, " not found"));
  }
  return rows.front();
}

absl::StatusOr<std::vector<v1::BatchJob>> ServingStore::ListBatchJobs(
    int limit) {
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      Prepare("SELECT proto FROM batch_jobs ORDER BY created_at DESC, "
              "rowid DESC LIMIT ?1",
              "list batch jobs"));
  ScopedStatement scope(s);
  if (int rc = Bind(s, int64_t{limit > 0 ? limit : 100}); rc != SQLITE_OK) {
    return Error(rc, "list batch jobs");
  }
  return ReadAll<v1::BatchJob>(s, "list batch jobs");
}

absl::Status ServingStore::UpdateBatchJob(const v1::BatchJob& job) {
  const std::string op = absl::StrCat("update batch job ", job.id());
  const std::string bytes = job.SerializeAsString();
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      Prepare("UPDATE batch_jobs SET state = ?2, proto = ?3 WHERE id = ?1",
              op));
  ScopedStatement scope(s);
  int rc = Bind(s, job.id(), static_cast<int64_t>(job.state()), Blob{bytes});
  if (rc != SQLITE_OK) return Error(rc, op);
  LORAD_RETURN_IF_ERROR(Done(s, op));
  if (sqlite3_changes(db_) == 0) {
    return absl::NotFoundError(
        absl::StrCat("batch job ", job.id(), " not found"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::BatchJob>> ServingStore::BatchJobsInStates(
    const std::vector<v1::JobState>& states) {
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      Prepare("SELECT proto FROM batch_jobs "
              "WHERE state IN (SELECT value FROM json_each(?1)) "
              "ORDER BY created_at, id",
              "list batch jobs by state"));
  ScopedStatement scope(s);
  if (int rc = Bind(s, StateArray(states)); rc != SQLITE_OK) {
    return Error(rc, "list batch jobs by state");
  }
  return ReadAll<v1::BatchJob>(s, "list batch jobs by state");
}

absl::StatusOr<int64_t> ServingStore::AppendBatchEvent(v1::JobEvent event) {
  const std::string op = absl::StrCat("append event to ", event.job_id());
  if (event.time_unix_ms() == 0) {
    event.set_time_unix_ms(absl::ToUnixMillis(absl::Now()));
  }
  absl::MutexLock lock(&mu_);
  return AppendEventRow(
      [this](const char* sql, absl::string_view what)
          ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return Prepare(sql, what); },
      [this](int rc, absl::string_view what)
          ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return Error(rc, what); },
      "SELECT (SELECT COALESCE(MAX(seq), 0) FROM batch_events "
      "WHERE job_id = ?1) FROM batch_jobs WHERE id = ?1",
      "INSERT INTO batch_events (job_id, seq, proto) VALUES (?1, ?2, ?3)",
      event.job_id(), "batch job", op,
      [&](int64_t seq) -> absl::StatusOr<std::string> {
        event.set_seq(seq);
        return event.SerializeAsString();
      });
}

absl::StatusOr<std::vector<v1::JobEvent>> ServingStore::BatchEventsAfter(
    const std::string& job_id, int64_t after_seq, int limit) {
  const std::string op = absl::StrCat("read events of ", job_id);
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      Prepare("SELECT proto FROM batch_events WHERE job_id = ?1 AND seq > ?2 "
              "ORDER BY seq LIMIT ?3",
              op));
  ScopedStatement scope(s);
  int rc = Bind(s, job_id, after_seq, int64_t{limit > 0 ? limit : -1});
  if (rc != SQLITE_OK) return Error(rc, op);
  return ReadAll<v1::JobEvent>(s, op);
}

absl::Status ServingStore::PutBatchResult(const std::string& job_id,
                                          int64_t index,
                                          const std::string& json) {
  const std::string op = absl::StrCat("store result ", index, " of ", job_id);
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      Prepare("INSERT OR REPLACE INTO batch_results (job_id, idx, json) "
              "VALUES (?1, ?2, ?3)",
              op));
  ScopedStatement scope(s);
  if (int rc = Bind(s, job_id, index, json); rc != SQLITE_OK) {
    return Error(rc, op);
  }
  return Done(s, op);
}

absl::StatusOr<std::vector<int64_t>> ServingStore::BatchResultIndices(
    const std::string& job_id) {
  const std::string op = absl::StrCat("list results of ", job_id);
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      Prepare("SELECT idx FROM batch_results WHERE job_id = ?1 ORDER BY idx",
              op));
  ScopedStatement scope(s);
  if (int rc = Bind(s, job_id); rc != SQLITE_OK) return Error(rc, op);
  std::vector<int64_t> out;
  while (true) {
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return out;
    if (rc != SQLITE_ROW) return Error(rc, op);
    out.push_back(sqlite3_column_int64(s, 0));
  }
}

absl::StatusOr<std::vector<std::pair<int64_t, std::string>>>
ServingStore::BatchResults(const std::string& job_id, int64_t after_index,
                           int limit) {
  const std::string op = absl::StrCat("read results of ", job_id);
  absl::MutexLock lock(&mu_);
  LORAD_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      Prepare("SELECT idx, json FROM batch_results WHERE job_id = ?1 AND "
              "idx > ?2 ORDER BY idx LIMIT ?3",
              op));
  ScopedStatement scope(s);
  int rc = Bind(s, job_id, after_index, int64_t{limit > 0 ? limit : -1});
  if (rc != SQLITE_OK) return Error(rc, op);
  std::vector<std::pair<int64_t, std::string>> out;
  while (true) {
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) return out;
    if (rc != SQLITE_ROW) return Error(rc, op);
    const unsigned char* text = sqlite3_column_text(s, 1);
    out.emplace_back(sqlite3_column_int64(s, 0),
                     std::string(reinterpret_cast<const char*>(text),
                                 sqlite3_column_bytes(s, 1)));
  }
}

}  // namespace lorad::server
