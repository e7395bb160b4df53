// The filters (x | f) chat templates use, with jinja2's semantics (and
// transformers' tojson).
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "jinja_internal.h"
#include "lorad/common/status_macros.h"

namespace lorad::model::jinja {
namespace {

constexpr absl::string_view kFilters[] = {
    "abs",      "attr",    "capitalize", "count", "d",      "default",
    "dictsort", "e",       "escape",     "first", "float",  "indent",
    "int",      "items",   "join",       "last",  "length", "list",
    "lower",    "map",     "max",        "min",   "reject", "rejectattr",
    "replace",  "reverse", "round",      "safe",  "select", "selectattr",
    "sort",     "string",  "sum",        "title", "tojson", "trim",
    "unique",   "upper"};

template <size_t N>
bool In(const absl::string_view (&names)[N], absl::string_view n) {
  return std::find(std::begin(names), std::end(names), n) != std::end(names);
}

absl::Status FilterError(const Expr& at, absl::string_view f,
                         absl::string_view msg) {
  return ErrorAt(at.line, at.col, absl::StrCat("filter '", f, "': ", msg));
}

CallArgs Shift(const CallArgs& a, size_t n) {
  CallArgs out;
  out.named = a.named;
  for (size_t i = n; i < a.positional.size(); ++i) {
    out.positional.push_back(a.positional[i]);
  }
  return out;
}

// jinja2's attribute getter for map/selectattr/sort: "a.b.0".
absl::StatusOr<Value> AttrPath(const Value& v, const std::string& path,
                               const Expr& at) {
  Value cur = v;
  size_t pos = 0;
  for (;;) {
    size_t dot = path.find('.', pos);
    std::string part = path.substr(pos, dot - pos);
    Value key = Value::String(part);
    if (!part.empty() && std::all_of(part.begin(), part.end(), ::isdigit) &&
        part.size() < 18) {
      key = Value::Int(std::stoll(part));
    }
    LORAD_ASSIGN_OR_RETURN(cur, GetItem(cur, key, at));
    if (dot == std::string::npos) return cur;
    pos = dot + 1;
  }
}

// Sorting key comparison: case-insensitive strings unless asked.
absl::StatusOr<bool> Less(const Value& a, const Value& b, bool case_sensitive,
                          const Expr& at) {
  if (!case_sensitive && a.IsString() && b.IsString()) {
    std::string x = a.str(), y = b.str();
    for (char& c : x) c = static_cast<char>(std::tolower(c));
    for (char& c : y) c = static_cast<char>(std::tolower(c));
    return x < y;
  }
  return Compare("<", a, b, at);
}

absl::StatusOr<Value> SortedBy(const std::vector<Value>& items,
                               const std::vector<Value>& keys, bool reverse,
                               bool case_sensitive, const Expr& at) {
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  absl::Status err;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    if (!err.ok()) return false;
    auto r = reverse ? Less(keys[y], keys[x], case_sensitive, at)
                     : Less(keys[x], keys[y], case_sensitive, at);
    if (!r.ok()) {
      err = r.status();
      return false;
    }
    return *r;
  });
  LORAD_RETURN_IF_ERROR(err);
  std::vector<Value> out;
  for (size_t i : order) out.push_back(items[i]);
  return Value::List(std::move(out));
}

absl::StatusOr<Value> ToJson(const Value& v, const CallArgs& a,
                             const Expr& at) {
  JsonDumpOptions o;
  if (const Value* x = a.Get(0, "ensure_ascii")) o.ensure_ascii = x->Truthy();
  if (const Value* x = a.Get(1, "indent")) {
    if (x->IsString()) {
      o.indent_is_text = true;
      o.indent_text = x->str();
    } else if (x->kind() == Value::Kind::kInt) {
      o.indent = static_cast<int>(std::clamp<int64_t>(x->int_value(), 0, 64));
    } else if (!x->IsNone()) {
      return FilterError(at, "tojson", "indent must be an int or a string");
    }
  }
  if (const Value* x = a.Get(2, "separators"); x && !x->IsNone()) {
    if (!x->IsList() || x->items().size() != 2 || !x->items()[0].IsString() ||
        !x->items()[1].IsString()) {
      return FilterError(at, "tojson", "separators must be two strings");
    }
    o.custom_separators = true;
    o.item_separator = x->items()[0].str();
    o.key_separator = x->items()[1].str();
  }
  if (const Value* x = a.Get(3, "sort_keys")) o.sort_keys = x->Truthy();
  auto s = DumpJson(v, o);
  if (!s.ok()) return FilterError(at, "tojson", s.status().message());
  return Value::String(*std::move(s));
}

