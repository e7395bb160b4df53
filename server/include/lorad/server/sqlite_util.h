// Small helpers shared by the SQLite stores (JobStore, ServingStore): an
// SQLite result code as an absl::Status, a statement reset at scope end, and
// binding of positional parameters.
#ifndef LORAD_SERVER_SQLITE_UTIL_H_
#define LORAD_SERVER_SQLITE_UTIL_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
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

}  // namespace lorad::server

#endif  // LORAD_SERVER_SQLITE_UTIL_H_
