// The compiled form of a JSON Schema (or of "any JSON object") that the
// JSON matcher walks: a graph of value nodes, each with the fewest bytes a
// complete value of it takes, which the matcher adds up to steer a
// generation to a close in time. Not part of the public API.
#ifndef LORAD_MODEL_SRC_JSON_GRAMMAR_H_
#define LORAD_MODEL_SRC_JSON_GRAMMAR_H_

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace lorad::model::json_internal {

// Bounds that keep every output finite and every state small.
inline constexpr int kMaxWhitespaceRun = 8;   // bytes between two tokens
inline constexpr int kMaxIntegerDigits = 15;  // also the fraction's
inline constexpr int kMaxExponentDigits = 2;
inline constexpr int kMaxAnyDepth = 16;    // frames, for untyped values
inline constexpr int kMaxProperties = 64;  // per object schema
inline constexpr int64_t kMaxMinBytes = int64_t{1} << 20;
inline constexpr int64_t kInfinity = int64_t{1} << 40;
inline constexpr int64_t kUnbounded = int64_t{1} << 40;

inline int64_t SatAdd(int64_t a, int64_t b) {
  return a + b >= kInfinity ? kInfinity : a + b;
}
inline int64_t SatMul(int64_t a, int64_t b) {
  if (a == 0 || b == 0) return 0;
  return a >= kInfinity / b ? kInfinity : a * b;
}

enum class NodeKind : uint8_t {
  kAny,     // any JSON value
  kObject,  // declared properties only, in declared order
  kArray,
  kString,  // any string
  kNumber,
  kInteger,
  kLiteral,  // one of a set of serialized values (enum, const, booleans)
  kAnyOf,    // branches are never kAnyOf themselves
};

// The serialized literals of a kLiteral node as a byte trie.
struct LiteralTrie {
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;
    bool accepting = false;
    int64_t min_rest = 0;      // bytes to an accepting node
    int64_t min_rest_top = 0;  // ... and to an end as the top-level value
  };
  std::vector<Node> nodes;  // nodes[0] is the root

  void Insert(std::string_view text);
  void ComputeCosts();  // fills min_rest and min_rest_top
  int32_t Child(int32_t node, uint8_t byte) const;
};

struct Property {
  std::string key_json;  // the key as a JSON string, quotes included
  int32_t value = -1;    // node
  bool required = false;
  int64_t entry_cost = 0;  // "key": plus the value's fewest bytes
};

struct Node {
  NodeKind kind = NodeKind::kAny;
  // kObject. Suffix tables over the properties, index i in [0, n]:
  std::vector<Property> properties;
  std::vector<int64_t> required_cost;   // sum of entry bytes of required >= i
  std::vector<int64_t> required_count;  // required properties >= i
  std::vector<int64_t> min_entry;       // cheapest entry >= i
  std::vector<uint64_t> candidates;     // keys that may come next at i
  // kArray.
  int32_t items = -1;
  int64_t min_items = 0;
  int64_t max_items = kUnbounded;
  int64_t item_min_len = 0;
  // kAny: only an object (json_object's top level).
  bool object_only = false;
  // kLiteral.
  LiteralTrie literal;
  // kAnyOf.
  std::vector<int32_t> branches;
  // The fewest bytes of a value, nested and as the whole output (a number
  // at the top needs a byte after it to end).
  int64_t min_len = 0;
  int64_t min_top = 0;

  // Bytes to finish an object after a value, a '{' and a ',', with the
  // properties from `next` on still to come.
  int64_t AfterValueCost(int32_t next) const;
  int64_t AfterOpenCost(int32_t next) const;
  int64_t AfterCommaCost(int32_t next) const;
  // Array bytes to finish after '[' / ',' / an item, `count` items written.
  int64_t ArrayAfterOpenCost() const;
  int64_t ArrayAfterCommaCost(int64_t count) const;
  int64_t ArrayAfterItemCost(int64_t count) const;
};

struct Grammar {
  std::vector<Node> nodes;
  int32_t root = -1;
  int32_t any_literal = -1;  // true / false / null, for kAny values
  int32_t any_node = -1;     // a kAny node
  // More than one output byte can add to the bytes still needed (a mask
  // skips computing them while the budget is that far ahead).
  int64_t max_jump = 0;
};

// Fills costs of nodes[index] from its children's (which must be final).
void ComputeNodeCosts(Grammar& grammar, int32_t index);

// Sets grammar.max_jump from the final nodes.
void ComputeMaxJump(Grammar& grammar);

// Grammar for "json_object": any object at the top. Every grammar starts
// from it (its any_literal and any_node serve untyped values).
Grammar AnyObjectGrammar();

// Compiles a JSON Schema (subset: see json_constraint.h). Every byte of a
// key or literal must be in `single_byte` (bytes the vocabulary has a
// one-byte token for), so that a close is always reachable.
// InvalidArgument naming the keyword and its JSON pointer.
absl::StatusOr<Grammar> CompileSchema(std::string_view schema_json,
                                      const std::bitset<256>& single_byte);

}  // namespace lorad::model::json_internal

#endif  // LORAD_MODEL_SRC_JSON_GRAMMAR_H_
