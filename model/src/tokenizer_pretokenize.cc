// Hand-written scanners for the pre-tokenizer regexes of GPT-2, Llama-3 and
// Qwen2. RE2 cannot run them (lookahead, \p{..} with case-insensitive
// groups), and each is a fixed alternation, so every alternative becomes a
// few lines that reproduce the regex's leftmost-first, greedy-with-
// backtracking result.
#include <string_view>

#include "tokenizer_internal.h"

namespace lorad::model::tokenizer_internal {
namespace {

constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3})"
    R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N})"
    R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Stands for an ill-formed byte: in no class, so it scans as punctuation.
constexpr char32_t kInvalid = 0xFFFFFFFF;

class Scanner {
 public:
  Scanner(SplitPattern pattern, std::string_view text) : text_(text) {
    llama_style_ = pattern != SplitPattern::kGpt2;
    max_digits_ = pattern == SplitPattern::kLlama3  ? 3
                  : pattern == SplitPattern::kQwen2 ? 1
                                                    : 0;
    for (size_t pos = 0; pos < text.size();) {
      size_t length;
      std::optional<char32_t> cp = DecodeUtf8(text, pos, &length);
      chars_.push_back(cp.value_or(kInvalid));
      starts_.push_back(pos);
      pos += length;
    }
    starts_.push_back(text.size());
  }

  std::vector<std::pair<size_t, size_t>> Run() const {
    std::vector<std::pair<size_t, size_t>> spans;
    for (size_t i = 0; i < chars_.size();) {
      const size_t end = MatchAt(i);
      spans.emplace_back(starts_[i], starts_[end]);
      i = end;
    }
    return spans;
  }

 private:
  char32_t At(size_t i) const { return i < chars_.size() ? chars_[i] : 0; }
  bool Letter(size_t i) const {
    return i < chars_.size() && IsLetter(chars_[i]);
  }
  bool Number(size_t i) const {
    return i < chars_.size() && IsNumber(chars_[i]);
  }
  bool Space(size_t i) const {
    return i < chars_.size() && IsWhitespace(chars_[i]);
  }
  bool NewLine(size_t i) const { return At(i) == '\r' || At(i) == '\n'; }
  // [^\s\p{L}\p{N}]
  bool Other(size_t i) const {
    return i < chars_.size() && !Space(i) && !Letter(i) && !Number(i);
  }
  size_t SkipLetters(size_t i) const {
    while (Letter(i)) ++i;
    return i;
  }
  // The contraction letter at i, folded to lower case where the pattern is
  // case-insensitive (U+017F LONG S folds to 's' under Unicode folding).
  char32_t ContractionChar(size_t i) const {
    const char32_t c = At(i);
    if (!llama_style_) return c;
    if (c >= 'A' && c <= 'Z') return c + ('a' - 'A');
    if (c == 0x17F) return 's';
    return c;
  }

  // End (exclusive char index) of the match that starts at i.
  size_t MatchAt(size_t i) const {
    // 's|'t|'re|'ve|'m|'ll|'d
    if (At(i) == '\'') {
      const char32_t a = ContractionChar(i + 1);
      const char32_t b = ContractionChar(i + 2);
      if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') ||
          (a == 'l' && b == 'l')) {
        return i + 3;
      }
    }
    // GPT-2: ` ?\p{L}+`; Llama-3/Qwen2: `[^\r\n\p{L}\p{N}]?\p{L}+`.
    if (Letter(i)) return SkipLetters(i);
    const bool prefix_ok =
        llama_style_ ? (!NewLine(i) && !Number(i)) : At(i) == ' ';
    if (i < chars_.size() && prefix_ok && Letter(i + 1)) {
      return SkipLetters(i + 1);
    }
    // GPT-2: ` ?\p{N}+`; Llama-3: `\p{N}{1,3}`; Qwen2: `\p{N}`.
    if (llama_style_) {
      if (Number(i)) {
        size_t end = i;
        while (Number(end) && end - i < max_digits_) ++end;
        return end;
      }
    } else {
      const size_t start = At(i) == ' ' && Number(i + 1) ? i + 1 : i;
      if (Number(start)) {
        size_t end = start;
        while (Number(end)) ++end;
        return end;
      }
    }
    // ` ?[^\s\p{L}\p{N}]+`, then `[\r\n]*` for Llama-3/Qwen2.
    {
      const size_t start = At(i) == ' ' && Other(i + 1) ? i + 1 : i;
      if (Other(start)) {
        size_t end = start;
        while (Other(end)) ++end;
        if (llama_style_) {
          while (NewLine(end)) ++end;
        }
        return end;
      }
    }
    // Only whitespace is left. Its run is [i, run_end).
    size_t run_end = i;
    while (Space(run_end)) ++run_end;
    if (run_end == i) return i + 1;  // Unreachable: every char has a class.
    // Llama-3/Qwen2: `\s*[\r\n]+` backtracks to the run's last line break.
    if (llama_style_) {
      for (size_t k = run_end; k > i; --k) {
        if (NewLine(k - 1)) return k;
      }
    }
    // `\s+(?!\S)` keeps the last space for the next word; else `\s+`.
    if (run_end == chars_.size() || run_end - i == 1) return run_end;
    return run_end - 1;
  }

  std::string_view text_;
  bool llama_style_;
  size_t max_digits_;
  std::vector<char32_t> chars_;
  std::vector<size_t> starts_;  // Byte offset of each char, plus the end.
};

}  // namespace

std::optional<SplitPattern> RecognizeSplitPattern(std::string_view regex) {
  if (regex == kGpt2Regex) return SplitPattern::kGpt2;
  if (regex == kLlama3Regex) return SplitPattern::kLlama3;
  if (regex == kQwen2Regex) return SplitPattern::kQwen2;
  return std::nullopt;
}

std::vector<std::pair<size_t, size_t>> ScanMatches(SplitPattern pattern,
                                                   std::string_view text) {
  return Scanner(pattern, text).Run();
}

}  // namespace lorad::model::tokenizer_internal
