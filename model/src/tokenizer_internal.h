// Pieces of the tokenizer shared between its .cc files: UTF-8 and Unicode
// helpers (letters, numbers, whitespace, NFC) and the hand-written scanners
// that stand in for the pre-tokenizer regexes of GPT-2, Llama-3 and Qwen2.
// Not part of the public API.
#ifndef LORAD_MODEL_SRC_FORMATS_TOKENIZER_INTERNAL_H_
#define LORAD_MODEL_SRC_FORMATS_TOKENIZER_INTERNAL_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "lorad/common/bounded_json.h"
#include "lorad/model/tokenizer.h"
#include "nlohmann/json.hpp"

namespace lorad::model::tokenizer_internal {

// ---- Generated tables (tokenizer_unicode_tables.cc). ----

struct CodepointRange {
  char32_t first;
  char32_t last;
};
struct CombiningClassRange {
  char32_t first;
  char32_t last;
  uint8_t ccc;
};
// One level of a canonical decomposition: cp -> first [second]; second is 0
// for a singleton. `composes` marks primary composites (NFC recomposes them).
struct CanonicalDecomposition {
  char32_t cp;
  char32_t first;
  char32_t second;
  bool composes;
};

// All sorted by code point, non-overlapping.
std::span<const CodepointRange> LetterRanges();  // General category L*
std::span<const CodepointRange> NumberRanges();  // General category N*
std::span<const CombiningClassRange> CombiningClassRanges();  // ccc != 0
std::span<const CanonicalDecomposition> CanonicalDecompositions();

// ---- UTF-8 and character classes. ----

// Decodes the code point at text[pos]. An ill-formed sequence yields
// nullopt with *length 1 (callers treat the byte as an opaque symbol).
std::optional<char32_t> DecodeUtf8(std::string_view text, size_t pos,
                                   size_t* length);
void AppendUtf8(char32_t cp, std::string* out);

bool IsLetter(char32_t cp);      // \p{L}
bool IsNumber(char32_t cp);      // \p{N}
bool IsWhitespace(char32_t cp);  // \s (Unicode White_Space)

// Unicode Normalization Form C. Ill-formed bytes are passed through.
std::string NormalizeNfc(std::string_view text);

// Rust's String::from_utf8_lossy: each maximal ill-formed subpart becomes
// U+FFFD.
std::string ToValidUtf8(std::string_view bytes);

// ---- Pre-tokenizer regexes. ----

// The split regexes lorad recognises. Each is implemented by a scanner that
// reproduces the regex's leftmost-first matches exactly.
enum class SplitPattern {
  kGpt2,    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|... (ByteLevel)
  kLlama3,  // (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|...
  kQwen2,   // as Llama-3 but \p{N} (one digit at a time)
};

// The pattern for a regex string from tokenizer.json, if recognised.
std::optional<SplitPattern> RecognizeSplitPattern(std::string_view regex);

// The byte spans [first, second) of the successive matches of `pattern` in
// `text`. Together they cover all of `text`, in order, none empty.
std::vector<std::pair<size_t, size_t>> ScanMatches(SplitPattern pattern,
                                                   std::string_view text);

// ---- The parsed tokenizer. ----

// Debian's Abseil has its own string_view; hash maps keyed by std::string
// look up with that one.
inline absl::string_view AsAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

enum class SplitBehavior {
  kRemoved,
  kIsolated,
  kMergedWithPrevious,
  kMergedWithNext,
  kContiguous,
};

// Metaspace's prepend_scheme: whether a word gets the replacement in front.
enum class PrependScheme {
  kAlways,
  kFirst,  // only the piece that starts the input
  kNever,
};

struct NormalizerStep {
  enum class Kind { kNfc, kPrepend, kReplace };
  Kind kind = Kind::kNfc;
  std::string text;     // Prepend: what is prepended; Replace: the pattern.
  std::string content;  // Replace: what replaces the pattern.
};

struct PreTokenizerStep {
  enum class Kind { kByteLevel, kSplit, kMetaspace };
  Kind kind = Kind::kByteLevel;
  // ByteLevel.
  bool add_prefix_space = false;
  bool use_regex = true;
  // Split: a recognised regex, or else a literal string.
  std::optional<SplitPattern> pattern;
  std::string literal;
  SplitBehavior behavior = SplitBehavior::kIsolated;
  // Metaspace.
  std::string replacement;  // one character, UTF-8
  PrependScheme prepend_scheme = PrependScheme::kAlways;
  bool split = true;
};

struct DecoderStep {
  enum class Kind {
    kByteLevel,
    kReplace,
    kByteFallback,
    kFuse,
    kStrip,
    kMetaspace,
  };
  Kind kind = Kind::kByteLevel;
  std::string pattern;  // Replace: pattern; Strip/Metaspace: the character.
  std::string content;  // Replace: what replaces it.
  int start = 0;        // Strip: characters cut from the front...
  int stop = 0;         // ...and from the back, if they are `pattern`.
  PrependScheme prepend_scheme = PrependScheme::kAlways;  // Metaspace.
};

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  // Matched after the normalizer, against the normalized content.
  bool normalized = false;
  std::string match_text;  // content, or its normalized form
};

