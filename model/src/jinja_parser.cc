// Recursive descent over the tokens, with jinja2's operator precedence:
//   cond (a if c else b) < or < and < not < comparisons (== != < > <= >=
//   in, not in) < + - < ~ < * / // % < ** < unary - + < postfix (.x [i]
//   (args)) with filters (|f) and tests (is t) applied after the unary.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "jinja_internal.h"
#include "lorad/common/status_macros.h"

namespace lorad::model::jinja {
namespace {

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  absl::StatusOr<std::unique_ptr<ParsedTemplate>> Run() {
    auto t = std::make_unique<ParsedTemplate>();
    std::string end;
    LORAD_RETURN_IF_ERROR(ParseBody({}, &t->body, &end));
    return t;
  }

 private:
  const Token& Cur() const { return toks_[pos_]; }
  const Token& Peek(size_t k = 1) const {
    return toks_[std::min(pos_ + k, toks_.size() - 1)];
  }
  bool IsOp(absl::string_view op) const {
    return Cur().type == Tok::kOp && Cur().text == op;
  }
  bool IsName(absl::string_view n) const {
    return Cur().type == Tok::kName && Cur().text == n;
  }
  absl::Status Err(absl::string_view msg) const {
    return ErrorAt(Cur().line, Cur().col, msg);
  }
  std::string Describe(const Token& t) const {
    switch (t.type) {
      case Tok::kEof: return "end of template";
      case Tok::kBlockEnd: return "'%}'";
      case Tok::kVarEnd: return "'}}'";
      case Tok::kString: return "a string";
      default: return absl::StrCat("'", t.text, "'");
    }
  }
  absl::Status Expect(absl::string_view op) {
    if (!IsOp(op)) {
      return Err(absl::StrCat("expected '", op, "', got ", Describe(Cur())));
    }
    ++pos_;
    return absl::OkStatus();
  }
  absl::Status ExpectBlockEnd() {
    if (Cur().type != Tok::kBlockEnd) {
      return Err(absl::StrCat("expected '%}', got ", Describe(Cur())));
    }
    ++pos_;
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> ExpectName() {
    if (Cur().type != Tok::kName) {
      return Err(absl::StrCat("expected a name, got ", Describe(Cur())));
    }
    return toks_[pos_++].text;
  }
  ExprPtr NewExpr(Expr::Kind k, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->line = at.line;
    e->col = at.col;
    return e;
  }
  struct DepthGuard {
    explicit DepthGuard(int* d) : d_(d) { ++*d_; }
    ~DepthGuard() { --*d_; }
    int* d_;
  };
  absl::Status CheckDepth() const {
    if (depth_ > kMaxParseDepth) {
      return Err(absl::StrCat("nested deeper than ", kMaxParseDepth,
                              " levels"));
    }
    return absl::OkStatus();
  }

  // Statements until a block tag named in `ends`; its name goes to *end.
  absl::Status ParseBody(const std::vector<absl::string_view>& ends, Body* body,
                         std::string* end) {
    DepthGuard g(&depth_);
    LORAD_RETURN_IF_ERROR(CheckDepth());
    for (;;) {
      const Token& t = Cur();
      if (t.type == Tok::kEof) {
        if (ends.empty()) return absl::OkStatus();
        return Err(absl::StrCat("missing {% ", ends.back(), " %}"));
      }
      if (t.type == Tok::kText) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::kText;
        n->line = t.line;
        n->col = t.col;
        n->text = t.text;
        body->push_back(std::move(n));
        ++pos_;
      } else if (t.type == Tok::kVarBegin) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::kOutput;
        n->line = t.line;
        n->col = t.col;
        ++pos_;
        LORAD_ASSIGN_OR_RETURN(n->expr, ParseTupleOrExpr());
        if (Cur().type != Tok::kVarEnd) {
          return Err(absl::StrCat("expected '}}', got ", Describe(Cur())));
        }
        ++pos_;
        body->push_back(std::move(n));
      } else if (t.type == Tok::kBlockBegin) {
        ++pos_;
        if (Cur().type != Tok::kName) {
          return Err(absl::StrCat("expected a tag name, got ",
                                  Describe(Cur())));
        }
        const std::string tag = Cur().text;
        for (absl::string_view e : ends) {
          if (tag == e) {
            *end = tag;
            ++pos_;
            return absl::OkStatus();
          }
        }
        LORAD_ASSIGN_OR_RETURN(NodePtr n, ParseStatement());
        body->push_back(std::move(n));
      } else {
        return Err(absl::StrCat("unexpected ", Describe(t)));
      }
    }
  }

