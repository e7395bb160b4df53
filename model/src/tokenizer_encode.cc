// Encode and Decode: added-token matching, normalization, pre-tokenization,
// BPE merging (with a per-word cache) and byte-level decoding.
#include <array>
#include <queue>
#include <tuple>

#include "tokenizer_internal.h"

namespace lorad::model {
namespace {

using tokenizer_internal::AppendUtf8;
using tokenizer_internal::ByteToUnicode;
using tokenizer_internal::DecodeUtf8;
using tokenizer_internal::IsLetter;
using tokenizer_internal::IsNumber;
using tokenizer_internal::IsWhitespace;
using tokenizer_internal::Merge;
using tokenizer_internal::PairKey;
using tokenizer_internal::PreTokenizerStep;
using tokenizer_internal::SplitBehavior;

// Words longer than this are not cached (they are rare and would bloat it).
constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kMaxCacheEntries = 1 << 16;

const std::array<std::string, 256>& ByteStrings() {
  static const auto* const kStrings = [] {
    auto* strings = new std::array<std::string, 256>();
    for (int b = 0; b < 256; ++b) {
      AppendUtf8(ByteToUnicode(static_cast<uint8_t>(b)), &(*strings)[b]);
    }
    return strings;
  }();
  return *kStrings;
}

std::string ToByteLevel(std::string_view text) {
  std::string out;
  out.reserve(text.size() * 2);
  for (char c : text) out += ByteStrings()[static_cast<unsigned char>(c)];
  return out;
}

// The code point that ends just before byte offset `end` (ill-formed bytes
// count as one non-whitespace char each); *start receives its offset.
std::optional<char32_t> CharBefore(std::string_view text, size_t end,
                                   size_t* start) {
  size_t pos = end - 1;
  while (pos > 0 && end - pos < 4 &&
         (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) {
    --pos;
  }
  size_t length;
  std::optional<char32_t> cp = DecodeUtf8(text, pos, &length);
  if (!cp.has_value() || pos + length != end) {
    *start = end - 1;
    return std::nullopt;
  }
  *start = pos;
  return cp;
}

bool IsWordChar(std::optional<char32_t> cp) {
  return cp.has_value() && (IsLetter(*cp) || IsNumber(*cp) || *cp == '_');
}

// Splits `text` at the matches `spans` (sorted, non-overlapping) the way HF's
// Split pre-tokenizer does for `behavior`, dropping empty pieces.
std::vector<std::string> SplitByMatches(
    std::string_view text, const std::vector<std::pair<size_t, size_t>>& spans,
    SplitBehavior behavior) {
  struct Part {
    size_t start, end;
    bool is_match;
  };
  std::vector<Part> parts;
  size_t pos = 0;
  for (const auto& [start, end] : spans) {
    if (start == end) continue;
    if (pos < start) parts.push_back({pos, start, false});
    parts.push_back({start, end, true});
    pos = end;
  }
  if (pos < text.size()) parts.push_back({pos, text.size(), false});

  std::vector<std::pair<size_t, size_t>> pieces;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const Part& p : parts) {
        if (!p.is_match) pieces.emplace_back(p.start, p.end);
      }
      break;
    case SplitBehavior::kIsolated:
      for (const Part& p : parts) pieces.emplace_back(p.start, p.end);
      break;
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Part& p : parts) {
        if (p.is_match && !previous_match && !pieces.empty()) {
          pieces.back().second = p.end;
        } else {
          pieces.emplace_back(p.start, p.end);
        }
        previous_match = p.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->is_match && !previous_match && !pieces.empty()) {
          pieces.back().first = it->start;
        } else {
          pieces.emplace_back(it->start, it->end);
        }
        previous_match = it->is_match;
      }
      std::reverse(pieces.begin(), pieces.end());
      break;
    }
    case SplitBehavior::kContiguous: {
      std::optional<bool> previous_match;
      for (const Part& p : parts) {
        if (previous_match == p.is_match) {
          pieces.back().second = p.end;
        } else {
          pieces.emplace_back(p.start, p.end);
        }
        previous_match = p.is_match;
      }
      break;
    }
  }
  std::vector<std::string> out;
  out.reserve(pieces.size());
  for (const auto& [start, end] : pieces) {
    if (start < end) out.emplace_back(text.substr(start, end - start));
  }
  return out;
}

