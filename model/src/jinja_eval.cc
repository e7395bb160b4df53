// Runtime: statements (Exec) and expressions (Eval), and Template.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "jinja_internal.h"
#include "lorad/common/status_macros.h"

namespace lorad::model::jinja {
namespace {

absl::Status NodeError(const Node& n, absl::string_view msg) {
  return ErrorAt(n.line, n.col, msg);
}

// A {% macro %}: called with its own scope under the template's globals.
class Macro final : public Callable {
 public:
  explicit Macro(const Node* node) : node_(node) {}
  std::string Name() const override { return node_->name; }
  absl::StatusOr<Value> Call(Runtime& rt, const CallArgs& args,
                             const Expr& at) const override {
    if (args.positional.size() > node_->params.size()) {
      return ErrorAt(
          at.line, at.col,
          absl::StrCat("macro '", node_->name, "' takes ", node_->params.size(),
                       " arguments, got ", args.positional.size()));
    }
    Scope scope;
    scope.parent = rt.globals();
    for (const auto& [k, v] : args.named) {
      bool known = false;
      for (const auto& p : node_->params) known |= p.first == k;
      if (!known) {
        return ErrorAt(at.line, at.col,
                       absl::StrCat("macro '", node_->name,
                                    "' has no argument '", k, "'"));
      }
    }
    for (size_t i = 0; i < node_->params.size(); ++i) {
      const auto& [name, def] = node_->params[i];
      if (const Value* v = args.Get(i, name)) {
        scope.vars[name] = *v;
      } else if (def) {
        LORAD_ASSIGN_OR_RETURN(scope.vars[name], rt.Eval(*def, scope));
      } else {
        scope.vars[name] = Value::Undefined(name);
      }
    }
    if (++rt.depth > rt.limits().max_depth) {
      --rt.depth;
      return ErrorAt(
          at.line, at.col,
          absl::StrCat("calls nested deeper than ", rt.limits().max_depth,
                       " (runaway macro "
                       "recursion?)"));
    }
    std::string out;
    absl::Status s = rt.Exec(node_->body, scope, &out);
    --rt.depth;
    LORAD_RETURN_IF_ERROR(s);
    return Value::String(std::move(out));
  }

 private:
  const Node* node_;
};

// loop.cycle(a, b, ...)
class Cycle final : public Callable {
 public:
  explicit Cycle(int64_t index0) : index0_(index0) {}
  std::string Name() const override { return "cycle"; }
  absl::StatusOr<Value> Call(Runtime&, const CallArgs& args,
                             const Expr& at) const override {
    if (args.positional.empty()) {
      return ErrorAt(at.line, at.col, "loop.cycle needs an argument");
    }
    return args
        .positional[static_cast<size_t>(index0_) % args.positional.size()];
  }

