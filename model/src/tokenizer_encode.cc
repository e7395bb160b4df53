// Encode: added-token matching (raw, then normalized), normalization
// (tokenizer_align.cc), pre-tokenization and BPE merging (with byte
// fallback and a per-word cache), with token offsets when asked.
#include <algorithm>
#include <array>
#include <queue>
#include <tuple>

#include "tokenizer_internal.h"

namespace lorad::model {
namespace tokenizer_internal {

void IndexAddedTokens(TokenizerModel* model) {
  model->added_by_content.clear();
  model->added_by_id.clear();
  model->raw_matcher = {};
  model->normalized_matcher = {};
  for (int32_t i = 0; i < static_cast<int32_t>(model->added.size()); ++i) {
    AddedToken& token = model->added[i];
    model->added_by_content[token.content] = i;
    model->added_by_id[token.id] = i;
    token.match_text = token.normalized
                           ? Normalize(model->normalizer, token.content)
                           : token.content;
    if (token.match_text.empty()) continue;
    AddedTokenMatcher& matcher =
        token.normalized ? model->normalized_matcher : model->raw_matcher;
    if (matcher.empty()) matcher.by_first_byte.assign(256, {});
    matcher.by_first_byte[static_cast<unsigned char>(token.match_text[0])]
        .push_back(i);
  }
  for (AddedTokenMatcher* matcher :
       {&model->raw_matcher, &model->normalized_matcher}) {
    for (auto& list : matcher->by_first_byte) {
      std::stable_sort(list.begin(), list.end(), [&](int32_t a, int32_t b) {
        return model->added[a].match_text.size() >
               model->added[b].match_text.size();
      });
    }
  }
}

}  // namespace tokenizer_internal

namespace {

using tokenizer_internal::AppendUtf8;
using tokenizer_internal::ByteToUnicode;
using tokenizer_internal::DecodeUtf8;
using tokenizer_internal::IsLetter;
using tokenizer_internal::IsNumber;
using tokenizer_internal::IsWhitespace;
using tokenizer_internal::Merge;
using tokenizer_internal::PairKey;
using tokenizer_internal::PrependScheme;
using tokenizer_internal::PreTokenizerStep;
using tokenizer_internal::ReplaceAll;
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
// Split pre-tokenizer does for `behavior`: the byte spans of the pieces, none
// empty.
std::vector<std::pair<size_t, size_t>> SplitByMatches(
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
  std::erase_if(pieces, [](const auto& p) { return p.first >= p.second; });
  return pieces;
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
    const tokenizer_internal::AddedTokenMatcher& matcher,
    std::string_view text) const {
  std::vector<Segment> segments;
  if (matcher.empty()) {
    segments.push_back({text, std::nullopt, 0});
    return segments;
  }
  size_t segment_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const tokenizer_internal::AddedToken* found = nullptr;
    for (int32_t index :
         matcher.by_first_byte[static_cast<unsigned char>(text[pos])]) {
      const auto& token = model.added[index];
      if (text.substr(pos).starts_with(token.match_text)) {
        found = &token;
        break;
      }
    }
    if (found == nullptr) {
      ++pos;
      continue;
    }
    size_t start = pos;
    size_t stop = pos + found->match_text.size();
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
      segments.push_back({text.substr(segment_start, start - segment_start),
                          std::nullopt, segment_start});
    }
    segments.push_back({std::string_view(), found->id, start, stop - start});
    segment_start = stop;
  }
  if (segment_start < text.size()) {
    segments.push_back(
        {text.substr(segment_start), std::nullopt, segment_start});
  }
  return segments;
}