// The added tokens matched in one pass (raw text, or normalized text), by
// first byte of match_text, longest first.
struct AddedTokenMatcher {
  std::vector<std::vector<int32_t>> by_first_byte;  // indices into `added`
  bool empty() const { return by_first_byte.empty(); }
};

struct Merge {
  int32_t rank;
  int32_t new_id;
};

inline uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) |
         static_cast<uint32_t>(b);
}

// Everything FromJson reads; Encode and Decode only read it (bar the cache).
struct TokenizerModel {
  enum class Kind { kBpe, kUnigram };
  Kind kind = Kind::kBpe;
  absl::flat_hash_map<std::string, int32_t> vocab;
  absl::flat_hash_map<int32_t, std::string> id_to_token;
  absl::flat_hash_map<uint64_t, Merge> merges;  // PairKey(left, right)
  std::optional<int32_t> unk_id;
  bool fuse_unk = false;
  bool ignore_merges = false;
  // The ids of "<0x00>".."<0xFF>" when byte_fallback is on; -1 where the
  // vocabulary lacks one.
  bool byte_fallback = false;
  std::array<int32_t, 256> byte_ids{};
  // Unigram: the score of each id, the score of an unknown character (the
  // lowest score - 10), and the pieces sorted (for prefix search).
  std::vector<double> unigram_scores;
  double unk_score = 0;
  std::vector<std::pair<std::string, int32_t>> unigram_pieces;

  std::vector<NormalizerStep> normalizer;
  std::vector<PreTokenizerStep> pre_tokenizer;
  // nullopt: no decoder (tokens are joined with spaces).
  std::optional<std::vector<DecoderStep>> decoder;

  std::vector<AddedToken> added;
  absl::flat_hash_map<std::string, int32_t> added_by_content;  // -> index
  absl::flat_hash_map<int32_t, int32_t> added_by_id;           // -> index
  AddedTokenMatcher raw_matcher;         // normalized == false
  AddedTokenMatcher normalized_matcher;  // normalized == true
  int64_t vocab_size = 0;

  // The post-processor for one sequence: ids put before and after it.
  std::vector<int32_t> prefix_ids;
  std::vector<int32_t> suffix_ids;
  // A ByteLevel or Roberta post-processor with trim_offsets (and its
  // add_prefix_space): token offsets lose leading and trailing spaces.
  bool trim_offsets = false;
  bool trim_add_prefix_space = false;
};

// `text` with every non-overlapping `pattern`, left to right, replaced.
std::string ReplaceAll(std::string_view text, std::string_view pattern,
                       std::string_view content);

// ---- Offsets (tokenizer_align.cc). ----

// Per byte of a string derived from the input text: the bytes [first,
// second) of the input it stands for, the whole input character it came
// from (HF's NormalizedString alignments, in bytes).
using Align = std::vector<std::pair<size_t, size_t>>;
// The alignment of text[begin, end) itself: each byte to its character.
Align CharAlign(std::string_view text, size_t begin, size_t end);
// `count` bytes inserted at the front, standing for what the first byte
// does (HF's prepend).
void AlignPrepend(Align* align, size_t count);
// ReplaceAll, updating `align` (text's) to the result's: the content put
// in stands for the bytes it replaced.
std::string ReplaceAllAligned(std::string_view text, std::string_view pattern,
                              std::string_view content, Align* align);