  absl::StatusOr<NodePtr> ParseStatement() {
    const Token& at = Cur();
    auto n = std::make_unique<Node>();
    n->line = at.line;
    n->col = at.col;
    const std::string tag = at.text;
    ++pos_;
    std::string end;
    if (tag == "if") {
      n->kind = Node::Kind::kIf;
      for (;;) {
        LORAD_ASSIGN_OR_RETURN(ExprPtr cond, ParseExpr());
        LORAD_RETURN_IF_ERROR(ExpectBlockEnd());
        Body b;
        LORAD_RETURN_IF_ERROR(ParseBody({"elif", "else", "endif"}, &b, &end));
        n->branches.emplace_back(std::move(cond), std::move(b));
        if (end == "elif") continue;
        if (end == "else") {
          LORAD_RETURN_IF_ERROR(ExpectBlockEnd());
          Body eb;
          LORAD_RETURN_IF_ERROR(ParseBody({"endif"}, &eb, &end));
          n->branches.emplace_back(nullptr, std::move(eb));
        }
        break;
      }
    } else if (tag == "for") {
      n->kind = Node::Kind::kFor;
      LORAD_RETURN_IF_ERROR(ParseTargets(&n->targets));
      if (!IsName("in")) return Err("expected 'in' in the for tag");
      ++pos_;
      LORAD_ASSIGN_OR_RETURN(n->expr, ParseTupleOrExpr(/*no_cond=*/true));
      if (IsName("if")) {
        ++pos_;
        LORAD_ASSIGN_OR_RETURN(n->filter, ParseExpr());
      }
      if (IsName("recursive")) return Err("recursive for loops are not supported");
      LORAD_RETURN_IF_ERROR(ExpectBlockEnd());
      LORAD_RETURN_IF_ERROR(ParseBody({"else", "endfor"}, &n->body, &end));
      if (end == "else") {
        LORAD_RETURN_IF_ERROR(ExpectBlockEnd());
        LORAD_RETURN_IF_ERROR(ParseBody({"endfor"}, &n->else_body, &end));
      }
    } else if (tag == "set") {
      LORAD_ASSIGN_OR_RETURN(std::string first, ExpectName());
      n->targets.push_back(first);
      if (IsOp(".")) {
        ++pos_;
        LORAD_ASSIGN_OR_RETURN(n->ns_attr, ExpectName());
      } else {
        while (IsOp(",")) {
          ++pos_;
          LORAD_ASSIGN_OR_RETURN(std::string more, ExpectName());
          n->targets.push_back(more);
        }
      }
      if (Cur().type == Tok::kBlockEnd && n->ns_attr.empty() &&
          n->targets.size() == 1) {
        n->kind = Node::Kind::kSetBlock;
        ++pos_;
        LORAD_RETURN_IF_ERROR(ParseBody({"endset"}, &n->body, &end));
      } else {
        n->kind = Node::Kind::kSet;
        LORAD_RETURN_IF_ERROR(Expect("="));
        LORAD_ASSIGN_OR_RETURN(n->expr, ParseTupleOrExpr());
      }
    } else if (tag == "macro") {
      n->kind = Node::Kind::kMacro;
      LORAD_ASSIGN_OR_RETURN(n->name, ExpectName());
      LORAD_RETURN_IF_ERROR(Expect("("));
      while (!IsOp(")")) {
        LORAD_ASSIGN_OR_RETURN(std::string p, ExpectName());
        ExprPtr def;
        if (IsOp("=")) {
          ++pos_;
          LORAD_ASSIGN_OR_RETURN(def, ParseExpr());
        }
        n->params.emplace_back(p, std::move(def));
        if (!IsOp(",")) break;
        ++pos_;
      }
      LORAD_RETURN_IF_ERROR(Expect(")"));
      LORAD_RETURN_IF_ERROR(ExpectBlockEnd());
      LORAD_RETURN_IF_ERROR(ParseBody({"endmacro"}, &n->body, &end));
    } else if (tag == "break" || tag == "continue") {
      if (loops_ == 0) {
        return ErrorAt(at.line, at.col,
                       absl::StrCat("'", tag, "' outside a for loop"));
      }
      n->kind = tag == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
    } else if (tag == "generation") {
      n->kind = Node::Kind::kScope;
      LORAD_RETURN_IF_ERROR(ExpectBlockEnd());
      LORAD_RETURN_IF_ERROR(ParseBody({"endgeneration"}, &n->body, &end));
    } else {
      return ErrorAt(at.line, at.col,
                     absl::StrCat("unsupported tag '", tag, "'"));
    }
    if (n->kind == Node::Kind::kFor) --loops_;
    LORAD_RETURN_IF_ERROR(ExpectBlockEnd());
    return n;
  }

