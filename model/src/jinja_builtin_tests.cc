// The tests (x is t) chat templates use, with jinja2's semantics.
#include <algorithm>
#include <cctype>
#include <string>

#include "absl/strings/str_cat.h"
#include "jinja_internal.h"
#include "lorad/common/status_macros.h"

namespace lorad::model::jinja {
namespace {

constexpr absl::string_view kTests[] = {
    "defined",     "undefined", "none",     "string",      "number",
    "integer",     "float",     "mapping",  "iterable",    "sequence",
    "boolean",     "true",      "false",    "equalto",     "eq",
    "==",          "ne",        "!=",       "lt",          "<",
    "lessthan",    "gt",        ">",        "greaterthan", "le",
    "<=",          "ge",        ">=",       "even",        "odd",
    "divisibleby", "in",        "callable", "sameas",      "lower",
    "upper",       "escaped",   "filter",   "test"};

}  // namespace

bool HasTest(absl::string_view name) {
  return std::find(std::begin(kTests), std::end(kTests), name) !=
         std::end(kTests);
}

absl::StatusOr<bool> ApplyTest(Runtime& rt, absl::string_view t, const Value& v,
                               const CallArgs& a, const Expr& at) {
  using K = Value::Kind;
  const Value* arg = a.Get(0, "value");
  auto need = [&]() -> absl::Status {
    if (arg) return absl::OkStatus();
    return ErrorAt(at.line, at.col,
                   absl::StrCat("test '", t, "' needs an argument"));
  };
  if (t == "defined") return !v.IsUndefined();
  if (t == "undefined") return v.IsUndefined();
  if (t == "none") return v.IsNone();
  if (t == "string") return v.IsString();
  if (t == "number") return v.IsNumber();
  if (t == "integer") return v.kind() == K::kInt;
  if (t == "float") return v.kind() == K::kFloat;
  if (t == "boolean") return v.kind() == K::kBool;
  if (t == "true") return v.kind() == K::kBool && v.bool_value();
  if (t == "false") return v.kind() == K::kBool && !v.bool_value();
  if (t == "mapping") return v.IsDict() && !v.IsNamespace();
  if (t == "iterable" || t == "sequence") {
    return v.IsString() || v.IsList() || v.IsUndefined() ||
           (v.IsDict() && !v.IsNamespace());
  }
  if (t == "callable") return v.IsCallable();
  if (t == "escaped") return false;
  if (t == "lower" || t == "upper") {
    if (!v.IsString()) return false;
    bool cased = false;
    for (unsigned char c : v.str()) {
      if (std::isalpha(c)) {
        cased = true;
        if ((t == "lower") != (std::islower(c) != 0)) return false;
      }
    }
    return cased;
  }
  if (t == "filter" || t == "test") {
    if (!v.IsString()) return false;
    return t == "filter" ? HasFilter(v.str()) : HasTest(v.str());
  }
  if (t == "even" || t == "odd" || t == "divisibleby") {
    if (v.kind() != K::kInt && v.kind() != K::kBool) {
      return ErrorAt(
          at.line, at.col,
          absl::StrCat("test '", t, "' needs an integer, got ", v.TypeName()));
    }
    if (t == "divisibleby") {
      LORAD_RETURN_IF_ERROR(need());
      if (arg->kind() != K::kInt || arg->int_value() == 0) {
        return ErrorAt(at.line, at.col, "divisibleby needs a non-zero int");
      }
      if (arg->int_value() == -1) return true;
      return v.int_value() % arg->int_value() == 0;
    }
    const bool even = v.int_value() % 2 == 0;
    return t == "even" ? even : !even;
  }
  LORAD_RETURN_IF_ERROR(need());
  if (t == "sameas") {
    if (v.kind() != arg->kind()) return false;
    if (v.IsNone() || v.IsUndefined()) return true;
    if (v.kind() == K::kBool) return v.bool_value() == arg->bool_value();
    return v.Equals(*arg) && (v.IsNumber() || v.IsString());
  }
  if (t == "in") return Contains(*arg, v, at);
  std::string op(t);
  if (t == "equalto" || t == "eq") op = "==";
  if (t == "ne") op = "!=";
  if (t == "lt" || t == "lessthan") op = "<";
  if (t == "gt" || t == "greaterthan") op = ">";
  if (t == "le") op = "<=";
  if (t == "ge") op = ">=";
  (void)rt;
  return Compare(op, v, *arg, at);
}

}  // namespace lorad::model::jinja
