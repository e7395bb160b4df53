// Python's operators, comparisons, iteration and subscripts as jinja2's
// sandbox exposes them.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "jinja_internal.h"
#include "lorad/common/status_macros.h"

namespace lorad::model::jinja {
namespace {

absl::Status TypeError(const Expr& at, absl::string_view op, const Value& a,
                       const Value& b) {
  return ErrorAt(at.line, at.col,
                 absl::StrCat("unsupported operand types for ", op, ": '",
                              a.TypeName(), "' and '", b.TypeName(), "'"));
}

// A missing key's name for "'x' is undefined" (never a container's repr).
std::string KeyName(const Value& key) {
  if (key.IsString()) return key.str();
  if (key.kind() == Value::Kind::kInt) return absl::StrCat(key.int_value());
  return absl::StrCat("<", key.TypeName(), ">");
}

absl::StatusOr<Value> Repeat(Runtime& rt, const Value& seq, int64_t n,
                             const Expr& at) {
  if (n < 0) n = 0;
  if (seq.IsString()) {
    if (!seq.str().empty() &&
        static_cast<uint64_t>(n) >
            rt.limits().max_alloc_bytes / seq.str().size()) {
      return rt.Charge(rt.limits().max_alloc_bytes + 1, at.line, at.col);
    }
    LORAD_RETURN_IF_ERROR(rt.Charge(seq.str().size() * n, at.line, at.col));
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += seq.str();
    return Value::String(std::move(out));
  }
  const size_t len = seq.items().size();
  if (len && static_cast<uint64_t>(n) >
                 rt.limits().max_alloc_bytes / (len * sizeof(Value))) {
    return rt.Charge(rt.limits().max_alloc_bytes + 1, at.line, at.col);
  }
  LORAD_RETURN_IF_ERROR(rt.Charge(len * n * sizeof(Value), at.line, at.col));
  std::vector<Value> out;
  for (int64_t i = 0; i < n; ++i) {
    out.insert(out.end(), seq.items().begin(), seq.items().end());
  }
  return Value::List(std::move(out), seq.IsTuple());
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

absl::Status UndefinedError(const Value& v, const Expr& at) {
  return ErrorAt(at.line, at.col,
                 v.str().empty()
                     ? std::string("value is undefined")
                     : absl::StrCat("'", v.str(), "' is undefined"));
}

absl::StatusOr<Value> BinaryOp(Runtime& rt, absl::string_view op,
                               const Value& a, const Value& b, const Expr& at) {
  if (op == "~") {
    LORAD_RETURN_IF_ERROR(rt.ChargeText(a, 2, at.line, at.col));
    LORAD_RETURN_IF_ERROR(rt.ChargeText(b, 2, at.line, at.col));
    std::string s = a.ToString();
    s += b.ToString();
    LORAD_RETURN_IF_ERROR(rt.Charge(s.size(), at.line, at.col));
    return Value::String(std::move(s));
  }
  if (a.IsUndefined()) return UndefinedError(a, at);
  if (b.IsUndefined()) return UndefinedError(b, at);
  if (op == "+") {
    if (a.IsString() && b.IsString()) {
      LORAD_RETURN_IF_ERROR(
          rt.Charge(a.str().size() + b.str().size(), at.line, at.col));
      return Value::String(a.str() + b.str());
    }
    if (a.IsList() && b.IsList() && a.IsTuple() == b.IsTuple()) {
      std::vector<Value> items = a.items();
      items.insert(items.end(), b.items().begin(), b.items().end());
      LORAD_RETURN_IF_ERROR(
          rt.Charge(items.size() * sizeof(Value), at.line, at.col));
      return Value::List(std::move(items), a.IsTuple());
    }
  }
  if (op == "*") {
    const bool a_int =
        a.kind() == Value::Kind::kInt || a.kind() == Value::Kind::kBool;
    const bool b_int =
        b.kind() == Value::Kind::kInt || b.kind() == Value::Kind::kBool;
    if ((a.IsString() || a.IsList()) && b_int) {
      return Repeat(rt, a, b.int_value(), at);
    }
    if ((b.IsString() || b.IsList()) && a_int) {
      return Repeat(rt, b, a.int_value(), at);
    }
  }
  if (!a.IsNumber() || !b.IsNumber()) return TypeError(at, op, a, b);
  const bool floats =
      a.kind() == Value::Kind::kFloat || b.kind() == Value::Kind::kFloat;
  const double x = a.float_value(), y = b.float_value();
  const int64_t i = a.int_value(), j = b.int_value();
  auto overflow = [&] { return ErrorAt(at.line, at.col, "integer overflow"); };
  auto zero = [&] {
    return ErrorAt(at.line, at.col, "division or modulo by zero");
  };
  int64_t r = 0;
  if (op == "/") {
    if (y == 0) return zero();
    return Value::Float(x / y);
  }
  if (floats) {
    if (op == "+") return Value::Float(x + y);
    if (op == "-") return Value::Float(x - y);
    if (op == "*") return Value::Float(x * y);
    if (op == "**") return Value::Float(std::pow(x, y));
    if (y == 0) return zero();
    if (op == "//") return Value::Float(std::floor(x / y));
    if (op == "%") {
      double m = std::fmod(x, y);
      if (m != 0 && ((m < 0) != (y < 0))) m += y;
      return Value::Float(m);
    }
  } else {
    if (op == "+") {
      if (__builtin_add_overflow(i, j, &r)) return overflow();
      return Value::Int(r);
    }
    if (op == "-") {
      if (__builtin_sub_overflow(i, j, &r)) return overflow();
      return Value::Int(r);
    }
    if (op == "*") {
      if (__builtin_mul_overflow(i, j, &r)) return overflow();
      return Value::Int(r);
    }
    if (op == "**") {
      if (j < 0) return Value::Float(std::pow(x, y));
      int64_t acc = 1;
      for (int64_t k = 0; k < j; ++k) {
        if (__builtin_mul_overflow(acc, i, &acc)) return overflow();
        if (acc == 0 || acc == 1) break;  // 0**n and 1**n settle at once
        if (acc == -1 && k + 1 < j) {
          acc = ((j - k - 1) % 2 == 0) ? -1 : 1;
          break;
        }
      }
      return Value::Int(acc);
    }
    if (j == 0) return zero();
    if (i == INT64_MIN && j == -1) return overflow();
    if (op == "//") return Value::Int(FloorDiv(i, j));
    if (op == "%") return Value::Int(i - FloorDiv(i, j) * j);
  }
  return TypeError(at, op, a, b);
}

absl::StatusOr<bool> Contains(const Value& c, const Value& item,
                              const Expr& at) {
  switch (c.kind()) {
    case Value::Kind::kString:
      if (!item.IsString()) {
        return ErrorAt(at.line, at.col,
                       absl::StrCat("'in <string>' requires string as left "
                                    "operand, not ",
                                    item.TypeName()));
      }
      return c.str().find(item.str()) != std::string::npos;
    case Value::Kind::kList:
      for (const Value& x : c.items()) {
        if (x.Equals(item)) return true;
      }
      return false;
    case Value::Kind::kDict:
      return item.IsString() && c.dict().Find(item.str()) != nullptr;
    case Value::Kind::kUndefined:
      return false;
    default:
      return ErrorAt(at.line, at.col,
                     absl::StrCat("argument of type '", c.TypeName(),
                                  "' is not iterable"));
  }
}

absl::StatusOr<bool> Compare(absl::string_view op, const Value& a,
                             const Value& b, const Expr& at) {
  if (op == "==") return a.Equals(b);
  if (op == "!=") return !a.Equals(b);
  if (op == "in") return Contains(b, a, at);
  if (op == "not in") {
    LORAD_ASSIGN_OR_RETURN(bool in, Contains(b, a, at));
    return !in;
  }
  int cmp = 0;
  if (a.IsNumber() && b.IsNumber()) {
    const bool floats =
        a.kind() == Value::Kind::kFloat || b.kind() == Value::Kind::kFloat;
    if (floats) {
      if (std::isnan(a.float_value()) || std::isnan(b.float_value())) {
        return false;
      }
      cmp = a.float_value() < b.float_value()   ? -1
            : a.float_value() > b.float_value() ? 1
                                                : 0;
    } else {
      cmp = a.int_value() < b.int_value() ? -1 : a.int_value() > b.int_value();
    }
  } else if (a.IsString() && b.IsString()) {
    cmp = a.str().compare(b.str());
    cmp = cmp < 0 ? -1 : cmp > 0;
  } else {
    if (a.IsUndefined()) return UndefinedError(a, at);
    if (b.IsUndefined()) return UndefinedError(b, at);
    return ErrorAt(at.line, at.col,
                   absl::StrCat("'", op, "' not supported between '",
                                a.TypeName(), "' and '", b.TypeName(), "'"));
  }
  if (op == "<") return cmp < 0;
  if (op == ">") return cmp > 0;
  if (op == "<=") return cmp <= 0;
  return cmp >= 0;
}

absl::StatusOr<std::vector<Value>> Iterate(Runtime& rt, const Value& v,
                                           const Expr& at) {
  size_t n = 0;
  if (v.IsString()) n = v.str().size();
  if (v.IsList()) n = v.items().size();
  if (v.IsDict()) n = v.dict().items.size();
  LORAD_RETURN_IF_ERROR(rt.Charge(n * sizeof(Value), at.line, at.col));
  LORAD_RETURN_IF_ERROR(rt.Work(n, at.line, at.col));
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return std::vector<Value>();
    case Value::Kind::kList:
      return v.items();
    case Value::Kind::kDict: {
      if (v.IsNamespace()) break;
      std::vector<Value> keys;
      for (const auto& kv : v.dict().items)
        keys.push_back(Value::String(kv.first));
      return keys;
    }
    case Value::Kind::kString: {
      std::vector<Value> chars;
      std::vector<uint32_t> cps = CodePoints(v.str());
      for (size_t i = 0; i < cps.size(); ++i) {
        chars.push_back(Value::String(FromCodePoints(&cps[i], &cps[i] + 1)));
      }
      return chars;
    }
    default:
      break;
  }
  return ErrorAt(at.line, at.col,
                 absl::StrCat("'", v.TypeName(), "' object is not iterable"));
}

absl::StatusOr<Value> GetItem(const Value& obj, const Value& key,
                              const Expr& at) {
  if (obj.IsUndefined()) return UndefinedError(obj, at);
  if (obj.IsDict() && !obj.IsNamespace()) {
    if (key.IsString()) {
      if (const Value* v = obj.dict().Find(key.str())) return *v;
    }
    if (key.IsString()) return GetAttr(obj, key.str(), at);
    return Value::Undefined(KeyName(key));
  }
  if ((obj.IsList() || obj.IsString()) &&
      (key.kind() == Value::Kind::kInt || key.kind() == Value::Kind::kBool)) {
    int64_t i = key.int_value();
    if (obj.IsList()) {
      const int64_t n = static_cast<int64_t>(obj.items().size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::Undefined(absl::StrCat(i));
      return obj.items()[static_cast<size_t>(i)];
    }
    std::vector<uint32_t> cps = CodePoints(obj.str());
    const int64_t n = static_cast<int64_t>(cps.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value::Undefined(absl::StrCat(i));
    return Value::String(FromCodePoints(&cps[i], &cps[i] + 1));
  }
  if (key.IsString()) return GetAttr(obj, key.str(), at);
  return Value::Undefined(KeyName(key));
}

absl::StatusOr<Value> GetSlice(Runtime& rt, const Value& obj,
                               const Value& start, const Value& stop,
                               const Value& step, const Expr& at) {
  if (obj.IsUndefined()) return UndefinedError(obj, at);
  if (!obj.IsList() && !obj.IsString()) {
    return ErrorAt(
        at.line, at.col,
        absl::StrCat("'", obj.TypeName(), "' object is not subscriptable"));
  }
  for (const Value* v : {&start, &stop, &step}) {
    if (!v->IsNone() && v->kind() != Value::Kind::kInt &&
        v->kind() != Value::Kind::kBool) {
      return ErrorAt(at.line, at.col, "slice indices must be integers or None");
    }
  }
  std::vector<uint32_t> cps;
  if (obj.IsString()) cps = CodePoints(obj.str());
  const int64_t n = obj.IsString() ? static_cast<int64_t>(cps.size())
                                   : static_cast<int64_t>(obj.items().size());
  const int64_t st = step.IsNone() ? 1 : step.int_value();
  if (st == 0) return ErrorAt(at.line, at.col, "slice step cannot be zero");
  auto clamp = [&](const Value& v, int64_t dflt, int64_t lo, int64_t hi) {
    if (v.IsNone()) return dflt;
    int64_t i = v.int_value();
    if (i < 0) i = i < -n ? lo : i + n;
    return std::min(std::max(i, lo), hi);
  };
  int64_t b, e;
  if (st > 0) {
    b = clamp(start, 0, 0, n);
    e = clamp(stop, n, 0, n);
  } else {
    b = clamp(start, n - 1, -1, n - 1);
    e = clamp(stop, -1, -1, n - 1);
  }
  std::vector<int64_t> idx;
  for (__int128 i = b; st > 0 ? i < e : i > e; i += st) {
    idx.push_back(static_cast<int64_t>(i));
  }
  LORAD_RETURN_IF_ERROR(rt.Charge(
      idx.size() * (obj.IsString() ? 4 : sizeof(Value)), at.line, at.col));
  if (obj.IsString()) {
    std::string out;
    for (int64_t i : idx) AppendUtf8(cps[static_cast<size_t>(i)], &out);
    return Value::String(std::move(out));
  }
  std::vector<Value> out;
  for (int64_t i : idx) out.push_back(obj.items()[static_cast<size_t>(i)]);
  return Value::List(std::move(out), obj.IsTuple());
}

}  // namespace lorad::model::jinja