  absl::Status ParseTargets(std::vector<std::string>* targets) {
    const bool paren = IsOp("(");
    if (paren) ++pos_;
    for (;;) {
      LORAD_ASSIGN_OR_RETURN(std::string name, ExpectName());
      targets->push_back(name);
      if (!IsOp(",")) break;
      ++pos_;
    }
    if (paren) LORAD_RETURN_IF_ERROR(Expect(")"));
    ++loops_;  // the body is inside the loop (undone after the endfor)
    return absl::OkStatus();
  }

  // `a, b` without brackets is a tuple (in {{ }}, set and for).
  absl::StatusOr<ExprPtr> ParseTupleOrExpr(bool no_cond = false) {
    const Token& at = Cur();
    LORAD_ASSIGN_OR_RETURN(ExprPtr first,
                           no_cond ? ParseOr() : ParseExpr());
    if (!IsOp(",")) return first;
    ExprPtr t = NewExpr(Expr::Kind::kTuple, at);
    t->args.push_back(std::move(first));
    while (IsOp(",")) {
      ++pos_;
      if (Cur().type == Tok::kBlockEnd || Cur().type == Tok::kVarEnd) break;
      LORAD_ASSIGN_OR_RETURN(ExprPtr next, no_cond ? ParseOr() : ParseExpr());
      t->args.push_back(std::move(next));
    }
    return t;
  }

  absl::StatusOr<ExprPtr> ParseExpr() {
    DepthGuard g(&depth_);
    LORAD_RETURN_IF_ERROR(CheckDepth());
    const Token& at = Cur();
    LORAD_ASSIGN_OR_RETURN(ExprPtr e, ParseOr());
    while (IsName("if")) {
      ++pos_;
      ExprPtr c = NewExpr(Expr::Kind::kCond, at);
      c->args.push_back(std::move(e));
      LORAD_ASSIGN_OR_RETURN(ExprPtr cond, ParseOr());
      c->args.push_back(std::move(cond));
      ExprPtr other;
      if (IsName("else")) {
        ++pos_;
        LORAD_ASSIGN_OR_RETURN(other, ParseExpr());
      }
      c->args.push_back(std::move(other));
      e = std::move(c);
    }
    return e;
  }

  ExprPtr Binary(const Token& at, std::string op, ExprPtr a, ExprPtr b) {
    ExprPtr e = NewExpr(Expr::Kind::kBinary, at);
    e->name = std::move(op);
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return e;
  }

  absl::StatusOr<ExprPtr> ParseOr() {
    LORAD_ASSIGN_OR_RETURN(ExprPtr e, ParseAnd());
    while (IsName("or")) {
      const Token& at = Cur();
      ++pos_;
      LORAD_ASSIGN_OR_RETURN(ExprPtr r, ParseAnd());
      e = Binary(at, "or", std::move(e), std::move(r));
    }
    return e;
  }

  absl::StatusOr<ExprPtr> ParseAnd() {
    LORAD_ASSIGN_OR_RETURN(ExprPtr e, ParseNot());
    while (IsName("and")) {
      const Token& at = Cur();
      ++pos_;
      LORAD_ASSIGN_OR_RETURN(ExprPtr r, ParseNot());
      e = Binary(at, "and", std::move(e), std::move(r));
    }
    return e;
  }

  absl::StatusOr<ExprPtr> ParseNot() {
    if (IsName("not")) {
      DepthGuard g(&depth_);
      LORAD_RETURN_IF_ERROR(CheckDepth());
      ExprPtr e = NewExpr(Expr::Kind::kUnary, Cur());
      e->name = "not";
      ++pos_;
      LORAD_ASSIGN_OR_RETURN(ExprPtr inner, ParseNot());
      e->args.push_back(std::move(inner));
      return e;
    }
    return ParseCompare();
  }

