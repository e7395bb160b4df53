// The pieces of the Jinja interpreter (jinja.h): tokens (jinja_lexer.cc),
// the syntax tree (jinja_parser.cc), the evaluator (jinja_eval.cc,
// jinja_exec.cc) and the built-in filters, tests, functions and methods
// (jinja_filters.cc, jinja_methods.cc).
#ifndef LORAD_MODEL_JINJA_INTERNAL_H_
#define LORAD_MODEL_JINJA_INTERNAL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lorad/model/jinja.h"

namespace lorad::model::jinja {

inline constexpr size_t kMaxTemplateBytes = size_t{4} << 20;
inline constexpr int kMaxParseDepth = 200;

// "line L, column C: msg" as InvalidArgument.
absl::Status ErrorAt(int line, int col, absl::string_view msg);

// ---- Tokens -----------------------------------------------------------

enum class Tok {
  kText,        // literal template text (whitespace control applied)
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kVarBegin,    // {{
  kVarEnd,      // }}
  kName,
  kString,
  kInt,
  kFloat,
  kOp,  // punctuation and operators: text holds it
  kEof,
};

struct Token {
  Tok type;
  std::string text;  // kText/kName/kOp: as is; kString: unescaped
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
  int col = 1;
};

// Splits a template into tokens, applying {%- -%}, trim_blocks and
// lstrip_blocks. `source` must already have normalised newlines.
absl::StatusOr<std::vector<Token>> Lex(absl::string_view source);

// ---- Syntax tree --------------------------------------------------------

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,  // literal
    kName,     // name
    kList,     // args: items
    kTuple,    // args: items
    kDict,     // args: key, value, key, value...
    kAttr,     // args[0].name
    kItem,     // args[0][args[1]]
    kSlice,    // args[0][args[1]:args[2]:args[3]] (each may be null)
    kCall,     // args[0](args[1..], kwargs)
    kFilter,   // args[0] | name(args[1..], kwargs)
    kTest,     // args[0] is [not] name(args[1..], kwargs)
    kUnary,    // name ("-", "+", "not") args[0]
    kBinary,   // args[0] name args[1]: + - * / // % ** ~ and or
    kCompare,  // args[0] ops[0] args[1] ops[1] args[2] ...
    kCond,     // args[0] if args[1] else args[2] (may be null)
  };
  Kind kind;
  int line = 1;
  int col = 1;
  Value literal;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
  bool negated = false;
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct Node {
  enum class Kind {
    kText,      // text
    kOutput,    // {{ expr }}
    kIf,        // branches (cond null = else)
    kFor,       // targets in expr [if filter]: body [else else_body]
    kSet,       // targets (or ns_attr on targets[0]) = expr
    kSetBlock,  // {% set targets[0] %}body{% endset %}
    kMacro,     // name(params = defaults): body
    kBreak,
    kContinue,
    kGeneration,  // {% generation %}body{% endgeneration %}
  };
  Kind kind;
  int line = 1;
  int col = 1;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;
  std::vector<std::pair<ExprPtr, Body>> branches;
  std::vector<std::string> targets;
  std::string ns_attr;  // kSet: `set targets[0].ns_attr = expr`
  Body body;
  Body else_body;
  std::string name;
  std::vector<std::pair<std::string, ExprPtr>> params;  // default may be null
};

struct ParsedTemplate {
  Body body;
  bool has_generation = false;  // a {% generation %} block anywhere
};

absl::StatusOr<std::unique_ptr<ParsedTemplate>> ParseTokens(
    std::vector<Token> tokens);

// Whether a filter / test of this name exists (checked at parse time).
bool HasFilter(absl::string_view name);
bool HasTest(absl::string_view name);

// ---- Evaluation ---------------------------------------------------------

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> named;
  // The named argument `name`, or positional[index], or null.
  const Value* Get(size_t index, absl::string_view name) const;
};

class Runtime;

class Callable {
 public:
  virtual ~Callable() = default;
  virtual std::string Name() const = 0;
  virtual absl::StatusOr<Value> Call(Runtime& rt, const CallArgs& args,
                                     const Expr& at) const = 0;
};

struct Scope {
  absl::flat_hash_map<std::string, Value> vars;
  Scope* parent = nullptr;
  const Value* Find(const std::string& name) const;
};

// One render: scopes, limits and counters. Not thread-safe (one per call).
class Runtime {
 public:
  Runtime(const Limits& limits, Scope* globals);

  absl::Status Exec(const Body& body, Scope& scope, std::string* out);
  absl::StatusOr<Value> Eval(const Expr& e, Scope& scope);

