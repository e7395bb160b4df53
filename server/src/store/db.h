// The one SQLite layer under lorad's stores: a Db owns the one connection to
// one database file (lorad.db); the stores (JobStore, DatasetStore,
// AdapterStore, BatchJobStore) are thin classes over a shared Db*, each
// adding its own tables through AddSchema.
//
// Opening: the file is created when missing, put in WAL mode with
// synchronous=FULL (every commit, a job's state change among them, is on
// disk before it returns: it survives a crash of the process and a power
// loss),
// and waits up to kBusyTimeoutMs for a lock another process holds. The
// schema version lives in PRAGMA user_version: a file written by a newer
// lorad is refused rather than misread, an older one is brought up to
// kSchemaVersion. Every store's schema is idempotent (CREATE ... IF NOT
// EXISTS), so a file written before a table existed gains it on open.
//
// Statements are prepared once and cached by their SQL text. Outside a
// Transaction every statement is its own commit.
//
// Errors: every SQLite failure becomes a Status whose message names the
// store and the operation ("job store: update job ftjob-1: database or disk
// is full") and whose code says what a caller can do; see SqliteStatus.
// Nothing here aborts the process.
//
// This class is thread-safe: one connection guarded by one mutex, so calls
// (and whole transactions) are serialized. One process should own the
// file; a second one waits on SQLite's lock up to the busy timeout, then
// gets Unavailable.
#ifndef LORAD_SERVER_STORE_DB_H_
#define LORAD_SERVER_STORE_DB_H_

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/message_lite.h"
#include "lorad/common/status_macros.h"

struct sqlite3;
struct sqlite3_stmt;

namespace lorad::server {

// "<store>: <what>: <SQLite's message>" with a code that says what a caller
// can do: BUSY/LOCKED -> Unavailable; FULL/NOMEM/TOOBIG ->
// ResourceExhausted; CORRUPT -> DataLoss; CANTOPEN/NOTADB/READONLY/PERM/AUTH
// -> FailedPrecondition; a PRIMARY KEY or UNIQUE constraint -> AlreadyExists;
// anything else -> Internal. `rc` may be an extended result code.
absl::Status SqliteStatus(absl::string_view store, absl::string_view what,
                          int rc, absl::string_view detail);

// Names an operation in error messages: the store ("job store") and what it
// was doing ("get job ftjob-1").
struct Op {
  absl::string_view store;
  std::string what;
};

// Bytes bound as a BLOB (text is bound as TEXT).
struct Blob {
  absl::string_view bytes;
};

// One value bound to a statement parameter: an integer, text or a blob.
// It refers to the caller's text, which must outlive the call it is passed
// to (a temporary in the same expression does).
class Param {
 public:
  enum class Kind { kInt, kText, kBlob };
  // Implicit on purpose, so that a parameter list reads {id, 42, Blob{b}}.
  // NOLINTBEGIN(google-explicit-constructor)
  Param(int64_t value) : kind_(Kind::kInt), int_(value) {}
  Param(int value) : Param(int64_t{value}) {}
  Param(absl::string_view text) : kind_(Kind::kText), bytes_(text) {}
  Param(const std::string& text) : Param(absl::string_view(text)) {}
  Param(const char* text) : Param(absl::string_view(text)) {}
  Param(Blob blob) : kind_(Kind::kBlob), bytes_(blob.bytes) {}
  // NOLINTEND(google-explicit-constructor)

  Kind kind() const { return kind_; }
  int64_t int_value() const { return int_; }
  absl::string_view bytes() const { return bytes_; }

 private:
  Kind kind_;
  int64_t int_ = 0;
  absl::string_view bytes_;
};
// Parameters bound in order to ?1, ?2, ...
using Params = std::initializer_list<Param>;

// One result row, valid during the callback it is passed to.
class Row {
 public:
  int64_t Int(int col) const;
  absl::string_view Text(int col) const;
  // Parses column `col` as a serialized proto into `out`. DataLoss naming
  // the operation when it does not parse.
  absl::Status Proto(int col, google::protobuf::MessageLite& out) const;

 private:
  friend class Db;
  Row(sqlite3_stmt* stmt, const Op& op) : stmt_(stmt), op_(op) {}
  sqlite3_stmt* const stmt_;
  const Op& op_;
};

// `message` serialized. Internal naming the operation when it cannot be.
absl::StatusOr<std::string> SerializeRecord(
    const Op& op, const google::protobuf::MessageLite& message);

// What statements run through: a Db (each statement one commit) or, inside
// Db::Transaction, its Txn. `sql` is one statement with parameters ?1, ?2,
// ...; it is prepared once per Db and cached by its text, so it must not be
// built from values (bind them).
class SqlRunner {
 public:
  // Runs a statement that returns no rows; gives the number of rows it
  // changed.
  virtual absl::StatusOr<int64_t> Exec(const Op& op, const char* sql,
                                       Params params) = 0;
  // Runs a query, calling `on_row` for each row in order; stops at, and
  // returns, the first error `on_row` returns.
  virtual absl::Status Query(
      const Op& op, const char* sql, Params params,
      absl::FunctionRef<absl::Status(const Row&)> on_row) = 0;

