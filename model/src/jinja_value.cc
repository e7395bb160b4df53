#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "jinja_internal.h"
#include "lorad/common/status_macros.h"
#include "utf8_append.h"

namespace lorad::model::jinja {

const Value* Value::DictData::Find(absl::string_view key) const {
  for (const auto& [k, v] : items) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Value::DictData::Set(std::string key, Value v) {
  for (auto& [k, old] : items) {
    if (k == key) {
      old = std::move(v);
      return;
    }
  }
  items.emplace_back(std::move(key), std::move(v));
}

const std::string& Value::EmptyString() {
  static const std::string* empty = new std::string();
  return *empty;
}

Value Value::Undefined(std::string name) {
  Value v;
  if (!name.empty())
    v.s_ = std::make_shared<const std::string>(std::move(name));
  return v;
}
Value Value::None() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}
Value Value::Bool(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.b_ = b;
  v.i_ = b ? 1 : 0;
  v.f_ = v.i_;
  return v;
}
Value Value::Int(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.i_ = i;
  v.f_ = static_cast<double>(i);
  return v;
}
Value Value::Float(double f) {
  Value v;
  v.kind_ = Kind::kFloat;
  v.f_ = f;
  return v;
}
Value Value::String(std::string s) {
  Value v;
  v.kind_ = Kind::kString;
  v.s_ = std::make_shared<const std::string>(std::move(s));
  return v;
}
Value Value::List(std::vector<Value> items, bool tuple) {
  Value v;
  v.kind_ = Kind::kList;
  v.list_ = std::make_shared<ListData>();
  for (const Value& x : items) {
    v.list_->depth = std::max(v.list_->depth, x.depth() + 1);
    v.list_->has_namespace |= x.IsNamespace() || x.has_namespace();
  }
  v.list_->items = std::move(items);
  v.list_->tuple = tuple;
  return v;
}
Value Value::Dict(std::vector<std::pair<std::string, Value>> items) {
  Value v;
  v.kind_ = Kind::kDict;
  v.dict_ = std::make_shared<DictData>();
  for (const auto& [k, x] : items) {
    v.dict_->depth = std::max(v.dict_->depth, x.depth() + 1);
    v.dict_->has_namespace |= x.IsNamespace() || x.has_namespace();
  }
  v.dict_->items = std::move(items);
  return v;
}
Value Value::Namespace(std::vector<std::pair<std::string, Value>> items) {
  Value v = Dict(std::move(items));
  v.dict_->is_namespace = true;
  return v;
}
Value Value::Function(std::shared_ptr<const Callable> fn) {
  Value v;
  v.kind_ = Kind::kCallable;
  v.fn_ = std::move(fn);
  return v;
}

namespace {

template <typename Json>
Value ValueFromJson(const Json& j) {
  using V = Value;
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return V::None();
    case nlohmann::json::value_t::boolean:
      return V::Bool(j.template get<bool>());
    case nlohmann::json::value_t::number_integer:
      return V::Int(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      uint64_t u = j.template get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return V::Float(double(u));
      return V::Int(static_cast<int64_t>(u));
    }
    case nlohmann::json::value_t::number_float:
      return V::Float(j.template get<double>());
    case nlohmann::json::value_t::string:
      return V::String(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& x : j) items.push_back(ValueFromJson(x));
      return V::List(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      std::vector<std::pair<std::string, Value>> items;
      for (auto it = j.begin(); it != j.end(); ++it) {
        items.emplace_back(it.key(), ValueFromJson(it.value()));
      }
      return V::Dict(std::move(items));
    }
    default:
      return V::None();
  }
}

}  // namespace

Value Value::FromJson(const nlohmann::json& j) { return ValueFromJson(j); }
Value Value::FromJson(const nlohmann::ordered_json& j) {
  return ValueFromJson(j);
}

int Value::depth() const {
  if (kind_ == Kind::kList) return list_->depth;
  if (kind_ == Kind::kDict) return dict_->is_namespace ? 1 : dict_->depth;
  return 0;
}

bool Value::has_namespace() const {
  if (kind_ == Kind::kList) return list_->has_namespace;
  if (kind_ == Kind::kDict) return dict_->has_namespace;
  return false;
}

bool Value::Truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return b_;
    case Kind::kInt:
      return i_ != 0;
    case Kind::kFloat:
      return f_ != 0;
    case Kind::kString:
      return !str().empty();
    case Kind::kList:
      return !list_->items.empty();
    case Kind::kDict:
      return dict_->is_namespace || !dict_->items.empty();
    case Kind::kCallable:
      return true;
  }
  return false;
}

std::string Value::TypeName() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kList:
      return list_->tuple ? "tuple" : "list";
    case Kind::kDict:
      return dict_->is_namespace ? "Namespace" : "dict";
    case Kind::kCallable:
      return "function";
  }
  return "object";
}

