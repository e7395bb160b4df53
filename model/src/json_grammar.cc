// Costs of the compiled grammar: the fewest bytes that finish a value from
// each point, which steering relies on being exact along some path.
#include "json_grammar.h"

#include <algorithm>

namespace lorad::model::json_internal {

void LiteralTrie::Insert(std::string_view text) {
  if (nodes.empty()) nodes.emplace_back();
  int32_t at = 0;
  for (char c : text) {
    const auto byte = static_cast<uint8_t>(c);
    int32_t next = Child(at, byte);
    if (next < 0) {
      next = static_cast<int32_t>(nodes.size());
      nodes[at].children.emplace_back(byte, next);
      nodes.emplace_back();
    }
    at = next;
  }
  nodes[at].accepting = true;
}

int32_t LiteralTrie::Child(int32_t node, uint8_t byte) const {
  for (const auto& [b, child] : nodes[node].children) {
    if (b == byte) return child;
  }
  return -1;
}

void LiteralTrie::ComputeCosts() {
  // Children always have larger indices than their parent.
  for (size_t i = nodes.size(); i-- > 0;) {
    Node& node = nodes[i];
    node.min_rest = node.accepting ? 0 : kInfinity;
    // An accepting node with children ends only at a byte that follows it
    // (the parent's, or at the top a whitespace byte).
    node.min_rest_top =
        node.accepting ? (node.children.empty() ? 0 : 1) : kInfinity;
    for (const auto& [byte, child] : node.children) {
      node.min_rest = std::min(node.min_rest, 1 + nodes[child].min_rest);
      node.min_rest_top =
          std::min(node.min_rest_top, 1 + nodes[child].min_rest_top);
    }
  }
}

int64_t Node::AfterValueCost(int32_t next) const {
  const int64_t count = required_count[next];
  if (count == 0) return 1;                       // }
  return SatAdd(required_cost[next], count + 1);  // ,"k":v ... }
}

int64_t Node::AfterOpenCost(int32_t next) const {
  const int64_t count = required_count[next];
  if (count == 0) return 1;
  return SatAdd(required_cost[next], count);  // "k":v,"k":v}
}

int64_t Node::AfterCommaCost(int32_t next) const {
  if (required_count[next] > 0) return AfterOpenCost(next);
  return SatAdd(min_entry[next], 1);
}

int64_t Node::ArrayAfterOpenCost() const {
  if (min_items == 0) return 1;
  return ArrayAfterCommaCost(0);
}

int64_t Node::ArrayAfterCommaCost(int64_t count) const {
  const int64_t k = std::max<int64_t>(min_items - count, 1);
  return SatAdd(SatMul(k, item_min_len), k);  // k items, k-1 commas, ]
}

int64_t Node::ArrayAfterItemCost(int64_t count) const {
  if (count >= min_items) return 1;
  return SatAdd(1, ArrayAfterCommaCost(count));
}

void ComputeNodeCosts(Grammar& grammar, int32_t index) {
  Node& node = grammar.nodes[index];
  switch (node.kind) {
    case NodeKind::kAny:
      node.min_len = node.object_only ? 2 : 1;  // {} or 0
      node.min_top = 2;                         // {} or "0 "
      break;
    case NodeKind::kString:
      node.min_len = node.min_top = 2;
      break;
    case NodeKind::kNumber:
      node.min_len = 1;
      node.min_top = 2;  // "0" may go on ("0.5"): a space ends it
      break;
    case NodeKind::kInteger:
      node.min_len = node.min_top = 1;  // nothing may follow "0"
      break;
    case NodeKind::kLiteral:
      node.literal.ComputeCosts();
      node.min_len = node.literal.nodes[0].min_rest;
      node.min_top = node.literal.nodes[0].min_rest_top;
      break;
    case NodeKind::kObject: {
      const size_t n = node.properties.size();
      node.required_cost.assign(n + 1, 0);
      node.required_count.assign(n + 1, 0);
      node.min_entry.assign(n + 1, kInfinity);
      node.candidates.assign(n + 1, 0);
      for (size_t i = n; i-- > 0;) {
        Property& p = node.properties[i];
        p.entry_cost = SatAdd(static_cast<int64_t>(p.key_json.size()) + 1,
                              grammar.nodes[p.value].min_len);
        node.required_cost[i] =
            SatAdd(node.required_cost[i + 1], p.required ? p.entry_cost : 0);
        node.required_count[i] = node.required_count[i + 1] + p.required;
        node.min_entry[i] = std::min(node.min_entry[i + 1], p.entry_cost);
        node.candidates[i] =
            (uint64_t{1} << i) | (p.required ? 0 : node.candidates[i + 1]);
      }
      node.min_len = node.min_top = SatAdd(1, node.AfterOpenCost(0));
      break;
    }
    case NodeKind::kArray:
      node.item_min_len = grammar.nodes[node.items].min_len;
      node.min_len = node.min_top = SatAdd(1, node.ArrayAfterOpenCost());
      break;
    case NodeKind::kAnyOf:
      node.min_len = node.min_top = kInfinity;
      for (int32_t branch : node.branches) {
        node.min_len = std::min(node.min_len, grammar.nodes[branch].min_len);
        node.min_top = std::min(node.min_top, grammar.nodes[branch].min_top);
      }
      break;
  }
}

void ComputeMaxJump(Grammar& grammar) {
  // One byte adds at most a value's, a literal's or an entry's bytes (a
  // push, a literal branch or a key chosen) and a few structural ones.
  int64_t most = 0;
  for (const Node& node : grammar.nodes) {
    most = std::max({most, node.min_len, node.min_top});
    for (const Property& p : node.properties) {
      most = std::max(most, p.entry_cost);
    }
    most = std::max(most, static_cast<int64_t>(node.literal.nodes.size()));
  }
  grammar.max_jump = SatAdd(SatMul(most, 4), 16);
}

Grammar AnyObjectGrammar() {
  Grammar grammar;
  Node literal;
  literal.kind = NodeKind::kLiteral;
  for (const char* text : {"true", "false", "null"}) {
    literal.literal.Insert(text);
  }
  grammar.nodes.push_back(std::move(literal));
  grammar.any_literal = 0;
  ComputeNodeCosts(grammar, 0);
  Node any;
  any.kind = NodeKind::kAny;
  grammar.nodes.push_back(std::move(any));
  grammar.any_node = 1;
  ComputeNodeCosts(grammar, 1);
  Node object;
  object.kind = NodeKind::kAny;
  object.object_only = true;
  grammar.nodes.push_back(std::move(object));
  grammar.root = 2;
  ComputeNodeCosts(grammar, 2);
  ComputeMaxJump(grammar);
  return grammar;
}

}  // namespace lorad::model::json_internal
