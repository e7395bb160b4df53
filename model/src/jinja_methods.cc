// Attribute lookup, the methods of strings and dicts, and the global
// functions (range, namespace, dict, raise_exception, strftime_now).
#include <algorithm>
#include <ctime>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "jinja_internal.h"
#include "lorad/common/status_macros.h"

namespace lorad::model::jinja {
namespace {

constexpr absl::string_view kStringMethods[] = {
    "strip",      "lstrip",     "rstrip",   "upper",   "lower",      "title",
    "capitalize", "startswith", "endswith", "split",   "rsplit",     "replace",
    "find",       "rfind",      "count",    "join",    "splitlines", "isdigit",
    "isalpha",    "isspace",    "isalnum",  "islower", "isupper",    "format"};
constexpr absl::string_view kDictMethods[] = {"get", "items", "keys", "values"};

template <size_t N>
bool In(const absl::string_view (&names)[N], absl::string_view n) {
  return std::find(std::begin(names), std::end(names), n) != std::end(names);
}

absl::Status ArgError(const Expr& at, absl::string_view fn,
                      absl::string_view msg) {
  return ErrorAt(at.line, at.col, absl::StrCat(fn, "(): ", msg));
}

// An optional string argument (None = absent).
absl::StatusOr<const Value*> OptString(const CallArgs& a, size_t i,
                                       absl::string_view name,
                                       absl::string_view fn, const Expr& at) {
  const Value* v = a.Get(i, name);
  if (!v || v->IsNone()) return nullptr;
  if (!v->IsString()) {
    return ArgError(
        at, fn,
        absl::StrCat("argument must be str or None, not ", v->TypeName()));
  }
  return v;
}

std::string Strip(const std::string& s, const Value* chars, bool left,
                  bool right) {
  std::vector<uint32_t> cps = CodePoints(s);
  std::vector<uint32_t> set;
  if (chars) set = CodePoints(chars->str());
  auto strip = [&](uint32_t c) {
    return chars ? std::find(set.begin(), set.end(), c) != set.end()
                 : IsPySpace(c);
  };
  size_t b = 0, e = cps.size();
  if (left) {
    while (b < e && strip(cps[b])) ++b;
  }
  if (right) {
    while (e > b && strip(cps[e - 1])) --e;
  }
  return FromCodePoints(cps.data() + b, cps.data() + e);
}

// Python's str.split / rsplit.
std::vector<Value> Split(const std::string& s, const Value* sep,
                         int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  if (!sep) {
    std::vector<uint32_t> cps = CodePoints(s);
    std::vector<std::pair<size_t, size_t>> words;
    for (size_t i = 0; i < cps.size();) {
      while (i < cps.size() && IsPySpace(cps[i])) ++i;
      if (i == cps.size()) break;
      size_t j = i;
      while (j < cps.size() && !IsPySpace(cps[j])) ++j;
      words.emplace_back(i, j);
      i = j;
    }
    // With maxsplit, the rest (from the split point on) stays whole, its
    // outer whitespace stripped on the split side only.
    if (maxsplit >= 0 && static_cast<int64_t>(words.size()) > maxsplit + 1) {
      if (!from_right) {
        for (int64_t k = 0; k < maxsplit; ++k) {
          parts.push_back(
              FromCodePoints(&cps[words[k].first], &cps[0] + words[k].second));
        }
        size_t b = words[static_cast<size_t>(maxsplit)].first;
        size_t e = words.back().second;
        parts.push_back(FromCodePoints(&cps[0] + b, &cps[0] + e));
      } else {
        const size_t keep = words.size() - static_cast<size_t>(maxsplit);
        parts.push_back(FromCodePoints(&cps[words[0].first],
                                       &cps[0] + words[keep - 1].second));
        for (size_t k = keep; k < words.size(); ++k) {
          parts.push_back(
              FromCodePoints(&cps[words[k].first], &cps[0] + words[k].second));
        }
      }
    } else {
      for (auto [b, e] : words) {
        parts.push_back(FromCodePoints(&cps[0] + b, &cps[0] + e));
      }
    }
  } else {
    const std::string& d = sep->str();
    if (!from_right) {
      size_t pos = 0;
      int64_t n = 0;
      for (;;) {
        size_t f =
            (maxsplit < 0 || n < maxsplit) ? s.find(d, pos) : std::string::npos;
        if (f == std::string::npos) {
          parts.push_back(s.substr(pos));
          break;
        }
        parts.push_back(s.substr(pos, f - pos));
        pos = f + d.size();
        ++n;
      }
    } else {
      size_t end = s.size();
      int64_t n = 0;
      for (;;) {
        size_t f = std::string::npos;
        if ((maxsplit < 0 || n < maxsplit) && end >= d.size()) {
          f = s.rfind(d, end - d.size());
        }
        if (f == std::string::npos) {
          parts.push_back(s.substr(0, end));
          break;
        }
        parts.push_back(s.substr(f + d.size(), end - f - d.size()));
        end = f;
        ++n;
      }
      std::reverse(parts.begin(), parts.end());
    }
  }
  std::vector<Value> out;
  for (std::string& p : parts) out.push_back(Value::String(std::move(p)));
  return out;
}

int64_t CodePointIndex(const std::string& s, size_t byte) {
  return static_cast<int64_t>(
      CodePoints(absl::string_view(s).substr(0, byte)).size());
}

bool AllChars(const std::string& s, int (*pred)(int)) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!pred(c)) return false;
  }
  return true;
}