namespace {

std::string StrRepr(const std::string& s) {
  const bool dq =
      s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = dq ? '"' : '\'';
  std::string out(1, q);
  for (uint32_t cp : CodePoints(s)) {
    if (cp == static_cast<uint32_t>(q) || cp == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(cp));
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || cp == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", cp);
      out += buf;
    } else {
      AppendUtf8(cp, &out);
    }
  }
  out.push_back(q);
  return out;
}

}  // namespace

size_t TextBound(const Value& v, size_t per_item, size_t cap) {
  size_t total = 0;
  auto add = [&](size_t n) {
    total = n > cap || total + n > cap ? cap + 1 : total + n;
  };
  switch (v.kind()) {
    case Value::Kind::kString:
      add(v.str().size() * 6 + 2);
      break;
    case Value::Kind::kList:
      add(2);
      for (const Value& x : v.items()) {
        if (total > cap) break;
        add(per_item);
        add(TextBound(x, per_item, cap - std::min(total, cap)));
      }
      break;
    case Value::Kind::kDict:
      add(16);
      for (const auto& [k, x] : v.dict().items) {
        if (total > cap) break;
        add(per_item + k.size() * 6 + 4);
        add(TextBound(x, per_item, cap - std::min(total, cap)));
      }
      break;
    case Value::Kind::kCallable:
      add(64 + v.callable().Name().size());
      break;
    default:
      add(32);
  }
  return total;
}

std::string FloatRepr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[40];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  // buf is d.ddde±XX with the shortest digits that round-trip.
  std::string s(buf);
  const size_t e = s.find('e');
  std::string mant = s.substr(0, e);
  const int exp = std::atoi(s.c_str() + e + 1);
  const bool neg = mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant) {
    if (c != '.') digits.push_back(c);
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out;
  if (exp < -4 || exp >= 16) {
    out = digits.substr(0, 1);
    if (digits.size() > 1) absl::StrAppend(&out, ".", digits.substr(1));
    char eb[8];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += eb;
  } else if (exp < 0) {
    out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  } else {
    const size_t int_len = static_cast<size_t>(exp) + 1;
    if (digits.size() <= int_len) {
      out = digits + std::string(int_len - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, int_len) + "." + digits.substr(int_len);
    }
  }
  return neg ? "-" + out : out;
}

std::string Value::ToString() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "";
    case Kind::kString:
      return str();
    default:
      return Repr();
  }
}

std::string Value::Repr() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "";
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return b_ ? "True" : "False";
    case Kind::kInt:
      return absl::StrCat(i_);
    case Kind::kFloat:
      return FloatRepr(f_);
    case Kind::kString:
      return StrRepr(str());
    case Kind::kList: {
      std::string out = list_->tuple ? "(" : "[";
      for (size_t i = 0; i < list_->items.size(); ++i) {
        if (i) out += ", ";
        out += list_->items[i].Repr();
      }
      if (list_->tuple && list_->items.size() == 1) out += ",";
      out += list_->tuple ? ")" : "]";
      return out;
    }
    case Kind::kDict: {
      std::string out = dict_->is_namespace ? "<Namespace {" : "{";
      for (size_t i = 0; i < dict_->items.size(); ++i) {
        if (i) out += ", ";
        absl::StrAppend(&out, StrRepr(dict_->items[i].first), ": ",
                        dict_->items[i].second.Repr());
      }
      out += dict_->is_namespace ? "}>" : "}";
      return out;
    }
    case Kind::kCallable:
      return absl::StrCat("<function ", fn_->Name(), ">");
  }
  return "";
}

bool Value::Equals(const Value& o) const {
  if (IsNumber() && o.IsNumber()) {
    if (kind_ == Kind::kFloat || o.kind_ == Kind::kFloat) return f_ == o.f_;
    return i_ == o.i_;
  }
  if (kind_ != o.kind_) return false;
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return true;
    case Kind::kString:
      return s_ == o.s_ || str() == o.str();
    case Kind::kList: {
      const auto& a = list_->items;
      const auto& b = o.list_->items;
      if (list_->tuple != o.list_->tuple || a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i) {
        if (!a[i].Equals(b[i])) return false;
      }
      return true;
    }
    case Kind::kDict: {
      if (dict_ == o.dict_) return true;
      if (dict_->is_namespace || o.dict_->is_namespace) return false;
      if (dict_->items.size() != o.dict_->items.size()) return false;
      for (const auto& [k, v] : dict_->items) {
        const Value* ov = o.dict_->Find(k);
        if (!ov || !v.Equals(*ov)) return false;
      }
      return true;
    }
    case Kind::kCallable:
      return fn_ == o.fn_;
    default:
      return false;
  }
}

// ---- JSON -----------------------------------------------------------------