absl::StatusOr<Value> ToInt(const Value& v, const CallArgs& a) {
  const Value* dflt = a.Get(0, "default");
  Value fallback = dflt ? *dflt : Value::Int(0);
  switch (v.kind()) {
    case Value::Kind::kBool:
    case Value::Kind::kInt:
      return Value::Int(v.int_value());
    case Value::Kind::kFloat:
      if (!std::isfinite(v.float_value()) ||
          std::fabs(v.float_value()) >= 9.2e18) {
        return fallback;
      }
      return Value::Int(static_cast<int64_t>(v.float_value()));
    case Value::Kind::kString: {
      std::string s = v.str();
      s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
      const char* b = s.c_str();
      char* e = nullptr;
      errno = 0;
      long long i = std::strtoll(b, &e, 10);
      while (*e == ' ' || *e == '\t' || *e == '\n') ++e;
      if (e != b && *e == '\0' && errno == 0) return Value::Int(i);
      double d = std::strtod(b, &e);
      while (*e == ' ' || *e == '\t' || *e == '\n') ++e;
      if (e != b && *e == '\0' && std::isfinite(d) && std::fabs(d) < 9.2e18) {
        return Value::Int(static_cast<int64_t>(d));
      }
      return fallback;
    }
    default:
      return fallback;
  }
}

absl::StatusOr<Value> ToFloat(const Value& v, const CallArgs& a) {
  const Value* dflt = a.Get(0, "default");
  Value fallback = dflt ? *dflt : Value::Float(0);
  if (v.IsNumber()) return Value::Float(v.float_value());
  if (v.IsString()) {
    const char* b = v.str().c_str();
    char* e = nullptr;
    double d = std::strtod(b, &e);
    while (*e == ' ' || *e == '\t' || *e == '\n') ++e;
    if (e != b && *e == '\0') return Value::Float(d);
  }
  return fallback;
}

// jinja2's title filter (not str.title): a word starts after whitespace or
// one of - ( { [ <, its first letter upper, the rest lower (ASCII).
std::string TitleWords(const std::string& s) {
  std::string out = s;
  bool start = true;
  for (char& c : out) {
    const bool sep = std::isspace(static_cast<unsigned char>(c)) || c == '-' ||
                     c == '(' || c == '{' || c == '[' || c == '<';
    if (sep) {
      start = true;
      continue;
    }
    if (start && c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
    if (!start && c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    start = false;
  }
  return out;
}

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

absl::StatusOr<Value> Indent(const Value& v, const CallArgs& a) {
  std::string ind = "    ";
  if (const Value* w = a.Get(0, "width")) {
    if (w->IsString()) {
      ind = w->str();
    } else if (w->kind() == Value::Kind::kInt) {
      ind.assign(
          static_cast<size_t>(std::clamp<int64_t>(w->int_value(), 0, 256)),
          ' ');
    }
  }
  const Value* first = a.Get(1, "first");
  const Value* blank = a.Get(2, "blank");
  std::string s = v.ToString() + "\n";
  std::vector<std::string> lines;
  std::string cur;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' || s[i] == '\r') {
      if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      lines.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(s[i]);
    }
  }
  if (!cur.empty()) lines.push_back(cur);
  std::string rv;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) {
      rv += "\n";
      if (!lines[i].empty() || (blank && blank->Truthy())) rv += ind;
    }
    rv += lines[i];
  }
  if (first && first->Truthy()) rv = ind + rv;
  return Value::String(std::move(rv));
}

