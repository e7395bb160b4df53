// JsonConstraintFactory and the TokenConstraint it makes: the matcher
// walked over the vocabulary trie for each mask.
#include "lorad/model/json_constraint.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "json_grammar.h"
#include "json_matcher.h"
#include "json_vocabulary.h"

namespace lorad::model {
namespace {

using json_internal::Grammar;
using json_internal::Matcher;
using json_internal::Thread;
using json_internal::TokenTrie;
using json_internal::Vocabulary;

class JsonConstraint final : public TokenConstraint {
 public:
  JsonConstraint(const Vocabulary& vocabulary,
                 std::shared_ptr<const Grammar> grammar)
      : vocabulary_(vocabulary),
        grammar_(std::move(grammar)),
        matcher_(*grammar_),
        state_(matcher_.Start()) {}

  void Mask(int64_t remaining, std::vector<uint8_t>& allowed) override {
    last_remaining_ = remaining;
    if (matcher_.Complete(state_)) {
      std::fill(allowed.begin(), allowed.end(), 0);
      return;
    }
    limit_ = Limit(remaining);
    // Costs need computing only where the budget may be near: no byte adds
    // more than max_jump to any thread's.
    free_depth_ = (limit_ - matcher_.MaxCost(state_)) / grammar_->max_jump;
    ok_.assign(vocabulary_.size, 0);
    const int64_t cost = matcher_.Cost(state_);
    const TokenTrie* trie =
        first_ ? &vocabulary_.first_trie : &vocabulary_.middle_trie;
    if (!first_ && Matcher::InStringBody(state_)) {
      // Plain bytes keep the state: such tokens fit when it does, and the
      // others depend on their bytes from the first one that is not plain.
      if (cost <= limit_) {
        for (int32_t id : vocabulary_.plain_string_tokens) ok_[id] = 1;
      }
      trie = &vocabulary_.string_suffix_trie;
    }
    states_.resize(trie->max_length() + 1);
    Walk(*trie, 0, 0, &state_, cost);
    for (size_t id = 0; id < allowed.size(); ++id) {
      if (static_cast<int64_t>(id) >= vocabulary_.size || !ok_[id]) {
        allowed[id] = 0;
      }
    }
  }

  absl::Status Accept(int32_t token) override {
    const std::vector<std::string>& bytes =
        first_ ? vocabulary_.first : vocabulary_.middle;
    if (token < 0 || token >= vocabulary_.size || bytes[token].empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token ", token,
          " may not come in JSON output (special, added or unknown)"));
    }
    if (matcher_.Complete(state_)) {
      return absl::InvalidArgumentError(
          absl::StrCat("token ", token, " after the JSON output is complete"));
    }
    std::vector<Thread> next = state_;
    for (char c : bytes[token]) {
      if (!matcher_.Step(next, static_cast<uint8_t>(c))) {
        return absl::InvalidArgumentError(absl::StrCat(
            "token ", token, " does not continue the JSON output"));
      }
    }
    if (last_remaining_.has_value() &&
        matcher_.Cost(next) > Limit(*last_remaining_)) {
      return absl::InvalidArgumentError(
          absl::StrCat("token ", token,
                       " leaves too little room to finish the JSON output"));
    }
    state_ = std::move(next);
    first_ = false;
    last_remaining_.reset();
    return absl::OkStatus();
  }

  bool Complete() const override { return matcher_.Complete(state_); }

 private:
  // The most bytes still to write a token may leave: what fits in the
  // tokens after it, or, when that was already too few, one less than now.
  int64_t Limit(int64_t remaining) const {
    return std::max(remaining - 1, matcher_.Cost(state_) - 1);
  }