namespace {

void JsonString(const std::string& s, bool ensure_ascii, std::string* out) {
  out->push_back('"');
  for (uint32_t cp : CodePoints(s)) {
    switch (cp) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '\b':
        *out += "\\b";
        break;
      case '\f':
        *out += "\\f";
        break;
      default: {
        char buf[16];
        if (cp < 0x20 || (ensure_ascii && cp >= 0x7f)) {
          if (cp >= 0x10000) {
            const uint32_t v = cp - 0x10000;
            std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (v >> 10),
                          0xDC00 + (v & 0x3FF));
          } else {
            std::snprintf(buf, sizeof buf, "\\u%04x", cp);
          }
          *out += buf;
        } else {
          AppendUtf8(cp, out);
        }
      }
    }
  }
  out->push_back('"');
}

absl::Status Dump(const Value& v, const JsonDumpOptions& o, int level,
                  std::string* out) {
  const bool pretty = o.indent_is_text || o.indent >= 0;
  const std::string item_sep =
      o.custom_separators ? o.item_separator : (pretty ? "," : ", ");
  const std::string key_sep = o.custom_separators ? o.key_separator : ": ";
  auto newline = [&](int lvl) {
    if (!pretty) return;
    out->push_back('\n');
    for (int i = 0; i < lvl; ++i) {
      if (o.indent_is_text) {
        *out += o.indent_text;
      } else {
        out->append(static_cast<size_t>(o.indent), ' ');
      }
    }
  };
  switch (v.kind()) {
    case Value::Kind::kNone:
      *out += "null";
      break;
    case Value::Kind::kBool:
      *out += v.bool_value() ? "true" : "false";
      break;
    case Value::Kind::kInt:
      absl::StrAppend(out, v.int_value());
      break;
    case Value::Kind::kFloat: {
      const double d = v.float_value();
      if (std::isnan(d)) {
        *out += "NaN";
      } else if (std::isinf(d)) {
        *out += d > 0 ? "Infinity" : "-Infinity";
      } else {
        *out += FloatRepr(d);
      }
      break;
    }
    case Value::Kind::kString:
      JsonString(v.str(), o.ensure_ascii, out);
      break;
    case Value::Kind::kList: {
      if (v.items().empty()) {
        *out += "[]";
        break;
      }
      out->push_back('[');
      for (size_t i = 0; i < v.items().size(); ++i) {
        if (i) *out += item_sep;
        newline(level + 1);
        LORAD_RETURN_IF_ERROR(Dump(v.items()[i], o, level + 1, out));
      }
      newline(level);
      out->push_back(']');
      break;
    }
    case Value::Kind::kDict: {
      if (v.IsNamespace()) {
        return absl::InvalidArgumentError(
            "Object of type Namespace is not JSON serializable");
      }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& kv : v.dict().items) items.push_back(&kv);
      if (o.sort_keys) {
        std::stable_sort(items.begin(), items.end(),
                         [](auto* a, auto* b) { return a->first < b->first; });
      }
      if (items.empty()) {
        *out += "{}";
        break;
      }
      out->push_back('{');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) *out += item_sep;
        newline(level + 1);
        JsonString(items[i]->first, o.ensure_ascii, out);
        *out += key_sep;
        LORAD_RETURN_IF_ERROR(Dump(items[i]->second, o, level + 1, out));
      }
      newline(level);
      out->push_back('}');
      break;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "Object of type ", v.TypeName(), " is not JSON serializable"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> DumpJson(const Value& v,
                                     const JsonDumpOptions& options) {
  std::string out;
  LORAD_RETURN_IF_ERROR(Dump(v, options, 0, &out));
  return out;
}

// ---- UTF-8 ------------------------------------------------------------------

std::vector<uint32_t> CodePoints(absl::string_view s) {
  std::vector<uint32_t> cps;
  cps.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80         ? 1
              : (c >> 5) == 6  ? 2
              : (c >> 4) == 14 ? 3
              : (c >> 3) == 30 ? 4
                               : 0;
    uint32_t cp = len == 1   ? c
                  : len == 2 ? (c & 0x1F)
                  : len == 3 ? (c & 0x0F)
                             : (c & 0x07);
    bool ok = len > 0 && i + static_cast<size_t>(len) <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (!ok) {  // an invalid byte stands for itself
      cps.push_back(c);
      ++i;
      continue;
    }
    cps.push_back(cp);
    i += static_cast<size_t>(len);
  }
  return cps;
}

void AppendUtf8(uint32_t cp, std::string* out) { AppendCodePoint(cp, out); }

std::string FromCodePoints(const uint32_t* begin, const uint32_t* end) {
  std::string out;
  for (const uint32_t* p = begin; p != end; ++p) AppendUtf8(*p, &out);
  return out;
}

bool IsPySpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) ||
         cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

}  // namespace lorad::model::jinja