std::vector<std::pair<size_t, size_t>> FindLiteral(std::string_view text,
                                                   std::string_view literal) {
  std::vector<std::pair<size_t, size_t>> spans;
  for (size_t pos = text.find(literal); pos != std::string_view::npos;
       pos = text.find(literal, pos + literal.size())) {
    spans.emplace_back(pos, pos + literal.size());
  }
  return spans;
}

}  // namespace

std::vector<Tokenizer::Impl::Segment> Tokenizer::Impl::SplitOnAddedTokens(
    std::string_view text) const {
  std::vector<Segment> segments;
  if (model.added.empty()) {
    segments.push_back({text, std::nullopt});
    return segments;
  }
  size_t segment_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const tokenizer_internal::AddedToken* found = nullptr;
    for (int32_t index :
         model.added_by_first_byte[static_cast<unsigned char>(text[pos])]) {
      const auto& token = model.added[index];
      if (text.substr(pos).starts_with(token.content)) {
        found = &token;
        break;
      }
    }
    if (found == nullptr) {
      ++pos;
      continue;
    }
    size_t start = pos;
    size_t stop = pos + found->content.size();
    pos = stop;
    if (found->single_word) {
      size_t unused;
      const bool word_before =
          start > 0 && IsWordChar(CharBefore(text, start, &unused));
      size_t length;
      const bool word_after =
          stop < text.size() && IsWordChar(DecodeUtf8(text, stop, &length));
      if (word_before || word_after) continue;
    }
    if (found->lstrip) {
      while (start > segment_start) {
        size_t before;
        std::optional<char32_t> cp = CharBefore(text, start, &before);
        if (!cp.has_value() || !IsWhitespace(*cp) || before < segment_start) {
          break;
        }
        start = before;
      }
    }
    if (found->rstrip) {
      while (stop < text.size()) {
        size_t length;
        std::optional<char32_t> cp = DecodeUtf8(text, stop, &length);
        if (!cp.has_value() || !IsWhitespace(*cp)) break;
        stop += length;
      }
      pos = stop;
    }
    if (segment_start < start) {
      segments.push_back(
          {text.substr(segment_start, start - segment_start), std::nullopt});
    }
    segments.push_back({std::string_view(), found->id});
    segment_start = stop;
  }
  if (segment_start < text.size()) {
    segments.push_back({text.substr(segment_start), std::nullopt});
  }
  return segments;
}

std::vector<std::string> Tokenizer::Impl::PreTokenize(std::string text) const {
  std::vector<std::string> pieces;
  pieces.push_back(std::move(text));
  for (const PreTokenizerStep& step : model.pre_tokenizer) {
    std::vector<std::string> next;
    for (std::string& piece : pieces) {
      if (step.kind == PreTokenizerStep::Kind::kSplit) {
        auto spans = step.pattern.has_value()
                         ? tokenizer_internal::ScanMatches(*step.pattern, piece)
                         : FindLiteral(piece, step.literal);
        for (std::string& part : SplitByMatches(piece, spans, step.behavior)) {
          next.push_back(std::move(part));
        }
        continue;
      }
      if (step.add_prefix_space && !piece.starts_with(' ')) {
        piece.insert(piece.begin(), ' ');
      }
      if (!step.use_regex) {
        next.push_back(ToByteLevel(piece));
        continue;
      }
      for (const auto& [start, end] : tokenizer_internal::ScanMatches(
               tokenizer_internal::SplitPattern::kGpt2, piece)) {
        next.push_back(
            ToByteLevel(std::string_view(piece).substr(start, end - start)));
      }
    }
    pieces = std::move(next);
  }
  return pieces;
}