 private:
  int64_t index0_;
};

}  // namespace

const Value* CallArgs::Get(size_t index, absl::string_view name) const {
  for (const auto& [k, v] : named) {
    if (k == name) return &v;
  }
  return index < positional.size() ? &positional[index] : nullptr;
}

const Value* Scope::Find(const std::string& name) const {
  for (const Scope* s = this; s; s = s->parent) {
    auto it = s->vars.find(name);
    if (it != s->vars.end()) return &it->second;
  }
  return nullptr;
}

Runtime::Runtime(const Limits& limits, Scope* globals)
    : limits_(limits), globals_(globals) {}

absl::Status Runtime::Step(const Expr& at) {
  if (++steps_ > limits_.max_steps) {
    return ErrorAt(at.line, at.col,
                   absl::StrCat("the template ran more than ",
                                limits_.max_steps, " steps"));
  }
  return absl::OkStatus();
}

absl::Status Runtime::StepNode(const Node& at) {
  if (++steps_ > limits_.max_steps) {
    return NodeError(at, absl::StrCat("the template ran more than ",
                                      limits_.max_steps, " steps"));
  }
  return absl::OkStatus();
}

absl::Status Runtime::Work(size_t units, int line, int col) {
  steps_ += static_cast<int64_t>(std::min<size_t>(units, INT64_MAX / 4));
  if (steps_ > limits_.max_steps) {
    return ErrorAt(line, col,
                   absl::StrCat("the template ran more than ",
                                limits_.max_steps, " steps"));
  }
  return absl::OkStatus();
}

absl::Status Runtime::Charge(size_t bytes, int line, int col) {
  allocated_ += bytes;
  if (bytes > limits_.max_alloc_bytes || allocated_ > limits_.max_alloc_bytes) {
    return ErrorAt(line, col,
                   absl::StrCat("the template built more than ",
                                limits_.max_alloc_bytes, " bytes of values"));
  }
  return absl::OkStatus();
}

absl::Status Runtime::ChargeText(const Value& v, size_t per_item, int line,
                                 int col) {
  if (!v.IsList() && !v.IsDict()) return absl::OkStatus();
  const size_t room =
      limits_.max_alloc_bytes - std::min(allocated_, limits_.max_alloc_bytes);
  return Charge(TextBound(v, per_item, room), line, col);
}

absl::Status Runtime::CheckNesting(const Value& v, int line, int col) const {
  if (v.depth() > limits_.max_nesting) {
    return ErrorAt(
        line, col,
        absl::StrCat("values nested deeper than ", limits_.max_nesting));
  }
  return absl::OkStatus();
}

absl::Status Runtime::Emit(absl::string_view s, std::string* out,
                           const Node& n) {
  if (out->size() + s.size() > limits_.max_output_bytes) {
    return NodeError(n, absl::StrCat("the output passed ",
                                     limits_.max_output_bytes, " bytes"));
  }
  LORAD_RETURN_IF_ERROR(Charge(s.size(), n.line, n.col));
  out->append(s.data(), s.size());
  return absl::OkStatus();
}

absl::Status Runtime::Exec(const Body& body, Scope& scope, std::string* out) {
  if (body.empty()) return absl::OkStatus();
  if (++depth > limits_.max_depth) {
    --depth;
    return NodeError(*body[0], absl::StrCat("evaluation nested deeper than ",
                                            limits_.max_depth));
  }
  absl::Status s;
  for (const NodePtr& n : body) {
    s = ExecNode(*n, scope, out);
    if (!s.ok() || flow_ != Flow::kNormal) break;
  }
  --depth;
  return s;
}

absl::Status Runtime::ExecNode(const Node& n, Scope& scope, std::string* out) {
  LORAD_RETURN_IF_ERROR(StepNode(n));
  switch (n.kind) {
    case Node::Kind::kText:
      return Emit(n.text, out, n);
    case Node::Kind::kOutput: {
      LORAD_ASSIGN_OR_RETURN(Value v, Eval(*n.expr, scope));
      if (v.IsString()) return Emit(v.str(), out, n);
      LORAD_RETURN_IF_ERROR(ChargeText(v, 2, n.line, n.col));
      return Emit(v.ToString(), out, n);
    }
    case Node::Kind::kIf:
      for (const auto& [cond, body] : n.branches) {
        bool take = true;
        if (cond) {
          LORAD_ASSIGN_OR_RETURN(Value c, Eval(*cond, scope));
          take = c.Truthy();
        }
        if (take) return Exec(body, scope, out);
      }
      return absl::OkStatus();
    case Node::Kind::kFor:
      return ExecFor(n, scope, out);
    case Node::Kind::kSet:
    case Node::Kind::kSetBlock:
      return ExecSet(n, scope, out);
    case Node::Kind::kMacro:
      scope.vars[n.name] = Value::Function(std::make_shared<Macro>(&n));
      return absl::OkStatus();
    case Node::Kind::kBreak:
      flow_ = Flow::kBreak;
      return absl::OkStatus();
    case Node::Kind::kContinue:
      flow_ = Flow::kContinue;
      return absl::OkStatus();
    case Node::Kind::kGeneration:
      return ExecGeneration(n, scope, out);
  }
  return absl::OkStatus();
}

absl::Status Runtime::ExecSet(const Node& n, Scope& scope, std::string* out) {
  Value v;
  if (n.kind == Node::Kind::kSetBlock) {
    std::string captured;
    LORAD_RETURN_IF_ERROR(Exec(n.body, scope, &captured));
    v = Value::String(std::move(captured));
  } else {
    LORAD_ASSIGN_OR_RETURN(v, Eval(*n.expr, scope));
  }
  if (!n.ns_attr.empty()) {
    const Value* ns = scope.Find(n.targets[0]);
    if (!ns || !ns->IsNamespace()) {
      return NodeError(
          n, absl::StrCat("cannot assign attribute on '", n.targets[0],
                          "': it is not a namespace"));
    }
    if (v.IsNamespace() || v.has_namespace()) {
      return NodeError(n, "a namespace cannot hold a namespace");
    }
    if (!n.ns_attr.empty() && n.ns_attr[0] == '_') {
      return NodeError(n, "namespace attributes may not start with '_'");
    }
    ns->mutable_dict().Set(n.ns_attr, std::move(v));
    return absl::OkStatus();
  }
  if (n.targets.size() == 1) {
    scope.vars[n.targets[0]] = std::move(v);
    return absl::OkStatus();
  }
  if (!v.IsList() || v.items().size() != n.targets.size()) {
    return NodeError(n, absl::StrCat("cannot unpack ", v.TypeName(), " into ",
                                     n.targets.size(), " names"));
  }
  for (size_t i = 0; i < n.targets.size(); ++i) {
    scope.vars[n.targets[i]] = v.items()[i];
  }
  return absl::OkStatus();
}

absl::Status Runtime::ExecFor(const Node& n, Scope& scope, std::string* out) {
  LORAD_ASSIGN_OR_RETURN(Value seq, Eval(*n.expr, scope));
  LORAD_ASSIGN_OR_RETURN(std::vector<Value> all, Iterate(*this, seq, *n.expr));
  auto bind = [&](Scope& s, const Value& item) -> absl::Status {
    if (n.targets.size() == 1) {
      s.vars[n.targets[0]] = item;
      return absl::OkStatus();
    }
    if (!item.IsList() || item.items().size() != n.targets.size()) {
      return NodeError(n, absl::StrCat("cannot unpack ", item.TypeName(),
                                       " into ", n.targets.size(), " names"));
    }
    for (size_t i = 0; i < n.targets.size(); ++i) {
      s.vars[n.targets[i]] = item.items()[i];
    }
    return absl::OkStatus();
  };
  std::vector<Value> items;
  if (n.filter) {
    for (const Value& item : all) {
      LORAD_RETURN_IF_ERROR(StepNode(n));
      Scope s;
      s.parent = &scope;
      LORAD_RETURN_IF_ERROR(bind(s, item));
      LORAD_ASSIGN_OR_RETURN(Value keep, Eval(*n.filter, s));
      if (keep.Truthy()) items.push_back(item);
    }
  } else {
    items = std::move(all);
  }
  const int64_t len = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < len; ++i) {
    LORAD_RETURN_IF_ERROR(StepNode(n));
    Scope s;
    s.parent = &scope;
    LORAD_RETURN_IF_ERROR(bind(s, items[static_cast<size_t>(i)]));
    std::vector<std::pair<std::string, Value>> loop = {
        {"index", Value::Int(i + 1)},
        {"index0", Value::Int(i)},
        {"revindex", Value::Int(len - i)},
        {"revindex0", Value::Int(len - i - 1)},
        {"first", Value::Bool(i == 0)},
        {"last", Value::Bool(i == len - 1)},
        {"length", Value::Int(len)},
        {"depth", Value::Int(1)},
        {"depth0", Value::Int(0)},
        {"previtem", i > 0 ? items[static_cast<size_t>(i - 1)]
                           : Value::Undefined("previtem")},
        {"nextitem", i + 1 < len ? items[static_cast<size_t>(i + 1)]
                                 : Value::Undefined("nextitem")},
        {"cycle", Value::Function(std::make_shared<Cycle>(i))},
    };
    s.vars["loop"] = Value::Dict(std::move(loop));
    LORAD_RETURN_IF_ERROR(Exec(n.body, s, out));
    if (flow_ == Flow::kBreak) {
      flow_ = Flow::kNormal;
      break;
    }
    flow_ = Flow::kNormal;
  }
  if (len == 0 && !n.else_body.empty()) {
    return Exec(n.else_body, scope, out);
  }
  return absl::OkStatus();
}

