// A Jinja interpreter for the subset that published chat templates use,
// rendering the way transformers' apply_chat_template does (jinja2's
// sandboxed environment with trim_blocks and lstrip_blocks on, the
// loopcontrols extension, its tojson / raise_exception / strftime_now /
// namespace globals and the {% generation %} block).
//
// Template text comes from model directories, i.e. from outside: parsing
// and rendering never abort and never run unbounded. Anything the subset
// does not have (an unknown tag, filter or test, a call of an unknown
// function or method) is an InvalidArgument error naming the line and
// column; so is a raise_exception() call (carrying its message) and every
// limit a render breaks (Limits).
//
// Values follow Python's semantics as jinja2 exposes them: ints are 64-bit
// (overflow is an error), strings are UTF-8 and index by code point,
// dicts keep insertion order and have string keys, an undefined value
// prints as "" and iterates as empty but any attribute, item, arithmetic
// or call on it is an error ("'x' is undefined"), as with jinja2's default
// Undefined. upper/lower/title/capitalize change ASCII letters only.
#ifndef LORAD_MODEL_JINJA_H_
#define LORAD_MODEL_JINJA_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace lorad::model::jinja {

class Callable;  // functions, macros and bound methods (internal)

// A template value. Copies are cheap: lists, dicts and callables are shared
// (they are immutable once built, except a namespace's attributes).
class Value {
 public:
  enum class Kind {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,  // also tuples (IsTuple)
    kDict,  // also namespaces (IsNamespace)
    kCallable,
  };
  struct ListData {
    std::vector<Value> items;
    bool tuple = false;
    int depth = 1;  // containers nested, this one included
    bool has_namespace = false;
  };
  struct DictData {
    std::vector<std::pair<std::string, Value>> items;  // insertion order
    bool is_namespace = false;
    int depth = 1;
    bool has_namespace = false;
    const Value* Find(absl::string_view key) const;
    // Replaces the value under `key` or appends it.
    void Set(std::string key, Value v);
  };

  Value() = default;  // undefined
  static Value Undefined(std::string name = "");
  static Value None();
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Float(double f);
  static Value String(std::string s);
  static Value List(std::vector<Value> items, bool tuple = false);
  static Value Dict(std::vector<std::pair<std::string, Value>> items);
  static Value Namespace(std::vector<std::pair<std::string, Value>> items);
  static Value Function(std::shared_ptr<const Callable> fn);
  // JSON null → None, numbers keep int/float, objects keep their key order
  // (use ordered_json for the order of the text).
  static Value FromJson(const nlohmann::json& j);
  static Value FromJson(const nlohmann::ordered_json& j);

  Kind kind() const { return kind_; }
  bool IsUndefined() const { return kind_ == Kind::kUndefined; }
  bool IsNone() const { return kind_ == Kind::kNone; }
  bool IsString() const { return kind_ == Kind::kString; }
  bool IsNumber() const {
    return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool;
  }
  bool IsList() const { return kind_ == Kind::kList; }
  bool IsTuple() const { return IsList() && list_->tuple; }
  bool IsDict() const { return kind_ == Kind::kDict; }
  bool IsNamespace() const { return IsDict() && dict_->is_namespace; }
  bool IsCallable() const { return kind_ == Kind::kCallable; }

  bool bool_value() const { return b_; }
  int64_t int_value() const { return i_; }  // also bools (0/1)
  double float_value() const { return f_; }
  // kString: the text; kUndefined: the name it was looked up by.
  const std::string& str() const { return s_ ? *s_ : EmptyString(); }
  const std::vector<Value>& items() const { return list_->items; }
  const ListData& list() const { return *list_; }
  const DictData& dict() const { return *dict_; }
  DictData& mutable_dict() const { return *dict_; }  // namespaces only
  const Callable& callable() const { return *fn_; }
  // Nesting of containers (0 for scalars) and whether a namespace is inside.
  int depth() const;
  bool has_namespace() const;