std::vector<int32_t> Tokenizer::Impl::Bpe(std::string_view word) const {
  if (model.ignore_merges) {
    auto it = model.vocab.find(tokenizer_internal::AsAbsl(word));
    if (it != model.vocab.end()) return {it->second};
  }
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  std::vector<Symbol> symbols;
  bool last_was_unk = false;
  for (size_t pos = 0; pos < word.size();) {
    size_t length;
    DecodeUtf8(word, pos, &length);
    auto it =
        model.vocab.find(tokenizer_internal::AsAbsl(word.substr(pos, length)));
    pos += length;
    int32_t id;
    if (it != model.vocab.end()) {
      id = it->second;
      last_was_unk = false;
    } else if (model.unk_id.has_value()) {
      if (model.fuse_unk && last_was_unk) continue;
      id = *model.unk_id;
      last_was_unk = true;
    } else {
      continue;
    }
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, -1, true});
    if (index > 0) symbols[index - 1].next = index;
  }

  // (rank, position of the left symbol, merged id); lowest rank first, then
  // leftmost, as HF does.
  using Candidate = std::tuple<int32_t, int32_t, int32_t>;
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  const auto push_pair = [&](int32_t left) {
    const int32_t right = symbols[left].next;
    if (right < 0) return;
    auto it = model.merges.find(PairKey(symbols[left].id, symbols[right].id));
    if (it != model.merges.end()) {
      queue.emplace(it->second.rank, left, it->second.new_id);
    }
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) {
    push_pair(i);
  }
  while (!queue.empty()) {
    const auto [rank, left, new_id] = queue.top();
    queue.pop();
    Symbol& symbol = symbols[left];
    if (!symbol.alive || symbol.next < 0) continue;
    auto it = model.merges.find(PairKey(symbol.id, symbols[symbol.next].id));
    if (it == model.merges.end() || it->second.rank != rank) continue;
    Symbol& right = symbols[symbol.next];
    right.alive = false;
    symbol.id = new_id;
    symbol.next = right.next;
    if (symbol.next >= 0) symbols[symbol.next].prev = left;
    if (symbol.prev >= 0) push_pair(symbol.prev);
    push_pair(left);
  }
  std::vector<int32_t> ids;
  for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    ids.push_back(symbols[i].id);
  }
  return ids;
}

void Tokenizer::Impl::TokenizeWord(const std::string& word,
                                   std::vector<int32_t>* ids) const {
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> word_ids = Bpe(word);
  ids->insert(ids->end(), word_ids.begin(), word_ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(word, std::move(word_ids));
  }
}

std::vector<int32_t> Tokenizer::Impl::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  for (const Segment& segment : SplitOnAddedTokens(text)) {
    if (segment.added_id.has_value()) {
      ids.push_back(*segment.added_id);
      continue;
    }
    std::string normalized =
        model.nfc ? tokenizer_internal::NormalizeNfc(segment.text)
                  : std::string(segment.text);
    if (normalized.empty()) continue;
    for (const std::string& word : PreTokenize(std::move(normalized))) {
      TokenizeWord(word, &ids);
    }
  }
  return ids;
}

std::string Tokenizer::Impl::Decode(const std::vector<int32_t>& ids,
                                    bool skip_special_tokens) const {
  std::string bytes;
  bool first = true;
  for (int32_t id : ids) {
    const std::string* token = nullptr;
    auto added = model.added_by_id.find(id);
    if (added != model.added_by_id.end()) {
      const auto& entry = model.added[added->second];
      if (skip_special_tokens && entry.special) continue;
      token = &entry.content;
    } else {
      auto it = model.id_to_token.find(id);
      if (it == model.id_to_token.end()) continue;
      token = &it->second;
    }
    if (!model.byte_level_decoder) {
      // Without a decoder HF joins the tokens with spaces.
      if (!first) bytes += ' ';
      bytes += *token;
      first = false;
      continue;
    }
    // A token whose chars all stand for bytes decodes to those bytes; any
    // other token (e.g. an added one) is taken as it is.
    std::string token_bytes;
    bool all_bytes = true;
    for (size_t pos = 0; pos < token->size();) {
      size_t length;
      std::optional<char32_t> cp = DecodeUtf8(*token, pos, &length);
      std::optional<uint8_t> byte = cp.has_value()
                                        ? tokenizer_internal::UnicodeToByte(*cp)
                                        : std::nullopt;
      if (!byte.has_value()) {
        all_bytes = false;
        break;
      }
      token_bytes.push_back(static_cast<char>(*byte));
      pos += length;
    }
    bytes += all_bytes ? token_bytes : *token;
  }
  return tokenizer_internal::ToValidUtf8(bytes);
}

}  // namespace lorad::model