std::vector<std::string> Tokenizer::Impl::PreTokenize(
    std::string text, bool at_start, const tokenizer_internal::Align* align,
    std::vector<tokenizer_internal::Align>* word_aligns) const {
  using tokenizer_internal::Align;
  struct Piece {
    std::string text;
    bool at_start;
    Align align;  // when tracked
  };
  const bool track = align != nullptr;
  const auto slice = [&](const Piece& piece, size_t start, size_t end) {
    return track ? Align(piece.align.begin() + start, piece.align.begin() + end)
                 : Align();
  };
  std::vector<Piece> pieces;
  pieces.push_back({std::move(text), at_start, track ? *align : Align()});
  for (const PreTokenizerStep& step : model.pre_tokenizer) {
    std::vector<Piece> next;
    const auto split = [&](const Piece& piece, const auto& spans,
                           SplitBehavior behavior) {
      for (const auto& [start, end] :
           SplitByMatches(piece.text, spans, behavior)) {
        next.push_back({piece.text.substr(start, end - start),
                        piece.at_start && start == 0,
                        slice(piece, start, end)});
      }
    };
    for (Piece& piece : pieces) {
      switch (step.kind) {
        case PreTokenizerStep::Kind::kSplit:
          split(piece,
                step.pattern.has_value()
                    ? tokenizer_internal::ScanMatches(*step.pattern, piece.text)
                    : FindLiteral(piece.text, step.literal),
                step.behavior);
          break;
        case PreTokenizerStep::Kind::kMetaspace: {
          std::string replaced =
              track ? tokenizer_internal::ReplaceAllAligned(
                          piece.text, " ", step.replacement, &piece.align)
                    : ReplaceAll(piece.text, " ", step.replacement);
          const bool prepend =
              step.prepend_scheme == PrependScheme::kAlways ||
              (step.prepend_scheme == PrependScheme::kFirst && piece.at_start);
          if (prepend && !replaced.starts_with(step.replacement)) {
            replaced.insert(0, step.replacement);
            if (track) {
              tokenizer_internal::AlignPrepend(&piece.align,
                                               step.replacement.size());
            }
          }
          Piece whole{std::move(replaced), piece.at_start,
                      std::move(piece.align)};
          if (step.split) {
            split(whole, FindLiteral(whole.text, step.replacement),
                  SplitBehavior::kMergedWithNext);
          } else if (!whole.text.empty()) {
            next.push_back(std::move(whole));
          }
          break;
        }
        case PreTokenizerStep::Kind::kByteLevel: {
          std::string& chunk = piece.text;
          if (step.add_prefix_space && !chunk.starts_with(' ')) {
            chunk.insert(chunk.begin(), ' ');
            if (track) tokenizer_internal::AlignPrepend(&piece.align, 1);
          }
          // Each byte becomes a character standing for what the byte did.
          const auto to_byte_level = [&](size_t start, size_t end) {
            Piece out{
                ToByteLevel(std::string_view(chunk).substr(start, end - start)),
                piece.at_start && start == 0, Align()};
            for (size_t i = start; track && i < end; ++i) {
              out.align.insert(
                  out.align.end(),
                  ByteStrings()[static_cast<unsigned char>(chunk[i])].size(),
                  piece.align[i]);
            }
            next.push_back(std::move(out));
          };
          if (!step.use_regex) {
            to_byte_level(0, chunk.size());
            break;
          }
          for (const auto& [start, end] : tokenizer_internal::ScanMatches(
                   tokenizer_internal::SplitPattern::kGpt2, chunk)) {
            to_byte_level(start, end);
          }
          break;
        }
      }
    }
    pieces = std::move(next);
  }
  std::vector<std::string> words;
  words.reserve(pieces.size());
  for (Piece& piece : pieces) {
    words.push_back(std::move(piece.text));
    if (track) word_aligns->push_back(std::move(piece.align));
  }
  return words;
}

std::vector<int32_t> Tokenizer::Impl::Bpe(
    std::string_view word,
    std::vector<std::pair<size_t, size_t>>* spans) const {
  if (model.ignore_merges) {
    auto it = model.vocab.find(tokenizer_internal::AsAbsl(word));
    if (it != model.vocab.end()) {
      if (spans != nullptr) spans->emplace_back(0, word.size());
      return {it->second};
    }
  }
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
    size_t length;  // bytes of the word
  };
  std::vector<Symbol> symbols;
  const auto add = [&](int32_t id, size_t length) {
    const int32_t index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, -1, true, length});
    if (index > 0) symbols[index - 1].next = index;
  };
  size_t unk_length = 0;  // of the pending unknown run
  // As HF: an unknown character becomes its "<0xNN>" byte tokens when
  // byte_fallback has them all, else unk_token (runs fused under fuse_unk).
  // A pending unk is written before the next known character, but after
  // byte-fallback ones.
  bool unk_pending = false;
  for (size_t pos = 0; pos < word.size();) {
    size_t length;
    DecodeUtf8(word, pos, &length);
    const std::string_view piece = word.substr(pos, length);
    pos += length;
    auto it = model.vocab.find(tokenizer_internal::AsAbsl(piece));
    if (it != model.vocab.end()) {
      if (unk_pending) add(*model.unk_id, unk_length);
      unk_pending = false;
      add(it->second, length);
      continue;
    }
    if (model.byte_fallback &&
        std::all_of(piece.begin(), piece.end(), [&](char c) {
          return model.byte_ids[static_cast<unsigned char>(c)] >= 0;
        })) {
      for (char c : piece) {
        add(model.byte_ids[static_cast<unsigned char>(c)], 1);
      }
      continue;
    }
    if (!model.unk_id.has_value()) continue;
    if (unk_pending && !model.fuse_unk) {
      add(*model.unk_id, unk_length);
      unk_length = 0;
    }
    if (!unk_pending) unk_length = 0;
    unk_pending = true;
    unk_length += length;
  }
  if (unk_pending) add(*model.unk_id, unk_length);

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
    symbol.length += right.length;
    symbol.next = right.next;
    if (symbol.next >= 0) symbols[symbol.next].prev = left;
    if (symbol.prev >= 0) push_pair(symbol.prev);
    push_pair(left);
  }
  std::vector<int32_t> ids;
  size_t at = 0;
  for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    ids.push_back(symbols[i].id);
    if (spans != nullptr) spans->emplace_back(at, at + symbols[i].length);
    at += symbols[i].length;
  }
  return ids;
}

