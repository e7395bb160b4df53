// What each token of a vocabulary adds to the output text, and those bytes
// in a trie, so that a mask walks shared prefixes once and drops whole
// subtrees the grammar refuses. Not part of the public API.
#ifndef LORAD_MODEL_SRC_JSON_VOCABULARY_H_
#define LORAD_MODEL_SRC_JSON_VOCABULARY_H_

#include <bitset>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lorad/model/tokenizer.h"

namespace lorad::model::json_internal {

// A byte trie of token strings; node 0 is the root (the empty string).
class TokenTrie {
 public:
  struct Node {
    uint32_t edge_begin = 0;
    uint32_t edge_count = 0;
    uint32_t token_begin = 0;  // into tokens(): the ids that end here
    uint32_t token_count = 0;
  };
  struct Edge {
    uint8_t byte;
    uint32_t child;
  };

  // `bytes[id]` empty: the id is left out.
  static TokenTrie Build(const std::vector<std::string>& bytes);

  const Node& node(uint32_t i) const { return nodes_[i]; }
  const Edge& edge(uint32_t i) const { return edges_[i]; }
  int32_t token(uint32_t i) const { return tokens_[i]; }
  size_t node_count() const { return nodes_.size(); }
  size_t max_length() const { return max_length_; }  // of a token string

 private:
  uint32_t BuildNode(
      const std::vector<std::pair<std::string_view, int32_t>>& sorted,
      size_t lo, size_t hi, size_t depth);

  std::vector<Node> nodes_;
  std::vector<Edge> edges_;
  std::vector<int32_t> tokens_;
  size_t max_length_ = 0;
};

struct Vocabulary {
  int64_t size = 0;  // ids [0, size)
  // The bytes of each id as the first token of the output and after it;
  // empty for ids never allowed (special, added, unknown, no bytes).
  std::vector<std::string> first;
  std::vector<std::string> middle;
  TokenTrie first_trie;
  TokenTrie middle_trie;
  // Bytes that one token alone (after the first) adds.
  std::bitset<256> single_byte;
  // Inside a string, a plain byte (printable ASCII but '"' and '\\') leaves
  // the state as it is: the tokens of plain bytes only, and the others from
  // their first byte that is not plain, in a trie.
  std::vector<int32_t> plain_string_tokens;
  TokenTrie string_suffix_trie;
};

inline bool IsPlainStringByte(uint8_t c) {
  return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

// FailedPrecondition when the vocabulary lacks a one-byte token that a
// close may need (printable ASCII; UTF-8 continuation bytes when tokens may
// end inside a character; the first byte of every JSON value as the first
// token), naming the byte.
absl::StatusOr<std::unique_ptr<Vocabulary>> BuildVocabulary(
    const Tokenizer& tokenizer);

}  // namespace lorad::model::json_internal

#endif  // LORAD_MODEL_SRC_JSON_VOCABULARY_H_