// ---- Expressions ---------------------------------------------------------

absl::StatusOr<Value> Runtime::Eval(const Expr& e, Scope& scope) {
  LORAD_RETURN_IF_ERROR(Step(e));
  if (++depth > limits_.max_depth) {
    --depth;
    return ErrorAt(
        e.line, e.col,
        absl::StrCat("evaluation nested deeper than ", limits_.max_depth));
  }
  absl::StatusOr<Value> v = EvalInner(e, scope);
  --depth;
  // Every string an expression yields is charged: the work of any operation
  // on strings is then bounded by the charges of its operands.
  if (v.ok() && v->IsString()) {
    LORAD_RETURN_IF_ERROR(Charge(v->str().size(), e.line, e.col));
  }
  return v;
}

absl::StatusOr<CallArgs> Runtime::EvalArgs(const Expr& e, size_t first,
                                           Scope& scope) {
  CallArgs a;
  for (size_t i = first; i < e.args.size(); ++i) {
    LORAD_ASSIGN_OR_RETURN(Value v, Eval(*e.args[i], scope));
    LORAD_RETURN_IF_ERROR(ChargeText(v, 2, e.line, e.col));
    a.positional.push_back(std::move(v));
  }
  for (const auto& [k, x] : e.kwargs) {
    LORAD_ASSIGN_OR_RETURN(Value v, Eval(*x, scope));
    LORAD_RETURN_IF_ERROR(ChargeText(v, 2, e.line, e.col));
    a.named.emplace_back(k, std::move(v));
  }
  return a;
}