  // Counters: each returns an error (naming `at`) once a limit is passed.
  absl::Status Step(const Expr& at);
  absl::Status StepNode(const Node& at);
  // `units` steps of work at once (scans of lists, dicts and sorts).
  absl::Status Work(size_t units, int line, int col);
  absl::Status Charge(size_t bytes, int line, int col);
  absl::Status CheckNesting(const Value& v, int line, int col) const;
  // Charges TextBound(v) for a list or dict about to be printed.
  absl::Status ChargeText(const Value& v, size_t per_item, int line, int col);
  const Limits& limits() const { return limits_; }
  Scope* globals() const { return globals_; }

  // Call depth for macros (kept with the evaluation depth).
  int depth = 0;

  // Records where {% generation %} blocks put their output (jinja_
  // generation.cc): `root` is the string the template body renders into;
  // each finished block appends (the bytes of `root` transformers' tracker
  // sees as already rendered, the code points the block rendered).
  void TrackGeneration(const std::string* root,
                       std::vector<std::pair<size_t, size_t>>* marks) {
    root_ = root;
    marks_ = marks;
  }

 private:
  enum class Flow { kNormal, kBreak, kContinue };
  absl::Status ExecNode(const Node& n, Scope& scope, std::string* out);
  absl::Status ExecFor(const Node& n, Scope& scope, std::string* out);
  absl::Status ExecSet(const Node& n, Scope& scope, std::string* out);
  absl::Status ExecGeneration(const Node& n, Scope& scope, std::string* out);
  absl::Status Emit(absl::string_view s, std::string* out, const Node& n);
  absl::StatusOr<Value> EvalInner(const Expr& e, Scope& scope);
  absl::StatusOr<Value> EvalCall(const Expr& e, Scope& scope);
  absl::StatusOr<CallArgs> EvalArgs(const Expr& e, size_t first, Scope& scope);

  const Limits limits_;
  Scope* globals_;
  int64_t steps_ = 0;
  size_t allocated_ = 0;
  Flow flow_ = Flow::kNormal;
  const std::string* root_ = nullptr;
  std::vector<std::pair<size_t, size_t>>* marks_ = nullptr;
  // While a generation block renders straight into root_: root_'s size
  // when it began (transformers sees none of its output yet).
  std::optional<size_t> frozen_root_;
};

// The byte spans of `out` that the marks Runtime::TrackGeneration recorded
// stand for (Template::Render's generation_spans).
std::vector<std::pair<size_t, size_t>> GenerationSpans(
    const std::string& out,
    const std::vector<std::pair<size_t, size_t>>& marks);

// Built-ins. Errors name `at`.
absl::StatusOr<Value> ApplyFilter(Runtime& rt, absl::string_view name,
                                  const Value& v, const CallArgs& args,
                                  const Expr& at);
absl::StatusOr<bool> ApplyTest(Runtime& rt, absl::string_view name,
                               const Value& v, const CallArgs& args,
                               const Expr& at);
// jinja2's getattr (obj.name) and getitem (obj[key]); methods of strings
// and dicts come back bound. Undefined for what is missing; an error for
// any access on undefined.
absl::StatusOr<Value> GetAttr(const Value& obj, const std::string& name,
                              const Expr& at);
absl::StatusOr<Value> GetItem(const Value& obj, const Value& key,
                              const Expr& at);
absl::StatusOr<Value> GetSlice(Runtime& rt, const Value& obj,
                               const Value& start, const Value& stop,
                               const Value& step, const Expr& at);
// range, namespace, dict, raise_exception, strftime_now.
void AddGlobals(Scope* scope);
// The items a for loop (or list()) sees: list items, dict keys, string
// characters, nothing for undefined.
absl::StatusOr<std::vector<Value>> Iterate(Runtime& rt, const Value& v,
                                           const Expr& at);
// Python's binary operators and comparisons.
absl::StatusOr<Value> BinaryOp(Runtime& rt, absl::string_view op,
                               const Value& a, const Value& b, const Expr& at);
absl::StatusOr<bool> Compare(absl::string_view op, const Value& a,
                             const Value& b, const Expr& at);
absl::StatusOr<bool> Contains(const Value& container, const Value& item,
                              const Expr& at);
// "'x' is undefined" naming `at`.
absl::Status UndefinedError(const Value& v, const Expr& at);

// UTF-8 helpers: code points of `s` (invalid bytes map to themselves) and
// back.
std::vector<uint32_t> CodePoints(absl::string_view s);
std::string FromCodePoints(const uint32_t* begin, const uint32_t* end);
void AppendUtf8(uint32_t cp, std::string* out);
bool IsPySpace(uint32_t cp);
// An upper bound of the bytes Value::ToString or DumpJson write for `v`,
// each list or dict item adding `per_item` bytes (separators, indentation);
// cap + 1 as soon as it passes `cap`. Visits each item once: a list holding
// the same big string many times is bounded before it is ever printed.
size_t TextBound(const Value& v, size_t per_item, size_t cap);
// Python's repr of a float ("1.0", "1e+16", "inf").
std::string FloatRepr(double d);

}  // namespace lorad::model::jinja

#endif  // LORAD_MODEL_JINJA_INTERNAL_H_