absl::StatusOr<Value> StringMethod(Runtime& rt, const std::string& s,
                                   const std::string& m, const CallArgs& a,
                                   const Expr& at) {
  if (m == "strip" || m == "lstrip" || m == "rstrip") {
    LORAD_ASSIGN_OR_RETURN(const Value* chars, OptString(a, 0, "chars", m, at));
    return Value::String(Strip(s, chars, m != "rstrip", m != "lstrip"));
  }
  if (m == "upper" || m == "lower") {
    std::string out = s;
    for (char& c : out) {
      if (m == "upper" && c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
      if (m == "lower" && c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    }
    return Value::String(std::move(out));
  }
  if (m == "title" || m == "capitalize") {
    std::string out = s;
    bool prev_letter = false;
    for (size_t i = 0; i < out.size(); ++i) {
      char& c = out[i];
      const bool letter = std::isalpha(static_cast<unsigned char>(c));
      const bool upper = m == "title" ? !prev_letter : i == 0;
      if (upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
      if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
      prev_letter = letter;
    }
    return Value::String(std::move(out));
  }
  if (m == "startswith" || m == "endswith") {
    const Value* p = a.Get(0, "prefix");
    if (!p) return ArgError(at, m, "takes a prefix");
    std::vector<Value> options = p->IsTuple() ? p->items() : std::vector{*p};
    for (const Value& o : options) {
      if (!o.IsString()) {
        return ArgError(at, m,
                        absl::StrCat("argument must be str or a tuple "
                                     "of str, not ",
                                     o.TypeName()));
      }
      const std::string& t = o.str();
      if (t.size() <= s.size() &&
          (m == "startswith"
               ? s.compare(0, t.size(), t) == 0
               : s.compare(s.size() - t.size(), t.size(), t) == 0)) {
        return Value::Bool(true);
      }
    }
    return Value::Bool(false);
  }
  if (m == "split" || m == "rsplit") {
    LORAD_ASSIGN_OR_RETURN(const Value* sep, OptString(a, 0, "sep", m, at));
    if (sep && sep->str().empty()) return ArgError(at, m, "empty separator");
    const Value* ms = a.Get(1, "maxsplit");
    int64_t maxsplit = -1;
    if (ms) {
      if (ms->kind() != Value::Kind::kInt) {
        return ArgError(at, m, "maxsplit must be an int");
      }
      maxsplit = ms->int_value();
    }
    std::vector<Value> parts = Split(s, sep, maxsplit, m == "rsplit");
    LORAD_RETURN_IF_ERROR(
        rt.Charge(parts.size() * sizeof(Value) + s.size(), at.line, at.col));
    return Value::List(std::move(parts));
  }
  if (m == "replace") {
    const Value* old = a.Get(0, "old");
    const Value* with = a.Get(1, "new");
    const Value* count = a.Get(2, "count");
    if (!old || !with || !old->IsString() || !with->IsString()) {
      return ArgError(at, m, "takes two strings");
    }
    int64_t left =
        count && count->kind() == Value::Kind::kInt ? count->int_value() : -1;
    std::string out;
    if (old->str().empty()) {
      std::vector<uint32_t> cps = CodePoints(s);
      for (size_t i = 0; i <= cps.size(); ++i) {
        if (left != 0) {
          out += with->str();
          if (left > 0) --left;
        }
        if (i < cps.size()) AppendUtf8(cps[i], &out);
        LORAD_RETURN_IF_ERROR(
            rt.Charge(with->str().size() + 4, at.line, at.col));
      }
      return Value::String(std::move(out));
    }
    size_t pos = 0;
    for (;;) {
      size_t f = left != 0 ? s.find(old->str(), pos) : std::string::npos;
      if (f == std::string::npos) break;
      out.append(s, pos, f - pos);
      out += with->str();
      LORAD_RETURN_IF_ERROR(
          rt.Charge(f - pos + with->str().size(), at.line, at.col));
      pos = f + old->str().size();
      if (left > 0) --left;
    }
    out.append(s, pos, std::string::npos);
    return Value::String(std::move(out));
  }
  if (m == "find" || m == "rfind" || m == "count") {
    const Value* sub = a.Get(0, "sub");
    if (!sub || !sub->IsString()) return ArgError(at, m, "takes a string");
    const std::string& t = sub->str();
    if (m == "count") {
      if (t.empty()) return Value::Int(CodePointIndex(s, s.size()) + 1);
      int64_t n = 0;
      for (size_t f = s.find(t); f != std::string::npos;
           f = s.find(t, f + t.size())) {
        ++n;
      }
      return Value::Int(n);
    }
    size_t f = m == "find" ? s.find(t) : s.rfind(t);
    return Value::Int(f == std::string::npos ? -1 : CodePointIndex(s, f));
  }
  if (m == "join") {
    const Value* items = a.Get(0, "iterable");
    if (!items) return ArgError(at, m, "takes an iterable");
    LORAD_ASSIGN_OR_RETURN(std::vector<Value> parts, Iterate(rt, *items, at));
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (!parts[i].IsString()) {
        return ArgError(
            at, m,
            absl::StrCat("sequence item ", i, ": expected str instance, ",
                         parts[i].TypeName(), " found"));
      }
      if (i) out += s;
      out += parts[i].str();
      LORAD_RETURN_IF_ERROR(
          rt.Charge(s.size() + parts[i].str().size(), at.line, at.col));
    }
    return Value::String(std::move(out));
  }
  if (m == "splitlines") {
    std::vector<Value> lines;
    std::string cur;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\n' || s[i] == '\r') {
        if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
        lines.push_back(Value::String(std::move(cur)));
        cur.clear();
      } else {
        cur.push_back(s[i]);
      }
    }
    if (!cur.empty()) lines.push_back(Value::String(std::move(cur)));
    LORAD_RETURN_IF_ERROR(
        rt.Charge(lines.size() * sizeof(Value) + s.size(), at.line, at.col));
    return Value::List(std::move(lines));
  }
  if (m == "isdigit") return Value::Bool(AllChars(s, std::isdigit));
  if (m == "isalpha") return Value::Bool(AllChars(s, std::isalpha));
  if (m == "isalnum") return Value::Bool(AllChars(s, std::isalnum));
  if (m == "isspace") return Value::Bool(AllChars(s, std::isspace));
  if (m == "islower" || m == "isupper") {
    bool cased = false;
    for (unsigned char c : s) {
      if (std::isalpha(c)) {
        cased = true;
        if ((m == "islower") != (std::islower(c) != 0))
          return Value::Bool(false);
      }
    }
    return Value::Bool(cased);
  }
  return ErrorAt(at.line, at.col,
                 absl::StrCat("str.", m, "() is not supported"));
}

