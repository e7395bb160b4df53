// Expressions, with jinja2's operator precedence:
//   cond (a if c else b) < or < and < not < comparisons (== != < > <= >=
//   in, not in) < + - < ~ < * / // % < ** < unary - + < postfix (.x [i]
//   (args)) with filters (|f) and tests (is t) applied after the unary.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "jinja_parser.h"
#include "lorad/common/status_macros.h"

namespace lorad::model::jinja {

// `a, b` without brackets is a tuple (in {{ }}, set and for).
absl::StatusOr<ExprPtr> Parser::ParseTupleOrExpr(bool no_cond) {
  const Token& at = Cur();
  LORAD_ASSIGN_OR_RETURN(ExprPtr first, no_cond ? ParseOr() : ParseExpr());
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

absl::StatusOr<ExprPtr> Parser::ParseExpr() {
  DepthGuard g(&depth_);
  LORAD_RETURN_IF_ERROR(CheckDepth());
  const Token& at = Cur();
  LORAD_ASSIGN_OR_RETURN(ExprPtr e, ParseOr());
  int chain = 0;  // each round nests the tree one deeper
  while (IsName("if")) {
    LORAD_RETURN_IF_ERROR(Deeper(&chain));
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

absl::StatusOr<ExprPtr> Parser::ParseLeftAssoc(
    std::initializer_list<const char*> ops, bool names,
    absl::StatusOr<ExprPtr> (Parser::*next)()) {
  LORAD_ASSIGN_OR_RETURN(ExprPtr e, (this->*next)());
  int chain = 0;  // each round nests the tree one deeper
  for (;;) {
    const char* matched = nullptr;
    for (const char* op : ops) {
      if (names ? IsName(op) : IsOp(op)) matched = op;
    }
    if (matched == nullptr) return e;
    LORAD_RETURN_IF_ERROR(Deeper(&chain));
    const Token& at = Cur();
    ++pos_;
    LORAD_ASSIGN_OR_RETURN(ExprPtr r, (this->*next)());
    e = Binary(at, matched, std::move(e), std::move(r));
  }
}

absl::StatusOr<ExprPtr> Parser::ParseOr() {
  return ParseLeftAssoc({"or"}, true, &Parser::ParseAnd);
}

absl::StatusOr<ExprPtr> Parser::ParseAnd() {
  return ParseLeftAssoc({"and"}, true, &Parser::ParseNot);
}

absl::StatusOr<ExprPtr> Parser::ParseNot() {
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

absl::StatusOr<ExprPtr> Parser::ParseCompare() {
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

absl::StatusOr<ExprPtr> Parser::ParseMath1() {
  return ParseLeftAssoc({"+", "-"}, false, &Parser::ParseConcat);
}

absl::StatusOr<ExprPtr> Parser::ParseConcat() {
  return ParseLeftAssoc({"~"}, false, &Parser::ParseMath2);
}

absl::StatusOr<ExprPtr> Parser::ParseMath2() {
  return ParseLeftAssoc({"*", "/", "//", "%"}, false, &Parser::ParsePow);
}

absl::StatusOr<ExprPtr> Parser::ParsePow() {
  return ParseLeftAssoc({"**"}, false, &Parser::ParseUnaryFiltered);
}

// As jinja2: filters and tests apply to the whole unary expression
// (-3|abs is 3).
absl::StatusOr<ExprPtr> Parser::ParseUnary(bool with_filters) {
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

absl::Status Parser::ParseCallArgs(Expr* call) {
  LORAD_RETURN_IF_ERROR(Expect("("));
  while (!IsOp(")")) {
    if (IsOp("*") || IsOp("**"))
      return Err("*args and **kwargs are not supported");
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

absl::StatusOr<ExprPtr> Parser::ParsePostfix(ExprPtr e) {
  int chain = 0;  // each round nests the tree one deeper
  for (;;) {
    LORAD_RETURN_IF_ERROR(Deeper(&chain));
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
        return Err(
            absl::StrCat("expected a name after '.', got ", Describe(Cur())));
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

absl::StatusOr<ExprPtr> Parser::ParseSubscript(ExprPtr obj, const Token& at) {
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

absl::StatusOr<ExprPtr> Parser::ParseFilters(ExprPtr e) {
  int chain = 0;  // each round nests the tree one deeper
  for (;;) {
    LORAD_RETURN_IF_ERROR(Deeper(&chain));
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

absl::StatusOr<ExprPtr> Parser::ParsePrimary() {
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

}  // namespace lorad::model::jinja