  // Every row's column 0 parsed as a `Proto`.
  template <typename Proto>
  absl::StatusOr<std::vector<Proto>> QueryProtos(const Op& op, const char* sql,
                                                 Params params) {
    std::vector<Proto> out;
    LORAD_RETURN_IF_ERROR(Query(op, sql, params, [&out](const Row& row) {
      return row.Proto(0, out.emplace_back());
    }));
    return out;
  }
  // The first row's column 0 parsed as a `Proto`; NotFound(`missing`) when
  // there is no row.
  template <typename Proto>
  absl::StatusOr<Proto> QueryProto(const Op& op, const char* sql, Params params,
                                   absl::string_view missing) {
    LORAD_ASSIGN_OR_RETURN(std::vector<Proto> rows,
                           QueryProtos<Proto>(op, sql, params));
    if (rows.empty()) return absl::NotFoundError(missing);
    return std::move(rows.front());
  }

 protected:
  ~SqlRunner() = default;
};

class Txn;

class Db final : public SqlRunner {
 public:
  // The schema version this code writes and reads (PRAGMA user_version).
  static constexpr int kSchemaVersion = 1;
  // How long a call waits for a lock held by another connection.
  static constexpr int kBusyTimeoutMs = 5000;

  // Opens (creating if needed) the database at `path`; its directory must
  // exist. FailedPrecondition naming the path when the file cannot be
  // opened, is not a database, cannot use WAL, or has a newer schema
  // version; the other codes as in SqliteStatus.
  static absl::StatusOr<std::unique_ptr<Db>> Open(const std::string& path);

  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  // Finalizes the statements and closes the connection; everything
  // committed stays in the file. No store may use the Db afterwards.
  ~Db();

  // Runs `schema_sql` (one or more idempotent statements, e.g. CREATE TABLE
  // IF NOT EXISTS) in one transaction.
  absl::Status AddSchema(const Op& op, const char* schema_sql);
  // Whether the file has a table named `table`.
  absl::StatusOr<bool> HasTable(absl::string_view table);

  absl::StatusOr<int64_t> Exec(const Op& op, const char* sql,
                               Params params) override;
  absl::Status Query(
      const Op& op, const char* sql, Params params,
      absl::FunctionRef<absl::Status(const Row&)> on_row) override;

  // Runs `body` in one transaction (BEGIN IMMEDIATE, so it holds the write
  // lock from the start): committed when `body` returns OK, rolled back
  // when it returns an error, which is then returned. `body` runs under the
  // Db's mutex and must use only the Txn it is given.
  absl::Status Transaction(const Op& op,
                           absl::FunctionRef<absl::Status(Txn&)> body);

  // How many prepared statements the cache holds (for tests).
  int CachedStatements();

 private:
  friend class Txn;
  explicit Db(sqlite3* db, std::string path);

  // Pragmas and the schema version check.
  absl::Status Init();
  absl::StatusOr<sqlite3_stmt*> Prepare(const Op& op, const char* sql)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<int64_t> ExecLocked(const Op& op, const char* sql,
                                     Params params)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status QueryLocked(const Op& op, const char* sql, Params params,
                           absl::FunctionRef<absl::Status(const Row&)> on_row)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs SQL text that may hold several statements, uncached.
  absl::Status ExecScript(const Op& op, const char* sql)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The first column of the first row of `sql` as text ("" for none).
  absl::StatusOr<std::string> QueryText(const Op& op, const char* sql)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status TransactionLocked(const Op& op,
                                 absl::FunctionRef<absl::Status()> body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Error(const Op& op, int rc) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  sqlite3* const db_ ABSL_PT_GUARDED_BY(mu_);  // owned
  const std::string path_;
  // Prepared statements by SQL text; owned, finalized on destruction.
  absl::flat_hash_map<std::string, sqlite3_stmt*> statements_
      ABSL_GUARDED_BY(mu_);
};

// The statements of one Db::Transaction; valid only inside its body.
class Txn final : public SqlRunner {
 public:
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;

  absl::StatusOr<int64_t> Exec(const Op& op, const char* sql,
                               Params params) override;
  absl::Status Query(
      const Op& op, const char* sql, Params params,
      absl::FunctionRef<absl::Status(const Row&)> on_row) override;

 private:
  friend class Db;
  explicit Txn(Db& db) : db_(db) {}
  Db& db_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_STORE_DB_H_