absl::StatusOr<Value> DictMethod(Runtime& rt, const Value& d,
                                 const std::string& m, const CallArgs& a,
                                 const Expr& at) {
  if (m == "get") {
    const Value* key = a.Get(0, "key");
    if (!key) return ArgError(at, m, "takes a key");
    if (key->IsString()) {
      if (const Value* v = d.dict().Find(key->str())) return *v;
    }
    const Value* dflt = a.Get(1, "default");
    return dflt ? *dflt : Value::None();
  }
  LORAD_RETURN_IF_ERROR(
      rt.Charge(d.dict().items.size() * sizeof(Value) * 2, at.line, at.col));
  std::vector<Value> out;
  for (const auto& [k, v] : d.dict().items) {
    if (m == "keys") {
      out.push_back(Value::String(k));
    } else if (m == "values") {
      out.push_back(v);
    } else {
      out.push_back(Value::List({Value::String(k), v}, /*tuple=*/true));
    }
  }
  return Value::List(std::move(out));
}

class BoundMethod final : public Callable {
 public:
  BoundMethod(Value self, std::string name)
      : self_(std::move(self)), name_(std::move(name)) {}
  std::string Name() const override {
    return absl::StrCat(self_.TypeName(), ".", name_);
  }
  absl::StatusOr<Value> Call(Runtime& rt, const CallArgs& args,
                             const Expr& at) const override {
    if (self_.IsString()) return StringMethod(rt, self_.str(), name_, args, at);
    return DictMethod(rt, self_, name_, args, at);
  }