  absl::StatusOr<ExprPtr> ParseCompare() {
    const Token& at = Cur();
    LORAD_ASSIGN_OR_RETURN(ExprPtr first, ParseMath1());
    ExprPtr cmp;
    for (;;) {
      std::string op;
      if (Cur().type == Tok::kOp &&
          (Cur().text == "==" || Cur().text == "!=" || Cur().text == "<" ||
           Cur().text == ">" || Cur().text == "<=" || Cur().text == ">=")) {
        op = Cur().text;
        ++pos_;
      } else if (IsName("in")) {
        op = "in";
        ++pos_;
      } else if (IsName("not") && Peek().type == Tok::kName &&
                 Peek().text == "in") {
        op = "not in";
        pos_ += 2;
      } else {
        break;
      }
      if (!cmp) {
        cmp = NewExpr(Expr::Kind::kCompare, at);
        cmp->args.push_back(std::move(first));
      }
      LORAD_ASSIGN_OR_RETURN(ExprPtr r, ParseMath1());
      cmp->ops.push_back(op);
      cmp->args.push_back(std::move(r));
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  absl::StatusOr<ExprPtr> ParseMath1() {
    LORAD_ASSIGN_OR_RETURN(ExprPtr e, ParseConcat());
    while (IsOp("+") || IsOp("-")) {
      const Token& at = Cur();
      ++pos_;
      LORAD_ASSIGN_OR_RETURN(ExprPtr r, ParseConcat());
      e = Binary(at, at.text, std::move(e), std::move(r));
    }
    return e;
  }

  absl::StatusOr<ExprPtr> ParseConcat() {
    LORAD_ASSIGN_OR_RETURN(ExprPtr e, ParseMath2());
    while (IsOp("~")) {
      const Token& at = Cur();
      ++pos_;
      LORAD_ASSIGN_OR_RETURN(ExprPtr r, ParseMath2());
      e = Binary(at, "~", std::move(e), std::move(r));
    }
    return e;
  }

  absl::StatusOr<ExprPtr> ParseMath2() {
    LORAD_ASSIGN_OR_RETURN(ExprPtr e, ParsePow());
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      const Token& at = Cur();
      ++pos_;
      LORAD_ASSIGN_OR_RETURN(ExprPtr r, ParsePow());
      e = Binary(at, at.text, std::move(e), std::move(r));
    }
    return e;
  }

  absl::StatusOr<ExprPtr> ParsePow() {
    LORAD_ASSIGN_OR_RETURN(ExprPtr e, ParseUnary());
    while (IsOp("**")) {
      const Token& at = Cur();
      ++pos_;
      LORAD_ASSIGN_OR_RETURN(ExprPtr r, ParseUnary());
      e = Binary(at, "**", std::move(e), std::move(r));
    }
    return e;
  }

  // As jinja2: filters and tests apply to the whole unary expression
  // (-3|abs is 3).
  absl::StatusOr<ExprPtr> ParseUnary(bool with_filters = true) {
    DepthGuard g(&depth_);
    LORAD_RETURN_IF_ERROR(CheckDepth());
    ExprPtr e;
    if (IsOp("-") || IsOp("+")) {
      e = NewExpr(Expr::Kind::kUnary, Cur());
      e->name = Cur().text;
      ++pos_;
      LORAD_ASSIGN_OR_RETURN(ExprPtr inner, ParseUnary(false));
      e->args.push_back(std::move(inner));
    } else {
      LORAD_ASSIGN_OR_RETURN(e, ParsePrimary());
      LORAD_ASSIGN_OR_RETURN(e, ParsePostfix(std::move(e)));
    }
    if (!with_filters) return e;
    return ParseFilters(std::move(e));
  }

  absl::Status ParseCallArgs(Expr* call) {
    LORAD_RETURN_IF_ERROR(Expect("("));
    while (!IsOp(")")) {
      if (IsOp("*") || IsOp("**")) return Err("*args and **kwargs are not supported");
      if (Cur().type == Tok::kName && Peek().type == Tok::kOp &&
          Peek().text == "=") {
        std::string key = Cur().text;
        pos_ += 2;
        LORAD_ASSIGN_OR_RETURN(ExprPtr v, ParseExpr());
        call->kwargs.emplace_back(std::move(key), std::move(v));
      } else {
        if (!call->kwargs.empty()) {
          return Err("positional argument after a keyword argument");
        }
        LORAD_ASSIGN_OR_RETURN(ExprPtr v, ParseExpr());
        call->args.push_back(std::move(v));
      }
      if (!IsOp(",")) break;
      ++pos_;
    }
    return Expect(")");
  }

  absl::StatusOr<ExprPtr> ParsePostfix(ExprPtr e) {
    for (;;) {
      const Token& at = Cur();
      if (IsOp(".")) {
        ++pos_;
        ExprPtr a;
        if (Cur().type == Tok::kName) {
          a = NewExpr(Expr::Kind::kAttr, at);
          a->name = Cur().text;
        } else if (Cur().type == Tok::kInt) {
          a = NewExpr(Expr::Kind::kItem, at);
          ExprPtr idx = NewExpr(Expr::Kind::kLiteral, Cur());
          idx->literal = Value::Int(Cur().int_value);
          a->args.push_back(std::move(e));
          a->args.push_back(std::move(idx));
          ++pos_;
          e = std::move(a);
          continue;
        } else {
          return Err(absl::StrCat("expected a name after '.', got ",
                                  Describe(Cur())));
        }
        ++pos_;
        a->args.push_back(std::move(e));
        e = std::move(a);
      } else if (IsOp("[")) {
        ++pos_;
        LORAD_ASSIGN_OR_RETURN(e, ParseSubscript(std::move(e), at));
      } else if (IsOp("(")) {
        ExprPtr c = NewExpr(Expr::Kind::kCall, at);
        c->args.push_back(std::move(e));
        LORAD_RETURN_IF_ERROR(ParseCallArgs(c.get()));
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  absl::StatusOr<ExprPtr> ParseSubscript(ExprPtr obj, const Token& at) {
    ExprPtr parts[3];
    int colons = 0;
    for (;;) {
      if (IsOp("]")) break;
      if (IsOp(":")) {
        if (++colons > 2) return Err("too many ':' in a slice");
        ++pos_;
        continue;
      }
      if (parts[colons]) return Err("expected ':' or ']' in a subscript");
      LORAD_ASSIGN_OR_RETURN(parts[colons], ParseExpr());
    }
    ++pos_;
    if (colons == 0) {
      if (!parts[0]) return ErrorAt(at.line, at.col, "empty subscript");
      ExprPtr e = NewExpr(Expr::Kind::kItem, at);
      e->args.push_back(std::move(obj));
      e->args.push_back(std::move(parts[0]));
      return e;
    }
    ExprPtr e = NewExpr(Expr::Kind::kSlice, at);
    e->args.push_back(std::move(obj));
    for (ExprPtr& p : parts) e->args.push_back(std::move(p));
    return e;
  }

  absl::StatusOr<ExprPtr> ParseFilters(ExprPtr e) {
    for (;;) {
      const Token& at = Cur();
      if (IsOp("|")) {
        ++pos_;
        LORAD_ASSIGN_OR_RETURN(std::string name, ExpectName());
        if (!HasFilter(name)) {
          return ErrorAt(at.line, at.col,
                         absl::StrCat("unsupported filter '", name, "'"));
        }
        ExprPtr f = NewExpr(Expr::Kind::kFilter, at);
        f->name = name;
        f->args.push_back(std::move(e));
        if (IsOp("(")) LORAD_RETURN_IF_ERROR(ParseCallArgs(f.get()));
        e = std::move(f);
      } else if (IsName("is")) {
        ++pos_;
        ExprPtr t = NewExpr(Expr::Kind::kTest, at);
        if (IsName("not")) {
          t->negated = true;
          ++pos_;
        }
        std::string name;
        if (IsName("none") || IsName("true") || IsName("false") ||
            Cur().type == Tok::kName) {
          name = Cur().text;
          ++pos_;
        } else if (Cur().type == Tok::kOp &&
                   (Cur().text == "==" || Cur().text == "!=" ||
                    Cur().text == "<" || Cur().text == ">" ||
                    Cur().text == "<=" || Cur().text == ">=")) {
          name = Cur().text;
          ++pos_;
        } else {
          return Err(absl::StrCat("expected a test name after 'is', got ",
                                  Describe(Cur())));
        }
        if (!HasTest(name)) {
          return ErrorAt(at.line, at.col,
                         absl::StrCat("unsupported test '", name, "'"));
        }
        t->name = name;
        t->args.push_back(std::move(e));
        if (IsOp("(")) {
          LORAD_RETURN_IF_ERROR(ParseCallArgs(t.get()));
        } else if ((Cur().type == Tok::kName || Cur().type == Tok::kString ||
                    Cur().type == Tok::kInt || Cur().type == Tok::kFloat ||
                    IsOp("[") || IsOp("{")) &&
                   !IsName("else") && !IsName("or") && !IsName("and") &&
                   !IsName("if") && !IsName("in") && !IsName("not") &&
                   !IsName("is")) {
          LORAD_ASSIGN_OR_RETURN(ExprPtr arg, ParsePrimary());
          LORAD_ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
          t->args.push_back(std::move(arg));
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  absl::StatusOr<ExprPtr> ParsePrimary() {
    DepthGuard g(&depth_);
    LORAD_RETURN_IF_ERROR(CheckDepth());
    const Token& at = Cur();
    switch (at.type) {
      case Tok::kName: {
        ++pos_;
        ExprPtr e = NewExpr(Expr::Kind::kLiteral, at);
        const std::string& n = at.text;
        if (n == "true" || n == "True") {
          e->literal = Value::Bool(true);
        } else if (n == "false" || n == "False") {
          e->literal = Value::Bool(false);
        } else if (n == "none" || n == "None") {
          e->literal = Value::None();
        } else {
          e->kind = Expr::Kind::kName;
          e->name = n;
        }
        return e;
      }
      case Tok::kString: {
        std::string s;
        while (Cur().type == Tok::kString) s += toks_[pos_++].text;
        ExprPtr e = NewExpr(Expr::Kind::kLiteral, at);
        e->literal = Value::String(std::move(s));
        return e;
      }
      case Tok::kInt: {
        ++pos_;
        ExprPtr e = NewExpr(Expr::Kind::kLiteral, at);
        e->literal = Value::Int(at.int_value);
        return e;
      }
      case Tok::kFloat: {
        if (at.text == "overflow") {
          return Err("integer literal does not fit in 64 bits");
        }
        ++pos_;
        ExprPtr e = NewExpr(Expr::Kind::kLiteral, at);
        e->literal = Value::Float(at.float_value);
        return e;
      }
      case Tok::kOp:
        if (at.text == "(") {
          ++pos_;
          if (IsOp(")")) {
            ++pos_;
            return NewExpr(Expr::Kind::kTuple, at);
          }
          LORAD_ASSIGN_OR_RETURN(ExprPtr first, ParseExpr());
          if (IsOp(")")) {
            ++pos_;
            return first;
          }
          ExprPtr t = NewExpr(Expr::Kind::kTuple, at);
          t->args.push_back(std::move(first));
          while (IsOp(",")) {
            ++pos_;
            if (IsOp(")")) break;
            LORAD_ASSIGN_OR_RETURN(ExprPtr next, ParseExpr());
            t->args.push_back(std::move(next));
          }
          LORAD_RETURN_IF_ERROR(Expect(")"));
          return t;
        }
        if (at.text == "[") {
          ++pos_;
          ExprPtr l = NewExpr(Expr::Kind::kList, at);
          while (!IsOp("]")) {
            LORAD_ASSIGN_OR_RETURN(ExprPtr item, ParseExpr());
            l->args.push_back(std::move(item));
            if (!IsOp(",")) break;
            ++pos_;
          }
          LORAD_RETURN_IF_ERROR(Expect("]"));
          return l;
        }
        if (at.text == "{") {
          ++pos_;
          ExprPtr d = NewExpr(Expr::Kind::kDict, at);
          while (!IsOp("}")) {
            LORAD_ASSIGN_OR_RETURN(ExprPtr k, ParseExpr());
            LORAD_RETURN_IF_ERROR(Expect(":"));
            LORAD_ASSIGN_OR_RETURN(ExprPtr v, ParseExpr());
            d->args.push_back(std::move(k));
            d->args.push_back(std::move(v));
            if (!IsOp(",")) break;
            ++pos_;
          }
          LORAD_RETURN_IF_ERROR(Expect("}"));
          return d;
        }
        break;
      default:
        break;
    }
    return Err(absl::StrCat("unexpected ", Describe(at)));
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loops_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ParsedTemplate>> ParseTokens(
    std::vector<Token> tokens) {
  return Parser(std::move(tokens)).Run();
}

}  // namespace lorad::model::jinja