  // Python truthiness (undefined is false).
  bool Truthy() const;
  // str(): what {{ x }} prints ("" for undefined, "None", "True", "1.5",
  // "['a', 1]"); Python's repr for strings inside containers.
  std::string ToString() const;
  std::string Repr() const;
  // Python ==, with 1 == 1.0 == True.
  bool Equals(const Value& other) const;
  // The type name Python errors use ("str", "list", "NoneType").
  std::string TypeName() const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  static const std::string& EmptyString();
  std::shared_ptr<const std::string> s_;  // shared: copies stay cheap
  std::shared_ptr<ListData> list_;
  std::shared_ptr<DictData> dict_;
  std::shared_ptr<const Callable> fn_;
};

// json.dumps(v, ensure_ascii, indent, separators, sort_keys) as Python
// writes it (transformers' tojson filter). indent < 0 means None.
// InvalidArgument for values JSON cannot hold (undefined, callables, NaN
// is written as NaN like Python).
struct JsonDumpOptions {
  bool ensure_ascii = false;
  int indent = -1;
  std::string indent_text;  // used instead of `indent` spaces when set
  bool indent_is_text = false;
  std::string item_separator;  // "" = Python's default for the indent
  std::string key_separator;
  bool custom_separators = false;
  bool sort_keys = false;
};
absl::StatusOr<std::string> DumpJson(const Value& v,
                                     const JsonDumpOptions& options);

// Work a single render may do; breaking one is an InvalidArgument error.
struct Limits {
  int64_t max_steps = 5'000'000;  // expressions + statements evaluated
  int max_depth = 400;            // nested evaluation (incl. macro calls)
  int max_nesting = 64;           // lists/dicts inside each other
  size_t max_output_bytes = size_t{16} << 20;
  // Bytes of strings and list slots built during one render, all together.
  size_t max_alloc_bytes = size_t{256} << 20;
  int64_t max_range = 1'000'000;  // elements of one range()
};

struct ParsedTemplate;  // the syntax tree (internal)

// A parsed template. Immutable; Render may be called from many threads.
class Template {
 public:
  // Parses `source` (newlines normalised to \n, one trailing newline
  // dropped, as jinja2 does). InvalidArgument "line L, column C: ..." for a
  // syntax error, an unknown tag, filter or test, a template over 4 MiB or
  // nested over 200 levels.
  static absl::StatusOr<std::unique_ptr<Template>> Parse(
      absl::string_view source);
  ~Template();

  // Renders with `context` (a dict of global names; callers add nothing
  // else: range, namespace, dict, raise_exception and strftime_now are
  // built in).
  //
  // With `generation_spans`, also where the output of {% generation %}
  // blocks lies, as transformers' apply_chat_template(...,
  // return_assistant_tokens_mask=True) finds it: one [begin, end) byte span
  // of the returned text per block executed, in the order the blocks
  // finish (an inner block before the one around it). transformers' tracker
  // starts a span at the length of the text the template has rendered at
  // its top level before the block, and gives it the block's length in
  // code points: for a block rendered straight into the output (in the
  // template body, an if or a for) that is exactly the block's text; for
  // one inside a macro, a {% set %} block or another generation block it
  // is where the enclosing top-level output begins, as in transformers
  // (the span is clipped to the text). Costs nothing when null.
  absl::StatusOr<std::string> Render(
      const Value& context, const Limits& limits = Limits(),
      std::vector<std::pair<size_t, size_t>>* generation_spans = nullptr) const;

  // Whether the template has a {% generation %} block (reached or not).
  bool has_generation() const;

 private:
  explicit Template(std::unique_ptr<ParsedTemplate> parsed);
  std::unique_ptr<ParsedTemplate> parsed_;
};

}  // namespace lorad::model::jinja

#endif  // LORAD_MODEL_JINJA_H_