absl::StatusOr<Value> Runtime::EvalCall(const Expr& e, Scope& scope) {
  LORAD_ASSIGN_OR_RETURN(Value fn, Eval(*e.args[0], scope));
  if (fn.IsUndefined()) return UndefinedError(fn, e);
  if (!fn.IsCallable()) {
    return ErrorAt(
        e.line, e.col,
        absl::StrCat("'", fn.TypeName(), "' object is not callable"));
  }
  LORAD_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, 1, scope));
  LORAD_ASSIGN_OR_RETURN(Value v, fn.callable().Call(*this, args, e));
  LORAD_RETURN_IF_ERROR(CheckNesting(v, e.line, e.col));
  return v;
}

absl::StatusOr<Value> Runtime::EvalInner(const Expr& e, Scope& scope) {
  switch (e.kind) {
    case Expr::Kind::kLiteral:
      return e.literal;
    case Expr::Kind::kName: {
      const Value* v = scope.Find(e.name);
      return v ? *v : Value::Undefined(e.name);
    }
    case Expr::Kind::kList:
    case Expr::Kind::kTuple: {
      std::vector<Value> items;
      for (const ExprPtr& x : e.args) {
        LORAD_ASSIGN_OR_RETURN(Value v, Eval(*x, scope));
        items.push_back(std::move(v));
      }
      LORAD_RETURN_IF_ERROR(
          Charge(items.size() * sizeof(Value), e.line, e.col));
      Value l = Value::List(std::move(items), e.kind == Expr::Kind::kTuple);
      LORAD_RETURN_IF_ERROR(CheckNesting(l, e.line, e.col));
      return l;
    }
    case Expr::Kind::kDict: {
      std::vector<std::pair<std::string, Value>> items;
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        LORAD_ASSIGN_OR_RETURN(Value k, Eval(*e.args[i], scope));
        if (!k.IsString()) {
          return ErrorAt(
              e.args[i]->line, e.args[i]->col,
              absl::StrCat("dict keys must be strings, got ", k.TypeName()));
        }
        LORAD_ASSIGN_OR_RETURN(Value v, Eval(*e.args[i + 1], scope));
        bool replaced = false;
        for (auto& kv : items) {
          if (kv.first == k.str()) {
            kv.second = v;
            replaced = true;
          }
        }
        if (!replaced) items.emplace_back(k.str(), std::move(v));
      }
      Value d = Value::Dict(std::move(items));
      LORAD_RETURN_IF_ERROR(CheckNesting(d, e.line, e.col));
      return d;
    }
    case Expr::Kind::kAttr: {
      LORAD_ASSIGN_OR_RETURN(Value obj, Eval(*e.args[0], scope));
      if (obj.IsDict()) {
        LORAD_RETURN_IF_ERROR(Work(obj.dict().items.size(), e.line, e.col));
      }
      return GetAttr(obj, e.name, e);
    }
    case Expr::Kind::kItem: {
      LORAD_ASSIGN_OR_RETURN(Value obj, Eval(*e.args[0], scope));
      LORAD_ASSIGN_OR_RETURN(Value key, Eval(*e.args[1], scope));
      if (obj.IsDict()) {
        LORAD_RETURN_IF_ERROR(Work(obj.dict().items.size(), e.line, e.col));
      }
      return GetItem(obj, key, e);
    }
    case Expr::Kind::kSlice: {
      LORAD_ASSIGN_OR_RETURN(Value obj, Eval(*e.args[0], scope));
      Value parts[3] = {Value::None(), Value::None(), Value::None()};
      for (int i = 0; i < 3; ++i) {
        if (e.args[i + 1]) {
          LORAD_ASSIGN_OR_RETURN(parts[i], Eval(*e.args[i + 1], scope));
        }
      }
      return GetSlice(*this, obj, parts[0], parts[1], parts[2], e);
    }
    case Expr::Kind::kCall:
      return EvalCall(e, scope);
    case Expr::Kind::kFilter: {
      LORAD_ASSIGN_OR_RETURN(Value v, Eval(*e.args[0], scope));
      LORAD_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, 1, scope));
      LORAD_ASSIGN_OR_RETURN(Value r, ApplyFilter(*this, e.name, v, args, e));
      LORAD_RETURN_IF_ERROR(CheckNesting(r, e.line, e.col));
      return r;
    }
    case Expr::Kind::kTest: {
      LORAD_ASSIGN_OR_RETURN(Value v, Eval(*e.args[0], scope));
      LORAD_ASSIGN_OR_RETURN(CallArgs args, EvalArgs(e, 1, scope));
      LORAD_ASSIGN_OR_RETURN(bool r, ApplyTest(*this, e.name, v, args, e));
      return Value::Bool(r != e.negated);
    }
    case Expr::Kind::kUnary: {
      LORAD_ASSIGN_OR_RETURN(Value v, Eval(*e.args[0], scope));
      if (e.name == "not") return Value::Bool(!v.Truthy());
      if (v.IsUndefined()) return UndefinedError(v, e);
      if (!v.IsNumber()) {
        return ErrorAt(e.line, e.col,
                       absl::StrCat("bad operand type for unary ", e.name,
                                    ": '", v.TypeName(), "'"));
      }
      if (e.name == "+") {
        return v.kind() == Value::Kind::kFloat ? v : Value::Int(v.int_value());
      }
      if (v.kind() == Value::Kind::kFloat)
        return Value::Float(-v.float_value());
      if (v.int_value() == INT64_MIN) {
        return ErrorAt(e.line, e.col, "integer overflow");
      }
      return Value::Int(-v.int_value());
    }
    case Expr::Kind::kBinary: {
      LORAD_ASSIGN_OR_RETURN(Value a, Eval(*e.args[0], scope));
      if (e.name == "and") {
        if (!a.Truthy()) return a;
        return Eval(*e.args[1], scope);
      }
      if (e.name == "or") {
        if (a.Truthy()) return a;
        return Eval(*e.args[1], scope);
      }
      LORAD_ASSIGN_OR_RETURN(Value b, Eval(*e.args[1], scope));
      LORAD_ASSIGN_OR_RETURN(Value r, BinaryOp(*this, e.name, a, b, e));
      LORAD_RETURN_IF_ERROR(CheckNesting(r, e.line, e.col));
      return r;
    }
    case Expr::Kind::kCompare: {
      LORAD_ASSIGN_OR_RETURN(Value left, Eval(*e.args[0], scope));
      for (size_t i = 0; i < e.ops.size(); ++i) {
        LORAD_ASSIGN_OR_RETURN(Value right, Eval(*e.args[i + 1], scope));
        for (const Value* v : {&left, &right}) {
          if (v->IsList()) {
            LORAD_RETURN_IF_ERROR(Work(v->items().size(), e.line, e.col));
          } else if (v->IsDict()) {
            LORAD_RETURN_IF_ERROR(Work(v->dict().items.size(), e.line, e.col));
          }
        }
        LORAD_ASSIGN_OR_RETURN(bool ok, Compare(e.ops[i], left, right, e));
        if (!ok) return Value::Bool(false);
        left = std::move(right);
      }
      return Value::Bool(true);
    }
    case Expr::Kind::kCond: {
      LORAD_ASSIGN_OR_RETURN(Value c, Eval(*e.args[1], scope));
      if (c.Truthy()) return Eval(*e.args[0], scope);
      if (e.args[2]) return Eval(*e.args[2], scope);
      return Value::Undefined();
    }
  }
  return ErrorAt(e.line, e.col, "unknown expression");
}

