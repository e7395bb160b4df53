// Statements: {% if %}, {% for %}, {% set %}, {% macro %}, {% break %},
// {% continue %}, {% generation %}; anything else is an error naming it.
#include "jinja_parser.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lorad/common/status_macros.h"

namespace lorad::model::jinja {

absl::StatusOr<std::unique_ptr<ParsedTemplate>> Parser::Run() {
  auto t = std::make_unique<ParsedTemplate>();
  std::string end;
  LORAD_RETURN_IF_ERROR(ParseBody({}, &t->body, &end));
  t->has_generation = has_generation_;
  return t;
}

absl::Status Parser::ParseBody(const std::vector<absl::string_view>& ends,
                               Body* body, std::string* end) {
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
        return Err(absl::StrCat("expected a tag name, got ", Describe(Cur())));
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

absl::StatusOr<NodePtr> Parser::ParseStatement() {
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
    if (IsName("recursive"))
      return Err("recursive for loops are not supported");
    LORAD_RETURN_IF_ERROR(ExpectBlockEnd());
    LORAD_RETURN_IF_ERROR(ParseBody({"else", "endfor"}, &n->body, &end));
    --loops_;
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
    const int outer_loops = loops_;
    loops_ = 0;  // a macro body is not inside the caller's loop
    LORAD_RETURN_IF_ERROR(ParseBody({"endmacro"}, &n->body, &end));
    loops_ = outer_loops;
  } else if (tag == "break" || tag == "continue") {
    if (loops_ == 0) {
      return ErrorAt(at.line, at.col,
                     absl::StrCat("'", tag, "' outside a for loop"));
    }
    n->kind = tag == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
  } else if (tag == "generation") {
    n->kind = Node::Kind::kGeneration;
    has_generation_ = true;
    LORAD_RETURN_IF_ERROR(ExpectBlockEnd());
    LORAD_RETURN_IF_ERROR(ParseBody({"endgeneration"}, &n->body, &end));
  } else {
    return ErrorAt(at.line, at.col,
                   absl::StrCat("unsupported tag '", tag, "'"));
  }
  LORAD_RETURN_IF_ERROR(ExpectBlockEnd());
  return n;
}

absl::Status Parser::ParseTargets(std::vector<std::string>* targets) {
  const bool paren = IsOp("(");
  if (paren) ++pos_;
  for (;;) {
    LORAD_ASSIGN_OR_RETURN(std::string name, ExpectName());
    targets->push_back(name);
    if (!IsOp(",")) break;
    ++pos_;
  }
  if (paren) LORAD_RETURN_IF_ERROR(Expect(")"));
  ++loops_;  // the body is inside the loop (undone before any else)
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ParsedTemplate>> ParseTokens(
    std::vector<Token> tokens) {
  return Parser(std::move(tokens)).Run();
}

}  // namespace lorad::model::jinja
