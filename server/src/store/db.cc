#include "store/db.h"

#include <sqlite3.h>

#include <cstdlib>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"

namespace lorad::server {
namespace {

// Resets a cached statement (and drops its bindings) when the scope ends,
// which also ends the read transaction an unfinished SELECT holds.
class ResetOnExit {
 public:
  explicit ResetOnExit(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;
  ~ResetOnExit() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

 private:
  sqlite3_stmt* const stmt_;
};

int BindAll(sqlite3_stmt* stmt, Params params) {
  int i = 0;
  for (const Param& p : params) {
    ++i;
    const absl::string_view bytes = p.bytes();
    int rc = SQLITE_OK;
    switch (p.kind()) {
      case Param::Kind::kInt:
        rc = sqlite3_bind_int64(stmt, i, p.int_value());
        break;
      case Param::Kind::kText:
        rc = sqlite3_bind_text64(stmt, i, bytes.data(), bytes.size(),
                                 SQLITE_TRANSIENT, SQLITE_UTF8);
        break;
      case Param::Kind::kBlob:
        // A non-null pointer even for no bytes: NULL would bind SQL NULL.
        rc = sqlite3_bind_blob64(stmt, i, bytes.empty() ? "" : bytes.data(),
                                 bytes.size(), SQLITE_TRANSIENT);
        break;
    }
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

}  // namespace

absl::Status SqliteStatus(absl::string_view store, absl::string_view what,
                          int rc, absl::string_view detail) {
  std::string msg = absl::StrCat(store, ": ", what, ": ", detail);
  if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
    return absl::AlreadyExistsError(msg);
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(msg);
    case SQLITE_FULL:
    case SQLITE_NOMEM:
    case SQLITE_TOOBIG:
      return absl::ResourceExhaustedError(msg);
    case SQLITE_CORRUPT:
      return absl::DataLossError(msg);
    case SQLITE_CANTOPEN:
    case SQLITE_NOTADB:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::FailedPreconditionError(msg);
    default:
      return absl::InternalError(msg);
  }
}

int64_t Row::Int(int col) const { return sqlite3_column_int64(stmt_, col); }

absl::string_view Row::Text(int col) const {
  const unsigned char* text = sqlite3_column_text(stmt_, col);
  return absl::string_view(reinterpret_cast<const char*>(text),
                           sqlite3_column_bytes(stmt_, col));
}

absl::Status Row::Proto(int col, google::protobuf::MessageLite& out) const {
  if (!out.ParseFromArray(sqlite3_column_blob(stmt_, col),
                          sqlite3_column_bytes(stmt_, col))) {
    return absl::DataLossError(absl::StrCat(
        op_.store, ": ", op_.what, ": a stored record does not parse"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SerializeRecord(
    const Op& op, const google::protobuf::MessageLite& message) {
  std::string bytes;
  if (!message.SerializeToString(&bytes)) {
    return absl::InternalError(absl::StrCat(op.store, ": ", op.what,
                                            ": the record does not serialize"));
  }
  return bytes;
}

Db::Db(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

Db::~Db() {
  absl::MutexLock lock(&mu_);
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

absl::StatusOr<std::unique_ptr<Db>> Db::Open(const std::string& path) {
  sqlite3* handle = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &handle,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (handle == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat(path, ": open: out of memory"));
  }
  // The Db owns the handle from here, so every return closes it.
  auto db = absl::WrapUnique(new Db(handle, path));
  if (rc != SQLITE_OK) {
    absl::MutexLock lock(&db->mu_);
    return db->Error(Op{path, "open"}, rc);
  }
  LORAD_RETURN_IF_ERROR(db->Init());
  return db;
}

absl::Status Db::Init() {
  absl::MutexLock lock(&mu_);
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);

  LORAD_ASSIGN_OR_RETURN(
      std::string mode,
      QueryText(Op{path_, "set journal_mode=WAL"}, "PRAGMA journal_mode=WAL"));
  // An in-memory or temporary database has no WAL; any file must.
  const char* file = sqlite3_db_filename(db_, "main");
  if (mode != "wal" && file != nullptr && file[0] != '\0') {
    return absl::FailedPreconditionError(absl::StrCat(
        path_, ": cannot use WAL mode (journal_mode is ", mode, ")"));
  }
  LORAD_RETURN_IF_ERROR(
      ExecScript(Op{path_, "set synchronous"}, "PRAGMA synchronous=FULL"));

  const Op version_op{path_, "read schema version"};
  LORAD_ASSIGN_OR_RETURN(std::string version_text,
                         QueryText(version_op, "PRAGMA user_version"));
  const int version = std::atoi(version_text.c_str());
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        path_, ": schema version ", version,
        " is newer than this lorad understands (", kSchemaVersion, ")"));
  }
  if (version < kSchemaVersion) {
    const std::string set_version =
        absl::StrCat("PRAGMA user_version = ", kSchemaVersion);
    LORAD_RETURN_IF_ERROR(
        ExecScript(Op{path_, "set schema version"}, set_version.c_str()));
  }
  return absl::OkStatus();
}

absl::Status Db::AddSchema(const Op& op, const char* schema_sql) {
  absl::MutexLock lock(&mu_);
  return TransactionLocked(op, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return ExecScript(op, schema_sql);
  });
}

absl::StatusOr<bool> Db::HasTable(absl::string_view table) {
  bool found = false;
  LORAD_RETURN_IF_ERROR(
      Query(Op{path_, absl::StrCat("look for table ", table)},
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            {table}, [&found](const Row&) {
              found = true;
              return absl::OkStatus();
            }));
  return found;
}

absl::StatusOr<int64_t> Db::Exec(const Op& op, const char* sql, Params params) {
  absl::MutexLock lock(&mu_);
  return ExecLocked(op, sql, params);
}

absl::Status Db::Query(const Op& op, const char* sql, Params params,
                       absl::FunctionRef<absl::Status(const Row&)> on_row) {
  absl::MutexLock lock(&mu_);
  return QueryLocked(op, sql, params, on_row);
}

absl::Status Db::Transaction(const Op& op,
                             absl::FunctionRef<absl::Status(Txn&)> body) {
  absl::MutexLock lock(&mu_);
  Txn txn(*this);
  return TransactionLocked(op, [&] { return body(txn); });
}

int Db::CachedStatements() {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(statements_.size());
}

absl::StatusOr<sqlite3_stmt*> Db::Prepare(const Op& op, const char* sql) {
  auto it = statements_.find(absl::string_view(sql));
  if (it != statements_.end()) return it->second;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt,
                              nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return Error(op, rc);
  }
  statements_.emplace(sql, stmt);
  return stmt;
}

absl::StatusOr<int64_t> Db::ExecLocked(const Op& op, const char* sql,
                                       Params params) {
  LORAD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Prepare(op, sql));
  ResetOnExit reset(stmt);
  int rc = BindAll(stmt, params);
  if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE) return Error(op, rc);
  return sqlite3_changes64(db_);
}

