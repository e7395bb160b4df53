// Small helpers shared by the SQLite stores (JobStore, ServingStore): an
// SQLite result code as an absl::Status, a statement reset at scope end, and
// binding of positional parameters.
#ifndef LORAD_SERVER_STORE_SQLITE_UTIL_H_
#define LORAD_SERVER_STORE_SQLITE_UTIL_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace lorad::server {

// "<store>: <op>: <sqlite's message>" with a code that says what a caller can
// do: BUSY/LOCKED -> Unavailable, FULL/NOMEM/TOOBIG -> ResourceExhausted,
// CORRUPT -> DataLoss, CANTOPEN/NOTADB/READONLY/PERM/AUTH ->
// FailedPrecondition, anything else -> Internal.
absl::Status SqliteStatus(absl::string_view store, sqlite3* db, int rc,
                          absl::string_view op);

// Resets a cached statement (and drops its bindings) when the scope ends,
// which also ends the read transaction an unfinished SELECT holds.
class ScopedStatement {
 public:
  explicit ScopedStatement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ScopedStatement(const ScopedStatement&) = delete;
  ScopedStatement& operator=(const ScopedStatement&) = delete;
  ~ScopedStatement() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  sqlite3_stmt* get() const { return stmt_; }

 private:
  sqlite3_stmt* const stmt_;
};

// Bytes bound as a BLOB (a std::string alone is bound as TEXT).
struct Blob {
  const std::string& bytes;
};

inline int BindOne(sqlite3_stmt* s, int i, int64_t v) {
  return sqlite3_bind_int64(s, i, v);
}
inline int BindOne(sqlite3_stmt* s, int i, const std::string& v) {
  return sqlite3_bind_text64(s, i, v.data(), v.size(), SQLITE_TRANSIENT,
                             SQLITE_UTF8);
}
inline int BindOne(sqlite3_stmt* s, int i, const Blob& v) {
  return sqlite3_bind_blob64(s, i, v.bytes.data(), v.bytes.size(),
                             SQLITE_TRANSIENT);
}

// Binds `args` to parameters 1, 2, ...; the first failing code, or OK.
template <typename... Args>
int Bind(sqlite3_stmt* s, const Args&... args) {
  int i = 0;
  int rc = SQLITE_OK;
  ((rc = rc == SQLITE_OK ? BindOne(s, ++i, args) : rc), ...);
  return rc;
}

// Appends a row to an event log table (job_id, seq, proto), under the
// store's lock: `next_seq_sql` takes ?1 = job id and gives one row with the
// job's last seq (0 before the first) or no row when the job does not exist
// (NotFound, naming `what` and the id); `insert_sql` takes ?1 job id, ?2
// seq, ?3 proto. `row(seq)` gives the proto bytes (StatusOr<std::string>).
// `prepare` and `error` are the store's statement cache and error mapping.
// Returns the new row's seq.
template <typename Prepare, typename Error, typename Row>
absl::StatusOr<int64_t> AppendEventRow(Prepare&& prepare, Error&& error,
                                       const char* next_seq_sql,
                                       const char* insert_sql,
                                       const std::string& job_id,
                                       absl::string_view what,
                                       absl::string_view op, Row&& row) {
  int64_t seq = 0;
  {
    absl::StatusOr<sqlite3_stmt*> s = prepare(next_seq_sql, op);
    if (!s.ok()) return s.status();
    ScopedStatement scope(*s);
    int rc = Bind(*s, job_id);
    if (rc == SQLITE_OK) rc = sqlite3_step(*s);
    if (rc == SQLITE_DONE) {
      return absl::NotFoundError(absl::StrCat(what, " ", job_id, " not found"));
    }
    if (rc != SQLITE_ROW) return error(rc, op);
    seq = sqlite3_column_int64(*s, 0) + 1;
  }
  absl::StatusOr<std::string> bytes = row(seq);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<sqlite3_stmt*> s = prepare(insert_sql, op);
  if (!s.ok()) return s.status();
  ScopedStatement scope(*s);
  int rc = Bind(*s, job_id, seq, Blob{*bytes});
  if (rc == SQLITE_OK) rc = sqlite3_step(*s);
  if (rc != SQLITE_DONE) return error(rc, op);
  return seq;
}

}  // namespace lorad::server

#endif  // LORAD_SERVER_STORE_SQLITE_UTIL_H_
