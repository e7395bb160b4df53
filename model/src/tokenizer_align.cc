// The normalizer steps (Normalize, ReplaceAll), and token offsets: which
// bytes of the input each token stands for, tracked through the normalizer
// and pre-tokenizer as HF tokenizers' alignments are (every byte of a
// string derived from the input maps to the whole input character it came
// from), and the ByteLevel / Roberta post-processors' trim_offsets.
#include <algorithm>

#include "tokenizer_internal.h"

namespace lorad::model::tokenizer_internal {
namespace {

bool IsContinuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

bool IsStarter(char32_t cp) {
  const auto ranges = CombiningClassRanges();
  auto it = std::upper_bound(
      ranges.begin(), ranges.end(), cp,
      [](char32_t c, const CombiningClassRange& r) { return c < r.first; });
  return it == ranges.begin() || cp > std::prev(it)->last;
}

// The byte span that `align` gives bytes [begin, end) of its string.
std::pair<size_t, size_t> Covering(const Align& align, size_t begin,
                                   size_t end) {
  std::pair<size_t, size_t> span = align[begin];
  for (size_t i = begin; i < end; ++i) {
    span.first = std::min(span.first, align[i].first);
    span.second = std::max(span.second, align[i].second);
  }
  return span;
}

}  // namespace

std::string ReplaceAll(std::string_view text, std::string_view pattern,
                       std::string_view content) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  for (size_t found = text.find(pattern); found != std::string_view::npos;
       found = text.find(pattern, pos)) {
    out.append(text.substr(pos, found - pos));
    out.append(content);
    pos = found + pattern.size();
  }
  out.append(text.substr(pos));
  return out;
}

std::string Normalize(const std::vector<NormalizerStep>& steps,
                      std::string text, Align* align) {
  for (const NormalizerStep& step : steps) {
    switch (step.kind) {
      case NormalizerStep::Kind::kNfc:
        text = align != nullptr ? NormalizeNfcAligned(text, align)
                                : NormalizeNfc(text);
        break;
      case NormalizerStep::Kind::kPrepend:
        if (text.empty()) break;
        text.insert(0, step.text);
        if (align != nullptr) AlignPrepend(align, step.text.size());
        break;
      case NormalizerStep::Kind::kReplace:
        text = align != nullptr
                   ? ReplaceAllAligned(text, step.text, step.content, align)
                   : ReplaceAll(text, step.text, step.content);
        break;
    }
  }
  return text;
}

Align CharAlign(std::string_view text, size_t begin, size_t end) {
  Align align;
  align.reserve(end - begin);
  for (size_t pos = begin; pos < end;) {
    size_t length;
    DecodeUtf8(text, pos, &length);
    length = std::min(length, end - pos);
    align.insert(align.end(), length, {pos, pos + length});
    pos += length;
  }
  return align;
}

void AlignPrepend(Align* align, size_t count) {
  if (align->empty()) return;
  const std::pair<size_t, size_t> first = align->front();
  align->insert(align->begin(), count, first);
}

std::string ReplaceAllAligned(std::string_view text, std::string_view pattern,
                              std::string_view content, Align* align) {
  std::string out;
  Align out_align;
  out.reserve(text.size());
  out_align.reserve(align->size());
  size_t pos = 0;
  const auto keep = [&](size_t end) {
    out.append(text.substr(pos, end - pos));
    out_align.insert(out_align.end(), align->begin() + pos,
                     align->begin() + end);
  };
  for (size_t found = pattern.empty() ? std::string_view::npos
                                      : text.find(pattern);
       found != std::string_view::npos; found = text.find(pattern, pos)) {
    keep(found);
    out.append(content);
    out_align.insert(out_align.end(), content.size(),
                     Covering(*align, found, found + pattern.size()));
    pos = found + pattern.size();
  }
  keep(text.size());
  *align = std::move(out_align);
  return out;
}

