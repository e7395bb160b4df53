// The Unigram model: the highest-scoring segmentation of a word into
// vocabulary pieces (Viterbi), unknown characters scored below every piece
// and fused into runs, then byte fallback or the unk id for those runs, as
// HF tokenizers' Unigram does.
#include <optional>

#include "tokenizer_internal.h"

namespace lorad::model {

std::vector<int32_t> Tokenizer::Impl::Unigram(std::string_view word) const {
  struct Node {
    double score = 0;
    size_t start = 0;
    int32_t id = -1;
    bool reached = false;
  };
  const size_t size = word.size();
  std::vector<Node> best(size + 1);
  best[0].reached = true;
  for (size_t pos = 0; pos < size;) {
    size_t char_length;
    tokenizer_internal::DecodeUtf8(word, pos, &char_length);
    const double here = best[pos].score;
    bool single_char_piece = false;
    // Shorter matches first; a later candidate must score strictly higher.
    const size_t longest = std::min(model.max_piece_bytes, size - pos);
    for (size_t length = 1; length <= longest; ++length) {
      auto it = model.vocab.find(
          tokenizer_internal::AsAbsl(word.substr(pos, length)));
      if (it == model.vocab.end()) continue;
      const double candidate = model.unigram_scores[it->second] + here;
      Node& target = best[pos + length];
      if (!target.reached || candidate > target.score) {
        target = {candidate, pos, it->second, true};
      }
      if (length == char_length) single_char_piece = true;
    }
    if (!single_char_piece) {
      const double candidate = model.unk_score + here;
      Node& target = best[pos + char_length];
      if (!target.reached || candidate > target.score) {
        target = {candidate, pos, -1, true};  // -1: unknown
      }
    }
    pos += char_length;
  }
  // Back from the end: pieces, with runs of unknown characters fused.
  struct Piece {
    size_t start, end;
    bool unknown;
  };
  std::vector<Piece> pieces;
  for (size_t end = size; end > 0;) {
    const Node& node = best[end];
    const bool unknown =
        node.id < 0 || (model.unk_id.has_value() && node.id == *model.unk_id);
    if (unknown && !pieces.empty() && pieces.back().unknown &&
        pieces.back().start == end) {
      pieces.back().start = node.start;
    } else {
      pieces.push_back({node.start, end, unknown});
    }
    end = node.start;
  }
  std::vector<int32_t> ids;
  for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
    const std::string_view text = word.substr(it->start, it->end - it->start);
    auto found = model.vocab.find(tokenizer_internal::AsAbsl(text));
    if (found != model.vocab.end()) {
      ids.push_back(found->second);
      continue;
    }
    if (model.byte_fallback &&
        std::all_of(text.begin(), text.end(), [&](char c) {
          return model.byte_ids[static_cast<unsigned char>(c)] >= 0;
        })) {
      for (char c : text) {
        ids.push_back(model.byte_ids[static_cast<unsigned char>(c)]);
      }
      continue;
    }
    if (model.unk_id.has_value()) ids.push_back(*model.unk_id);
  }
  return ids;
}

}  // namespace lorad::model