// ---- Template ---------------------------------------------------------

Template::Template(std::unique_ptr<ParsedTemplate> parsed)
    : parsed_(std::move(parsed)) {}
Template::~Template() = default;

absl::StatusOr<std::unique_ptr<Template>> Template::Parse(
    absl::string_view source) {
  if (source.size() > kMaxTemplateBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the template has ", source.size(), " bytes; at most ",
                     kMaxTemplateBytes, " are accepted"));
  }
  std::string text;
  text.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      text.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      text.push_back(source[i]);
    }
  }
  if (!text.empty() && text.back() == '\n') text.pop_back();
  LORAD_ASSIGN_OR_RETURN(std::vector<Token> tokens, Lex(text));
  LORAD_ASSIGN_OR_RETURN(std::unique_ptr<ParsedTemplate> parsed,
                         ParseTokens(std::move(tokens)));
  return std::unique_ptr<Template>(new Template(std::move(parsed)));
}

absl::StatusOr<std::string> Template::Render(
    const Value& context, const Limits& limits,
    std::vector<std::pair<size_t, size_t>>* generation_spans) const {
  Scope builtins;
  AddGlobals(&builtins);
  Scope globals;
  globals.parent = &builtins;
  if (context.IsDict()) {
    for (const auto& [k, v] : context.dict().items) globals.vars[k] = v;
  } else if (!context.IsUndefined() && !context.IsNone()) {
    return absl::InvalidArgumentError("the render context must be a dict");
  }
  Runtime rt(limits, &globals);
  std::string out;
  std::vector<std::pair<size_t, size_t>> marks;
  if (generation_spans != nullptr) {
    generation_spans->clear();
    rt.TrackGeneration(&out, &marks);
  }
  LORAD_RETURN_IF_ERROR(rt.Exec(parsed_->body, globals, &out));
  if (generation_spans != nullptr) {
    *generation_spans = GenerationSpans(out, marks);
  }
  return out;
}

}  // namespace lorad::model::jinja