 private:
  Value self_;
  std::string name_;
};

class Builtin final : public Callable {
 public:
  using Fn = absl::StatusOr<Value> (*)(Runtime&, const CallArgs&, const Expr&);
  Builtin(std::string name, Fn fn) : name_(std::move(name)), fn_(fn) {}
  std::string Name() const override { return name_; }
  absl::StatusOr<Value> Call(Runtime& rt, const CallArgs& args,
                             const Expr& at) const override {
    return fn_(rt, args, at);
  }

 private:
  std::string name_;
  Fn fn_;
};

absl::StatusOr<Value> Range(Runtime& rt, const CallArgs& a, const Expr& at) {
  int64_t v[3] = {0, 0, 1};
  const size_t n = a.positional.size();
  if (n < 1 || n > 3 || !a.named.empty()) {
    return ArgError(at, "range", "takes 1 to 3 integers");
  }
  for (size_t i = 0; i < n; ++i) {
    const Value& x = a.positional[i];
    if (x.kind() != Value::Kind::kInt && x.kind() != Value::Kind::kBool) {
      return ArgError(at, "range", "arguments must be integers");
    }
  }
  if (n == 1) {
    v[1] = a.positional[0].int_value();
  } else {
    v[0] = a.positional[0].int_value();
    v[1] = a.positional[1].int_value();
    if (n == 3) v[2] = a.positional[2].int_value();
  }
  if (v[2] == 0) return ArgError(at, "range", "step must not be zero");
  std::vector<Value> out;
  for (__int128 i = v[0]; v[2] > 0 ? i < v[1] : i > v[1]; i += v[2]) {
    if (static_cast<int64_t>(out.size()) >= rt.limits().max_range) {
      return ArgError(
          at, "range",
          absl::StrCat("more than ", rt.limits().max_range, " elements"));
    }
    out.push_back(Value::Int(static_cast<int64_t>(i)));
  }
  LORAD_RETURN_IF_ERROR(rt.Charge(out.size() * sizeof(Value), at.line, at.col));
  return Value::List(std::move(out));
}