std::string NormalizeNfcAligned(std::string_view text, Align* align) {
  std::string whole = NormalizeNfc(text);
  if (whole == text) return whole;
  // Character clusters (a starter and the marks after it), joined while
  // they compose with each other (Hangul jamo), normalize on their own. As
  // in HF, output character i of a group stands for the group's input
  // character i (the last one past its end): a composed character for its
  // first part.
  std::vector<size_t> starts;  // of the input characters of the group
  std::string joined;
  Align out_align;
  const auto emit = [&](size_t end) {
    if (starts.empty()) return;
    const std::string part =
        NormalizeNfc(text.substr(starts.front(), end - starts.front()));
    size_t k = 0;
    for (size_t pos = 0; pos < part.size(); ++k) {
      size_t length;
      DecodeUtf8(part, pos, &length);
      const size_t at = starts[std::min(k, starts.size() - 1)];
      out_align.insert(out_align.end(), length, (*align)[at]);
      pos += length;
    }
    joined += part;
    starts.clear();
  };
  size_t group_start = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t length;
    std::optional<char32_t> cp = DecodeUtf8(text, pos, &length);
    if (pos > 0 && (!cp.has_value() || IsStarter(*cp))) {
      // A new cluster: its own group unless it composes with the last.
      size_t next = pos + length;
      while (next < text.size()) {
        size_t l;
        std::optional<char32_t> c = DecodeUtf8(text, next, &l);
        if (!c.has_value() || IsStarter(*c)) break;
        next += l;
      }
      const std::string_view group =
          text.substr(group_start, pos - group_start);
      const std::string_view cluster = text.substr(pos, next - pos);
      if (NormalizeNfc(text.substr(group_start, next - group_start)) ==
          NormalizeNfc(group) + NormalizeNfc(cluster)) {
        emit(pos);
        group_start = pos;
      }
    }
    starts.push_back(pos);
    pos += length;
  }
  emit(text.size());
  if (joined != whole) {
    // Not expected; the output then stands for the whole text.
    out_align.assign(whole.size(), Covering(*align, 0, text.size()));
  }
  *align = std::move(out_align);
  return whole;
}

std::pair<size_t, size_t> SpanOf(const Align& align, size_t begin, size_t end) {
  if (begin >= end || end > align.size()) return {0, 0};
  return {align[begin].first, align[end - 1].second};
}

void TrimOffsets(const TokenizerModel& model, std::string_view text,
                 const std::vector<std::string>& token_text,
                 std::vector<std::pair<size_t, size_t>>* offsets) {
  // The space byte in byte-level token strings.
  const char32_t space = ByteToUnicode(' ');
  for (size_t i = 0; i < token_text.size() && i < offsets->size(); ++i) {
    const std::string& token = token_text[i];
    std::vector<char32_t> chars;
    for (size_t pos = 0; pos < token.size();) {
      size_t length;
      chars.push_back(DecodeUtf8(token, pos, &length).value_or(0));
      pos += length;
    }
    const auto blank = [&](char32_t c) {
      return c == space || IsWhitespace(c);
    };
    size_t leading = 0;
    while (leading < chars.size() && blank(chars[leading])) ++leading;
    size_t trailing = 0;
    while (trailing < chars.size() && blank(chars[chars.size() - 1 - trailing]))
      ++trailing;
    auto& [start, end] = (*offsets)[i];
    // HF counts characters of the input; offsets here are bytes.
    if (leading > 0) {
      const bool is_first = i == 0 || start == 0;
      if (!(is_first && model.trim_add_prefix_space && leading == 1)) {
        for (size_t k = 0; k < leading && start < end; ++k) {
          ++start;
          while (start < end && IsContinuation(text[start])) ++start;
        }
      }
    }
    if (trailing > 0) {
      // HF trims only when the token ends at least `trailing` characters
      // into the input.
      size_t counted = 0;
      for (size_t p = 0; p < end && counted < trailing; ++p) {
        counted += IsContinuation(text[p]) ? 0 : 1;
      }
      if (counted >= trailing) {
        for (size_t k = 0; k < trailing && end > start; ++k) {
          --end;
          while (end > start && IsContinuation(text[end])) --end;
        }
      }
    }
  }
}

}  // namespace lorad::model::tokenizer_internal