// NormalizeNfc, updating `align`: unchanged text keeps it; else the output
// of each character cluster (a starter and its marks) stands for the whole
// cluster.
std::string NormalizeNfcAligned(std::string_view text, Align* align);
// The input bytes that bytes [begin, end) of an aligned string stand for.
std::pair<size_t, size_t> SpanOf(const Align& align, size_t begin, size_t end);
// The post-processor's trim_offsets applied to token offsets (into
// `text`), as HF does: spaces at either end of each token's text (a
// vocabulary token's string, or what an added token matched) come off
// its span (HF counts characters; these are bytes).
void TrimOffsets(const TokenizerModel& model, std::string_view text,
                 const std::vector<std::string>& token_text,
                 std::vector<std::pair<size_t, size_t>>* offsets);
// Whether a post_processor object trims offsets, and its add_prefix_space.
void ReadTrimOffsets(const nlohmann::json& j, bool* trim,
                     bool* add_prefix_space);

// Applies the normalizer steps in order; with `align` (text's alignment),
// updates it to the result's.
std::string Normalize(const std::vector<NormalizerStep>& steps,
                      std::string text, Align* align = nullptr);

// Fills match_text, the matchers and the lookup maps of `model->added` (after
// the normalizer is known).
void IndexAddedTokens(TokenizerModel* model);

// Parses tokenizer.json into `model`; errors name `where` and the section.
absl::Status ParseTokenizerJson(const nlohmann::json& root,
                                std::string_view where, TokenizerModel* model);

// The single-sequence prefix and suffix ids of a post_processor object.
absl::Status ParsePostProcessor(const nlohmann::json& j, std::string_view where,
                                std::vector<int32_t>* prefix,
                                std::vector<int32_t>* suffix);

// Real tokenizer.json files reach tens of MiB (a 256k vocabulary and its
// merges) but nest only a few levels.
inline constexpr JsonLimits kTokenizerJsonLimits{size_t{256} << 20, 32,
                                                 int64_t{64} << 20};

// The GPT-2 byte-to-unicode map: byte -> the code point that stands for it.
char32_t ByteToUnicode(uint8_t byte);
// The inverse: the byte a code point stands for, if any.
std::optional<uint8_t> UnicodeToByte(char32_t cp);

}  // namespace lorad::model::tokenizer_internal

namespace lorad::model {

struct Tokenizer::Impl {
  tokenizer_internal::TokenizerModel model;

  // With `offsets`, also each token's bytes [first, second) of `text`.
  std::vector<int32_t> Encode(
      std::string_view text,
      std::vector<std::pair<size_t, size_t>>* offsets = nullptr) const;
  std::string Decode(std::span<const int32_t> ids,
                     bool skip_special_tokens) const;

 private:
  struct Segment {
    std::string_view text;
    std::optional<int32_t> added_id;
    size_t offset;      // of `text` (or the added token) in the string split
    size_t length = 0;  // added tokens: the bytes matched, stripped spaces too
  };
  std::vector<Segment> SplitOnAddedTokens(
      const tokenizer_internal::AddedTokenMatcher& matcher,
      std::string_view text) const;
  // `at_start`: the text starts the input (Metaspace's prepend "first").
  // With `align` (text's alignment), each word's goes to *word_aligns.
  std::vector<std::string> PreTokenize(
      std::string text, bool at_start,
      const tokenizer_internal::Align* align = nullptr,
      std::vector<tokenizer_internal::Align>* word_aligns = nullptr) const;
  // With `spans`, also the bytes [first, second) of `word` each id stands
  // for (from the cached ids when they are all plain vocabulary tokens).
  void TokenizeWord(
      const std::string& word, std::vector<int32_t>* ids,
      std::vector<std::pair<size_t, size_t>>* spans = nullptr) const;
  std::vector<int32_t> Bpe(
      std::string_view word,
      std::vector<std::pair<size_t, size_t>>* spans = nullptr) const;
  std::vector<int32_t> Unigram(
      std::string_view word,
      std::vector<std::pair<size_t, size_t>>* spans = nullptr) const;

  // BPE results per pre-tokenized word. Guarded by cache_mu_.
  mutable std::mutex cache_mu_;
  mutable absl::flat_hash_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace lorad::model

#endif  // LORAD_MODEL_SRC_FORMATS_TOKENIZER_INTERNAL_H_
