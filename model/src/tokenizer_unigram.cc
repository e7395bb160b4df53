// The Unigram model: the highest-scoring segmentation of a word into
// vocabulary pieces (Viterbi), unknown characters scored below every piece
// and fused into runs, then byte fallback or the unk id for those runs, as
// HF tokenizers' Unigram does.
#include <algorithm>
#include <optional>

#include "tokenizer_internal.h"

namespace lorad::model {

std::vector<int32_t> Tokenizer::Impl::Unigram(
    std::string_view word,
    std::vector<std::pair<size_t, size_t>>* spans) const {
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
    // Every piece that starts here, shorter first (a later candidate must
    // score strictly higher), narrowing the sorted pieces that share the
    // prefix one byte at a time.
    const auto& sorted = model.unigram_pieces;
    auto lo = sorted.begin(), hi = sorted.end();
    for (size_t length = 1; pos + length <= size && lo != hi; ++length) {
      const int c = static_cast<unsigned char>(word[pos + length - 1]);
      // Within [lo, hi) all share the first length - 1 bytes: the one that
      // is exactly that prefix sorts first, then by the next byte.
      const auto key = [length](const auto& entry) {
        return entry.first.size() < length
                   ? -1
                   : static_cast<unsigned char>(entry.first[length - 1]);
      };
      lo = std::partition_point(lo, hi,
                                [&](const auto& e) { return key(e) < c; });
      hi = std::partition_point(lo, hi,
                                [&](const auto& e) { return key(e) <= c; });
      if (lo == hi || lo->first.size() != length) continue;
      const double candidate = model.unigram_scores[lo->second] + here;
      Node& target = best[pos + length];
      if (!target.reached || candidate > target.score) {
        target = {candidate, pos, lo->second, true};
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
      if (spans != nullptr) spans->emplace_back(it->start, it->end);
      continue;
    }
    if (model.byte_fallback &&
        std::all_of(text.begin(), text.end(), [&](char c) {
          return model.byte_ids[static_cast<unsigned char>(c)] >= 0;
        })) {
      for (char c : text) {
        ids.push_back(model.byte_ids[static_cast<unsigned char>(c)]);
      }
      // As HF: each byte token stands for the whole unknown run.
      if (spans != nullptr) {
        spans->insert(spans->end(), text.size(), {it->start, it->end});
      }
      continue;
    }
    if (model.unk_id.has_value()) {
      ids.push_back(*model.unk_id);
      if (spans != nullptr) spans->emplace_back(it->start, it->end);
    }
  }
  return ids;
}

}  // namespace lorad::model