void Tokenizer::Impl::TokenizeWord(
    const std::string& word, std::vector<int32_t>* ids,
    std::vector<std::pair<size_t, size_t>>* spans) const {
  const size_t first = ids->size();
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  bool cached = false;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      cached = true;
    }
  }
  if (cached && spans != nullptr) {
    // Each token is its vocabulary string, in order: unless there is an
    // unknown or byte-fallback token, whose span the model alone knows.
    const size_t mark = spans->size();
    size_t at = 0;
    for (size_t k = first; k < ids->size(); ++k) {
      auto it = model.id_to_token.find((*ids)[k]);
      const bool plain = it != model.id_to_token.end() &&
                         (*ids)[k] != model.unk_id.value_or(-1) &&
                         !(model.byte_fallback && it->second.size() == 6 &&
                           it->second.starts_with("<0x"));
      if (!plain || at + it->second.size() > word.size()) break;
      spans->emplace_back(at, at + it->second.size());
      at += it->second.size();
    }
    if (at == word.size() && spans->size() - mark == ids->size() - first) {
      return;
    }
    spans->resize(mark);
    ids->resize(first);
    cached = false;
  }
  if (cached) return;
  std::vector<int32_t> word_ids =
      model.kind == tokenizer_internal::TokenizerModel::Kind::kUnigram
          ? Unigram(word, spans)
          : Bpe(word, spans);
  ids->insert(ids->end(), word_ids.begin(), word_ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(word, std::move(word_ids));
  }
}

std::vector<int32_t> Tokenizer::Impl::Encode(
    std::string_view text,
    std::vector<std::pair<size_t, size_t>>* offsets) const {
  using tokenizer_internal::Align;
  using tokenizer_internal::SpanOf;
  const bool track = offsets != nullptr;
  if (track) offsets->clear();
  std::vector<int32_t> ids;
  std::vector<Align> word_aligns;
  std::vector<std::pair<size_t, size_t>> spans;
  // For trim_offsets: the text of each token as HF sees it (an added
  // token's is what it matched).
  const bool trim = track && model.trim_offsets;
  std::vector<std::string> token_text;
  for (const Segment& raw : SplitOnAddedTokens(model.raw_matcher, text)) {
    if (raw.added_id.has_value()) {
      ids.push_back(*raw.added_id);
      if (track) offsets->emplace_back(raw.offset, raw.offset + raw.length);
      if (trim) token_text.emplace_back(text.substr(raw.offset, raw.length));
      continue;
    }
    Align align;
    if (track) {
      align = tokenizer_internal::CharAlign(text, raw.offset,
                                            raw.offset + raw.text.size());
    }
    const std::string normalized = tokenizer_internal::Normalize(
        model.normalizer, std::string(raw.text), track ? &align : nullptr);
    for (const Segment& segment :
         SplitOnAddedTokens(model.normalized_matcher, normalized)) {
      if (segment.added_id.has_value()) {
        ids.push_back(*segment.added_id);
        if (track) {
          offsets->push_back(
              SpanOf(align, segment.offset, segment.offset + segment.length));
        }
        if (trim) {
          token_text.push_back(
              normalized.substr(segment.offset, segment.length));
        }
        continue;
      }
      if (segment.text.empty()) continue;
      const bool at_start = raw.offset == 0 && segment.offset == 0;
      if (!track) {
        for (const std::string& word :
             PreTokenize(std::string(segment.text), at_start)) {
          TokenizeWord(word, &ids);
        }
        continue;
      }
      const Align segment_align(
          align.begin() + segment.offset,
          align.begin() + segment.offset + segment.text.size());
      word_aligns.clear();
      const std::vector<std::string> words = PreTokenize(
          std::string(segment.text), at_start, &segment_align, &word_aligns);
      for (size_t w = 0; w < words.size(); ++w) {
        spans.clear();
        TokenizeWord(words[w], &ids, &spans);
        const size_t first = ids.size() - spans.size();
        for (size_t k = 0; k < spans.size(); ++k) {
          offsets->push_back(
              SpanOf(word_aligns[w], spans[k].first, spans[k].second));
          if (trim) {
            auto it = model.id_to_token.find(ids[first + k]);
            token_text.push_back(it == model.id_to_token.end() ? std::string()
                                                               : it->second);
          }
        }
      }
    }
  }
  if (trim) tokenizer_internal::TrimOffsets(model, text, token_text, offsets);
  return ids;
}

}  // namespace lorad::model
