// Token bytes from the tokenizer's decoder, and the trie over them.
#include "json_vocabulary.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include "absl/strings/str_format.h"

namespace lorad::model::json_internal {
namespace {

// Whether `text` is whole UTF-8 characters.
bool IsWholeUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<uint8_t>(text[i]);
    size_t length = c < 0x80                 ? 1
                    : c >= 0xC2 && c <= 0xDF ? 2
                    : c >= 0xE0 && c <= 0xEF ? 3
                    : c >= 0xF0 && c <= 0xF4 ? 4
                                             : 0;
    if (length == 0 || i + length > text.size()) return false;
    for (size_t k = 1; k < length; ++k) {
      if ((static_cast<uint8_t>(text[i + k]) & 0xC0) != 0x80) return false;
    }
    i += length;
  }
  return true;
}

absl::Status Missing(uint8_t byte, std::string_view where) {
  return absl::FailedPreconditionError(absl::StrFormat(
      "JSON output needs a token for the single byte 0x%02X %s; this "
      "tokenizer has none",
      byte, where));
}

}  // namespace

TokenTrie TokenTrie::Build(const std::vector<std::string>& bytes) {
  TokenTrie trie;
  std::vector<std::pair<std::string_view, int32_t>> sorted;
  for (size_t id = 0; id < bytes.size(); ++id) {
    if (!bytes[id].empty()) {
      sorted.emplace_back(bytes[id], static_cast<int32_t>(id));
      trie.max_length_ = std::max(trie.max_length_, bytes[id].size());
    }
  }
  std::sort(sorted.begin(), sorted.end());
  trie.BuildNode(sorted, 0, sorted.size(), 0);
  return trie;
}

uint32_t TokenTrie::BuildNode(
    const std::vector<std::pair<std::string_view, int32_t>>& sorted, size_t lo,
    size_t hi, size_t depth) {
  const auto index = static_cast<uint32_t>(nodes_.size());
  nodes_.emplace_back();
  // Strings that end here sort first.
  size_t i = lo;
  nodes_[index].token_begin = static_cast<uint32_t>(tokens_.size());
  while (i < hi && sorted[i].first.size() == depth) {
    tokens_.push_back(sorted[i++].second);
  }
  nodes_[index].token_count =
      static_cast<uint32_t>(tokens_.size()) - nodes_[index].token_begin;
  std::vector<std::pair<size_t, size_t>> groups;
  while (i < hi) {
    size_t j = i;
    while (j < hi && sorted[j].first[depth] == sorted[i].first[depth]) ++j;
    groups.emplace_back(i, j);
    i = j;
  }
  const auto edge_begin = static_cast<uint32_t>(edges_.size());
  nodes_[index].edge_begin = edge_begin;
  nodes_[index].edge_count = static_cast<uint32_t>(groups.size());
  edges_.resize(edges_.size() + groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto [begin, end] = groups[g];
    const auto byte = static_cast<uint8_t>(sorted[begin].first[depth]);
    const uint32_t child = BuildNode(sorted, begin, end, depth + 1);
    edges_[edge_begin + g] = Edge{byte, child};
  }
  return index;
}

absl::StatusOr<std::unique_ptr<Vocabulary>> BuildVocabulary(
    const Tokenizer& tokenizer) {
  auto vocab = std::make_unique<Vocabulary>();
  vocab->size = tokenizer.vocab_size();
  vocab->first.resize(vocab->size);
  vocab->middle.resize(vocab->size);
  std::bitset<256> single_first;
  bool partial_utf8 = false;
  for (int64_t id = 0; id < vocab->size; ++id) {
    const auto token = static_cast<int32_t>(id);
    std::optional<std::string> middle = tokenizer.TokenBytes(token, false);
    if (!middle.has_value()) continue;
    std::optional<std::string> first = tokenizer.TokenBytes(token, true);
    partial_utf8 = partial_utf8 || !IsWholeUtf8(*middle) ||
                   !IsWholeUtf8(first.value_or(""));
    if (middle->size() == 1) {
      vocab->single_byte[static_cast<uint8_t>((*middle)[0])] = true;
    }
    if (first.has_value() && first->size() == 1) {
      single_first[static_cast<uint8_t>((*first)[0])] = true;
    }
    vocab->middle[id] = *std::move(middle);
    vocab->first[id] = first.value_or("");
  }
  for (int byte = 0x20; byte < 0x7F; ++byte) {
    if (!vocab->single_byte[byte]) {
      return Missing(static_cast<uint8_t>(byte), "(printable ASCII)");
    }
  }
  if (partial_utf8) {
    for (int byte = 0x80; byte < 0xC0; ++byte) {
      if (!vocab->single_byte[byte]) {
        return Missing(static_cast<uint8_t>(byte),
                       "(a UTF-8 continuation byte: some tokens end inside a "
                       "character)");
      }
    }
  }
  for (char c : std::string_view("{[\"-0123456789tfn")) {
    if (!single_first[static_cast<uint8_t>(c)]) {
      return Missing(static_cast<uint8_t>(c), "as the first token");
    }
  }
  std::vector<std::string> suffixes(vocab->size);
  for (int64_t id = 0; id < vocab->size; ++id) {
    const std::string& bytes = vocab->middle[id];
    if (bytes.empty()) continue;
    size_t plain = 0;
    while (plain < bytes.size() &&
           IsPlainStringByte(static_cast<uint8_t>(bytes[plain]))) {
      ++plain;
    }
    if (plain == bytes.size()) {
      vocab->plain_string_tokens.push_back(static_cast<int32_t>(id));
    } else {
      suffixes[id] = bytes.substr(plain);
    }
  }
  vocab->string_suffix_trie = TokenTrie::Build(suffixes);
  vocab->middle_trie = TokenTrie::Build(vocab->middle);
  vocab->first_trie = TokenTrie::Build(vocab->first);
  return vocab;
}

}  // namespace lorad::model::json_internal