absl::StatusOr<Value> Round(const Value& v, const CallArgs& a, const Expr& at) {
  if (!v.IsNumber()) return FilterError(at, "round", "needs a number");
  const Value* p = a.Get(0, "precision");
  const Value* m = a.Get(1, "method");
  const int64_t prec = p && p->kind() == Value::Kind::kInt ? p->int_value() : 0;
  const std::string method = m && m->IsString() ? m->str() : "common";
  if (method == "common" && v.kind() != Value::Kind::kFloat) {
    return Value::Int(v.int_value());
  }
  if (method == "common" && prec >= 0 && prec <= 300 &&
      std::isfinite(v.float_value())) {
    // Python rounds the exact binary value half to even, as printf does
    // (round(2.675, 2) is 2.67).
    char buf[400];
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(prec),
                  v.float_value());
    return Value::Float(std::strtod(buf, nullptr));
  }
  const double scale = std::pow(10.0, static_cast<double>(prec));
  const double x = v.float_value() * scale;
  double r;
  if (method == "ceil") {
    r = std::ceil(x);
  } else if (method == "floor") {
    r = std::floor(x);
  } else if (method == "common") {
    r = std::nearbyint(x);  // round half to even, as Python's round
  } else {
    return FilterError(at, "round", "method must be common, ceil or floor");
  }
  return Value::Float(r / scale);
}

}  // namespace

bool HasFilter(absl::string_view name) { return In(kFilters, name); }