absl::Status Db::QueryLocked(
    const Op& op, const char* sql, Params params,
    absl::FunctionRef<absl::Status(const Row&)> on_row) {
  LORAD_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Prepare(op, sql));
  ResetOnExit reset(stmt);
  if (int rc = BindAll(stmt, params); rc != SQLITE_OK) return Error(op, rc);
  const Row row(stmt, op);
  while (true) {
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) return absl::OkStatus();
    if (rc != SQLITE_ROW) return Error(op, rc);
    LORAD_RETURN_IF_ERROR(on_row(row));
  }
}

absl::Status Db::ExecScript(const Op& op, const char* sql) {
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return Error(op, rc);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Db::QueryText(const Op& op, const char* sql) {
  std::string value;
  auto first_column = [](void* out, int n, char** values, char**) {
    if (n > 0 && values[0] != nullptr) {
      *static_cast<std::string*>(out) = values[0];
    }
    return 0;
  };
  int rc = sqlite3_exec(db_, sql, first_column, &value, nullptr);
  if (rc != SQLITE_OK) return Error(op, rc);
  return value;
}

absl::Status Db::TransactionLocked(const Op& op,
                                   absl::FunctionRef<absl::Status()> body) {
  LORAD_RETURN_IF_ERROR(ExecScript(op, "BEGIN IMMEDIATE"));
  absl::Status status = body();
  if (status.ok()) status = ExecScript(op, "COMMIT");
  // A failed COMMIT may leave the transaction open (e.g. SQLITE_BUSY).
  if (!status.ok() && !sqlite3_get_autocommit(db_)) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  return status;
}

absl::Status Db::Error(const Op& op, int rc) {
  return SqliteStatus(op.store, op.what, rc, sqlite3_errmsg(db_));
}

absl::StatusOr<int64_t> Txn::Exec(const Op& op, const char* sql,
                                  Params params) {
  db_.mu_.AssertHeld();
  return db_.ExecLocked(op, sql, params);
}

absl::Status Txn::Query(const Op& op, const char* sql, Params params,
                        absl::FunctionRef<absl::Status(const Row&)> on_row) {
  db_.mu_.AssertHeld();
  return db_.QueryLocked(op, sql, params, on_row);
}

}  // namespace lorad::server
