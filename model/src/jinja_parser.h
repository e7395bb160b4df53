// The parser of jinja_parser.cc (statements) and jinja_parser_expr.cc
// (expressions): recursive descent over the tokens with jinja2's operator
// precedence, every nesting level counted against kMaxParseDepth.
#ifndef LORAD_MODEL_JINJA_PARSER_H_
#define LORAD_MODEL_JINJA_PARSER_H_

#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "jinja_internal.h"

namespace lorad::model::jinja {

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}
  absl::StatusOr<std::unique_ptr<ParsedTemplate>> Run();

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
      case Tok::kEof:
        return "end of template";
      case Tok::kBlockEnd:
        return "'%}'";
      case Tok::kVarEnd:
        return "'}}'";
      case Tok::kString:
        return "a string";
      default:
        return absl::StrCat("'", t.text, "'");
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
  // For operator and postfix chains, which build left-deep trees in a loop.
  absl::Status Deeper(int* chain) const {
    if (depth_ + ++*chain > kMaxParseDepth) {
      return Err(absl::StrCat("expression nested deeper than ", kMaxParseDepth,
                              " levels"));
    }
    return absl::OkStatus();
  }
  absl::Status CheckDepth() const {
    if (depth_ > kMaxParseDepth) {
      return Err(
          absl::StrCat("nested deeper than ", kMaxParseDepth, " levels"));
    }
    return absl::OkStatus();
  }

  ExprPtr Binary(const Token& at, std::string op, ExprPtr a, ExprPtr b) {
    ExprPtr e = NewExpr(Expr::Kind::kBinary, at);
    e->name = std::move(op);
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return e;
  }

  // Statements until a block tag named in `ends`; its name goes to *end.
  absl::Status ParseBody(const std::vector<absl::string_view>& ends, Body* body,
                         std::string* end);
  absl::StatusOr<NodePtr> ParseStatement();
  absl::Status ParseTargets(std::vector<std::string>* targets);
  absl::StatusOr<ExprPtr> ParseTupleOrExpr(bool no_cond = false);
  absl::StatusOr<ExprPtr> ParseExpr();
  // One left-associative level of binary operators: operands parsed by
  // `next`, joined by any of `ops` (keywords when `names`, else operator
  // tokens).
  absl::StatusOr<ExprPtr> ParseLeftAssoc(
      std::initializer_list<const char*> ops, bool names,
      absl::StatusOr<ExprPtr> (Parser::*next)());
  absl::StatusOr<ExprPtr> ParseOr();
  absl::StatusOr<ExprPtr> ParseAnd();
  absl::StatusOr<ExprPtr> ParseNot();
  absl::StatusOr<ExprPtr> ParseCompare();
  absl::StatusOr<ExprPtr> ParseMath1();
  absl::StatusOr<ExprPtr> ParseConcat();
  absl::StatusOr<ExprPtr> ParseMath2();
  absl::StatusOr<ExprPtr> ParsePow();
  absl::StatusOr<ExprPtr> ParseUnary(bool with_filters = true);
  absl::StatusOr<ExprPtr> ParseUnaryFiltered() { return ParseUnary(true); }
  absl::Status ParseCallArgs(Expr* call);
  absl::StatusOr<ExprPtr> ParsePostfix(ExprPtr e);
  absl::StatusOr<ExprPtr> ParseSubscript(ExprPtr obj, const Token& at);
  absl::StatusOr<ExprPtr> ParseFilters(ExprPtr e);
  absl::StatusOr<ExprPtr> ParsePrimary();

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loops_ = 0;
  bool has_generation_ = false;
};

}  // namespace lorad::model::jinja

#endif  // LORAD_MODEL_JINJA_PARSER_H_
