// Small helpers for absl::Status plumbing. Debian 12's Abseil (20220623) has
// no RETURN_IF_ERROR / ASSIGN_OR_RETURN, so lorad defines its own, once.
#ifndef LORAD_COMMON_STATUS_MACROS_H_
#define LORAD_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define LORAD_CONCAT_INNER_(a, b) a##b
#define LORAD_CONCAT_(a, b) LORAD_CONCAT_INNER_(a, b)

// Returns from the current function when `expr` yields a non-OK status.
#define LORAD_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::absl::Status lorad_status_ = (expr);         \
    if (!lorad_status_.ok()) return lorad_status_; \
  } while (0)

// `lhs = value of statusor_expr`, or return its error.
#define LORAD_ASSIGN_OR_RETURN(lhs, expr)                                     \
  LORAD_ASSIGN_OR_RETURN_IMPL_(LORAD_CONCAT_(lorad_statusor_, __LINE__), lhs, \
                               expr)

#define LORAD_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()

#endif  // LORAD_COMMON_STATUS_MACROS_H_