  // Visits the children of trie node `index` (a path of `depth` bytes
  // that leaves `state`, which needs `cost` bytes or -1: not computed).
  void Walk(const TokenTrie& trie, uint32_t index, size_t depth,
            const std::vector<Thread>* state, int64_t cost) {
    const TokenTrie::Node& node = trie.node(index);
    for (uint32_t e = node.edge_begin; e < node.edge_begin + node.edge_count;
         ++e) {
      const TokenTrie::Edge& edge = trie.edge(e);
      const std::vector<Thread>* next = state;
      int64_t next_cost = cost;
      if (!matcher_.Unchanged(*state, edge.byte)) {
        std::vector<Thread>& buffer = states_[depth + 1];
        buffer = *state;
        if (!matcher_.Step(buffer, edge.byte)) continue;
        next = &buffer;
        next_cost = -1;
      }
      const TokenTrie::Node& child = trie.node(edge.child);
      if (child.token_count > 0) {
        bool fits = static_cast<int64_t>(depth) < free_depth_;
        if (!fits) {
          if (next_cost < 0) next_cost = matcher_.Cost(*next);
          fits = next_cost <= limit_;
        }
        if (fits) {
          for (uint32_t t = child.token_begin;
               t < child.token_begin + child.token_count; ++t) {
            ok_[trie.token(t)] = 1;
          }
        }
      }
      if (child.edge_count > 0) {
        Walk(trie, edge.child, depth + 1, next, next_cost);
      }
    }
  }

  const Vocabulary& vocabulary_;
  std::shared_ptr<const Grammar> grammar_;
  Matcher matcher_;
  std::vector<Thread> state_;
  bool first_ = true;
  std::optional<int64_t> last_remaining_;
  // Mask's scratch: the state after each byte of the trie path, the ids
  // allowed so far and the cost limit.
  std::vector<std::vector<Thread>> states_;
  std::vector<uint8_t> ok_;
  int64_t limit_ = 0;
  int64_t free_depth_ = 0;  // tokens this long or shorter fit for sure
};

}  // namespace

JsonConstraintFactory::JsonConstraintFactory() = default;
JsonConstraintFactory::~JsonConstraintFactory() = default;

absl::StatusOr<std::unique_ptr<JsonConstraintFactory>>
JsonConstraintFactory::Create(const Tokenizer& tokenizer) {
  absl::StatusOr<std::unique_ptr<Vocabulary>> vocabulary =
      json_internal::BuildVocabulary(tokenizer);
  if (!vocabulary.ok()) return vocabulary.status();
  std::unique_ptr<JsonConstraintFactory> factory(new JsonConstraintFactory());
  factory->vocabulary_ = *std::move(vocabulary);
  factory->any_object_ =
      std::make_shared<const Grammar>(json_internal::AnyObjectGrammar());
  return factory;
}

absl::StatusOr<std::shared_ptr<const Grammar>>
JsonConstraintFactory::GrammarFor(std::string_view type,
                                  std::string_view schema_json) const {
  if (type == "json_object") return any_object_;
  if (type != "json_schema") {
    return absl::InvalidArgumentError(
        absl::StrCat("response_format type \"", std::string(type),
                     "\" is not supported here (json_object, json_schema)"));
  }
  absl::StatusOr<Grammar> grammar =
      json_internal::CompileSchema(schema_json, vocabulary_->single_byte);
  if (!grammar.ok()) return grammar.status();
  return std::make_shared<const Grammar>(*std::move(grammar));
}

absl::StatusOr<std::unique_ptr<TokenConstraint>> JsonConstraintFactory::Create(
    std::string_view type, std::string_view schema_json) const {
  absl::StatusOr<std::shared_ptr<const Grammar>> grammar =
      GrammarFor(type, schema_json);
  if (!grammar.ok()) return grammar.status();
  return std::make_unique<JsonConstraint>(*vocabulary_, *std::move(grammar));
}

absl::StatusOr<int64_t> JsonConstraintFactory::MinTokens(
    std::string_view type, std::string_view schema_json) const {
  absl::StatusOr<std::shared_ptr<const Grammar>> grammar =
      GrammarFor(type, schema_json);
  if (!grammar.ok()) return grammar.status();
  return (*grammar)->nodes[(*grammar)->root].min_top;
}

}  // namespace lorad::model