absl::StatusOr<Value> ApplyFilter(Runtime& rt, absl::string_view f,
                                  const Value& v, const CallArgs& a,
                                  const Expr& at) {
  using K = Value::Kind;
  if (f == "default" || f == "d") {
    const Value* dflt = a.Get(0, "default_value");
    const Value* boolean = a.Get(1, "boolean");
    const bool use =
        (boolean && boolean->Truthy()) ? !v.Truthy() : v.IsUndefined();
    if (use) return dflt ? *dflt : Value::String("");
    return v;
  }
  if (f == "string" || f == "escape" || f == "e" || f == "trim" ||
      f == "upper" || f == "lower" || f == "title" || f == "capitalize" ||
      f == "replace" || f == "indent") {
    LORAD_RETURN_IF_ERROR(rt.ChargeText(v, 2, at.line, at.col));
  }
  if (f == "safe") return v;
  if (f == "title") return Value::String(TitleWords(v.ToString()));
  if (f == "string") return Value::String(v.ToString());
  if (f == "escape" || f == "e") return Value::String(Escape(v.ToString()));
  if (f == "tojson") {
    const Value* indent = a.Get(1, "indent");
    size_t width = 0;
    if (indent && indent->IsString()) width = indent->str().size();
    if (indent && indent->kind() == K::kInt) width = 64;
    LORAD_RETURN_IF_ERROR(rt.ChargeText(
        v, 2 + width * static_cast<size_t>(v.depth() + 1), at.line, at.col));
    return ToJson(v, a, at);
  }
  if (f == "int") return ToInt(v, a);
  if (f == "float") return ToFloat(v, a);
  if (f == "round") return Round(v, a, at);
  if (f == "indent") return Indent(v, a);
  if (f == "attr") {
    const Value* name = a.Get(0, "name");
    if (!name || !name->IsString()) return FilterError(at, f, "needs a name");
    return GetAttr(v, name->str(), at);
  }
  if (f == "abs") {
    if (v.kind() == K::kFloat) return Value::Float(std::fabs(v.float_value()));
    if (v.kind() == K::kInt || v.kind() == K::kBool) {
      if (v.int_value() == INT64_MIN)
        return ErrorAt(at.line, at.col, "integer overflow");
      return Value::Int(std::llabs(v.int_value()));
    }
    return FilterError(at, f,
                       absl::StrCat("bad operand type '", v.TypeName(), "'"));
  }
  if (f == "length" || f == "count") {
    switch (v.kind()) {
      case K::kUndefined:
        return Value::Int(0);
      case K::kString:
        return Value::Int(static_cast<int64_t>(CodePoints(v.str()).size()));
      case K::kList:
        return Value::Int(static_cast<int64_t>(v.items().size()));
      case K::kDict:
        if (!v.IsNamespace()) {
          return Value::Int(static_cast<int64_t>(v.dict().items.size()));
        }
        break;
      default:
        break;
    }
    return FilterError(
        at, f,
        absl::StrCat("object of type '", v.TypeName(), "' has no len()"));
  }
  if (f == "trim" || f == "upper" || f == "lower" || f == "title" ||
      f == "capitalize" || f == "replace") {
    CallArgs margs = a;
    std::string method(f == "trim" ? "strip" : std::string(f));
    if (f == "replace" && !a.named.empty()) {
      return FilterError(at, f, "takes positional arguments");
    }
    if (f == "capitalize" || f == "title" || f == "upper" || f == "lower") {
      margs = CallArgs();
    }
    LORAD_ASSIGN_OR_RETURN(Value fn,
                           GetAttr(Value::String(v.ToString()), method, at));
    std::string s;
    if (f == "capitalize") {
      LORAD_ASSIGN_OR_RETURN(Value lower,
                             GetAttr(Value::String(v.ToString()), "lower", at));
      LORAD_ASSIGN_OR_RETURN(Value l, lower.callable().Call(rt, margs, at));
      std::string t = l.str();
      if (!t.empty() && t[0] >= 'a' && t[0] <= 'z') t[0] = char(t[0] - 32);
      return Value::String(std::move(t));
    }
    return fn.callable().Call(rt, margs, at);
  }
  if (f == "items") {
    if (v.IsUndefined()) return Value::List({});
    if (!v.IsDict() || v.IsNamespace()) {
      return FilterError(at, f, "can only process mappings");
    }
    LORAD_ASSIGN_OR_RETURN(Value fn, GetAttr(v, "items", at));
    return fn.callable().Call(rt, CallArgs(), at);
  }
  if (f == "dictsort") {
    if (!v.IsDict() || v.IsNamespace())
      return FilterError(at, f, "needs a dict");
    std::vector<Value> items, keys;
    for (const auto& [k, x] : v.dict().items) {
      items.push_back(Value::List({Value::String(k), x}, true));
      keys.push_back(Value::String(k));
    }
    const Value* cs = a.Get(0, "case_sensitive");
    const Value* rev = a.Get(2, "reverse");
    return SortedBy(items, keys, rev && rev->Truthy(), cs && cs->Truthy(), at);
  }
  // The rest work on the items of a sequence.
  LORAD_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(rt, v, at));
  LORAD_RETURN_IF_ERROR(
      rt.Charge(items.size() * sizeof(Value), at.line, at.col));
  if (f == "list") return Value::List(std::move(items));
  if (f == "first" || f == "last") {
    if (items.empty()) return Value::Undefined(std::string(f));
    return f == "first" ? items.front() : items.back();
  }
  if (f == "reverse") {
    std::reverse(items.begin(), items.end());
    if (v.IsString()) {
      std::string s;
      for (const Value& c : items) s += c.str();
      return Value::String(std::move(s));
    }
    return Value::List(std::move(items));
  }
  if (f == "join") {
    const Value* sep = a.Get(0, "d");
    const Value* attr = a.Get(1, "attribute");
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (i && sep) out += sep->ToString();
      Value x = items[i];
      if (attr) {
        LORAD_ASSIGN_OR_RETURN(x, AttrPath(x, attr->ToString(), at));
      }
      LORAD_RETURN_IF_ERROR(rt.ChargeText(x, 2, at.line, at.col));
      std::string piece = x.ToString();
      LORAD_RETURN_IF_ERROR(rt.Charge(
          piece.size() + (sep ? sep->ToString().size() : 0), at.line, at.col));
      out += piece;
    }
    return Value::String(std::move(out));
  }
  if (f == "map") {
    std::vector<Value> out;
    const Value* attr = a.Get(99, "attribute");
    for (const Value& x : items) {
      if (attr) {
        LORAD_ASSIGN_OR_RETURN(Value y, AttrPath(x, attr->ToString(), at));
        if (y.IsUndefined()) {
          if (const Value* d = a.Get(99, "default")) y = *d;
        }
        out.push_back(std::move(y));
      } else {
        if (a.positional.empty() || !a.positional[0].IsString() ||
            !HasFilter(a.positional[0].str())) {
          return FilterError(at, f, "needs attribute= or a filter name");
        }
        LORAD_ASSIGN_OR_RETURN(Value y, ApplyFilter(rt, a.positional[0].str(),
                                                    x, Shift(a, 1), at));
        out.push_back(std::move(y));
      }
    }
    return Value::List(std::move(out));
  }
  if (f == "select" || f == "reject" || f == "selectattr" ||
      f == "rejectattr") {
    const bool by_attr = f == "selectattr" || f == "rejectattr";
    const bool keep_if = f == "select" || f == "selectattr";
    size_t next = 0;
    std::string attr;
    if (by_attr) {
      if (a.positional.empty()) return FilterError(at, f, "needs an attribute");
      attr = a.positional[0].ToString();
      next = 1;
    }
    std::string test;
    if (a.positional.size() > next) {
      test = a.positional[next].ToString();
      if (!HasTest(test)) {
        return FilterError(at, f,
                           absl::StrCat("unsupported test '", test, "'"));
      }
    }
    CallArgs targs = Shift(a, next + 1);
    std::vector<Value> out;
    for (const Value& x : items) {
      Value y = x;
      if (by_attr) {
        LORAD_ASSIGN_OR_RETURN(y, AttrPath(x, attr, at));
      }
      bool pass;
      if (test.empty()) {
        pass = y.Truthy();
      } else {
        LORAD_ASSIGN_OR_RETURN(pass, ApplyTest(rt, test, y, targs, at));
      }
      if (pass == keep_if) out.push_back(x);
    }
    return Value::List(std::move(out));
  }
  if (f == "unique" || f == "sort" || f == "min" || f == "max") {
    const Value* cs = a.Get(f == "sort" ? 1 : 0, "case_sensitive");
    const bool case_sensitive = cs && cs->Truthy();
    const Value* attr = a.Get(f == "sort" ? 2 : 1, "attribute");
    std::vector<Value> keys;
    for (const Value& x : items) {
      Value k = x;
      if (attr && !attr->IsNone()) {
        LORAD_ASSIGN_OR_RETURN(k, AttrPath(x, attr->ToString(), at));
      }
      if (!case_sensitive && k.IsString()) {
        std::string s = k.str();
        for (char& c : s) c = static_cast<char>(std::tolower(c));
        k = Value::String(std::move(s));
      }
      keys.push_back(std::move(k));
    }
    if (f == "unique") {
      std::vector<Value> out, seen;
      for (size_t i = 0; i < items.size(); ++i) {
        bool dup = false;
        LORAD_RETURN_IF_ERROR(rt.Work(seen.size(), at.line, at.col));
        for (const Value& s : seen) dup |= s.Equals(keys[i]);
        if (dup) continue;
        seen.push_back(keys[i]);
        out.push_back(items[i]);
        LORAD_RETURN_IF_ERROR(rt.Step(at));
      }
      return Value::List(std::move(out));
    }
    const Value* rev = a.Get(0, "reverse");
    size_t log_n = 1;
    while ((size_t{1} << log_n) < items.size()) ++log_n;
    LORAD_RETURN_IF_ERROR(rt.Work(items.size() * log_n, at.line, at.col));
    LORAD_ASSIGN_OR_RETURN(
        Value sorted,
        SortedBy(items, keys, f == "sort" && rev && rev->Truthy(), true, at));
    if (f == "sort") return sorted;
    if (sorted.items().empty()) return Value::Undefined(std::string(f));
    return f == "min" ? sorted.items().front() : sorted.items().back();
  }
  if (f == "sum") {
    const Value* attr = a.Get(0, "attribute");
    const Value* start = a.Get(1, "start");
    Value total = start ? *start : Value::Int(0);
    for (const Value& x : items) {
      Value y = x;
      if (attr && !attr->IsNone()) {
        LORAD_ASSIGN_OR_RETURN(y, AttrPath(x, attr->ToString(), at));
      }
      LORAD_ASSIGN_OR_RETURN(total, BinaryOp(rt, "+", total, y, at));
    }
    return total;
  }
  return FilterError(at, f, "is not supported");
}

}  // namespace lorad::model::jinja