absl::StatusOr<std::vector<std::pair<std::string, Value>>> DictArgs(
    const CallArgs& a, const Expr& at, absl::string_view fn) {
  std::vector<std::pair<std::string, Value>> items;
  if (a.positional.size() > 1 ||
      (a.positional.size() == 1 && !a.positional[0].IsDict())) {
    return ArgError(at, fn, "takes at most one dict and keyword arguments");
  }
  if (!a.positional.empty()) items = a.positional[0].dict().items;
  for (const auto& [k, v] : a.named) {
    bool replaced = false;
    for (auto& kv : items) {
      if (kv.first == k) {
        kv.second = v;
        replaced = true;
      }
    }
    if (!replaced) items.emplace_back(k, v);
  }
  return items;
}

absl::StatusOr<Value> MakeNamespace(Runtime&, const CallArgs& a,
                                    const Expr& at) {
  LORAD_ASSIGN_OR_RETURN(auto items, DictArgs(a, at, "namespace"));
  for (const auto& [k, v] : items) {
    if (!k.empty() && k[0] == '_') {
      return ArgError(at, "namespace", "attributes may not start with '_'");
    }
    if (v.IsNamespace() || v.has_namespace()) {
      return ArgError(at, "namespace", "a namespace cannot hold a namespace");
    }
  }
  return Value::Namespace(std::move(items));
}

absl::StatusOr<Value> MakeDict(Runtime&, const CallArgs& a, const Expr& at) {
  LORAD_ASSIGN_OR_RETURN(auto items, DictArgs(a, at, "dict"));
  return Value::Dict(std::move(items));
}

absl::StatusOr<Value> RaiseException(Runtime&, const CallArgs& a,
                                     const Expr& at) {
  const Value* msg = a.Get(0, "message");
  return ErrorAt(at.line, at.col,
                 absl::StrCat("the template raised an error: ",
                              msg ? msg->ToString() : ""));
}

absl::StatusOr<Value> StrftimeNow(Runtime&, const CallArgs& a, const Expr& at) {
  const Value* fmt = a.Get(0, "format");
  if (!fmt || !fmt->IsString()) {
    return ArgError(at, "strftime_now", "takes a format string");
  }
  if (fmt->str().size() > 256) {
    return ArgError(at, "strftime_now", "format longer than 256 bytes");
  }
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  std::string buf(4096, '\0');
  size_t n = std::strftime(buf.data(), buf.size(), fmt->str().c_str(), &tm);
  if (n == 0 && !fmt->str().empty()) {
    return ArgError(at, "strftime_now", "the formatted date is too long");
  }
  buf.resize(n);
  return Value::String(std::move(buf));
}

}  // namespace

absl::StatusOr<Value> GetAttr(const Value& obj, const std::string& name,
                              const Expr& at) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined:
      return UndefinedError(obj, at);
    case Value::Kind::kString:
      if (In(kStringMethods, name)) {
        return Value::Function(std::make_shared<BoundMethod>(obj, name));
      }
      break;
    case Value::Kind::kDict:
      if (!obj.IsNamespace() && In(kDictMethods, name)) {
        return Value::Function(std::make_shared<BoundMethod>(obj, name));
      }
      if (const Value* v = obj.dict().Find(name)) return *v;
      break;
    default:
      break;
  }
  return Value::Undefined(name);
}

void AddGlobals(Scope* scope) {
  auto add = [&](const char* name, Builtin::Fn fn) {
    scope->vars[name] = Value::Function(std::make_shared<Builtin>(name, fn));
  };
  add("range", Range);
  add("namespace", MakeNamespace);
  add("dict", MakeDict);
  add("raise_exception", RaiseException);
  add("strftime_now", StrftimeNow);
}

}  // namespace lorad::model::jinja
