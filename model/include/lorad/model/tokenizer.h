// A byte-level BPE tokenizer read from a Hugging Face tokenizer.json, with no
// Python or torch at run time. It reproduces `tokenizers`' ids for the
// GPT-2, Llama-3 and Qwen2 families.
//
// Supported tokenizer.json content:
//   model:         BPE (merges as "a b" strings or [a, b] pairs,
//                  ignore_merges, unk_token). Not byte_fallback,
//                  continuing_subword_prefix or end_of_word_suffix.
//   normalizer:    none, NFC, or a Sequence of those.
//   pre_tokenizer: ByteLevel (add_prefix_space, use_regex with GPT-2's
//                  regex), Split (a String pattern, or one of the GPT-2,
//                  Llama-3 and Qwen2 regexes; any behavior; not inverted),
//                  or a Sequence of those.
//   decoder:       none or ByteLevel.
//   added_tokens:  matched literally in the input (leftmost, longest first),
//                  with lstrip, rstrip and single_word. All are matched on
//                  the raw text (HF matches "normalized" ones after the
//                  normalizer; the same unless NFC changes a token's text).
// Anything else is rejected by FromJson with an InvalidArgument error that
// names it, rather than tokenized differently from Hugging Face.
//
// A Tokenizer is immutable after construction apart from an internal cache;
// all methods are thread-safe.
#ifndef LORAD_MODEL_TOKENIZER_H_
#define LORAD_MODEL_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace lorad::model {

class Tokenizer {
 public:
  // Parses tokenizer.json text; `where` names the file in error messages.
  // InvalidArgument for malformed JSON, a model type other than BPE, or any
  // unsupported component (the message names it).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(
      std::string_view json, std::string_view where);
  // Reads and parses a tokenizer.json file. NotFound if it does not exist.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromFile(
      const std::string& path);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Like HF tokenizers' encode(text, add_special_tokens=False): added and
  // special tokens that appear literally in `text` become single tokens; the
  // rest is normalized, pre-tokenized and split by BPE. Bytes that are not
  // valid UTF-8 are tokenized as single bytes (HF cannot receive them).
  std::vector<int32_t> Encode(std::string_view text) const;

  // Like HF tokenizers' decode(ids, skip_special_tokens). Unknown ids are
  // skipped. Byte sequences that are not valid UTF-8 (e.g. a multi-byte
  // character cut between tokens) become U+FFFD, as in HF.
  std::string Decode(const std::vector<int32_t>& ids,
                     bool skip_special_tokens) const;

  // The id of a vocabulary or added token, if there is one.
  std::optional<int32_t> TokenToId(std::string_view token) const;

  // Max id + 1 over the vocabulary and the added tokens.
  int64_t vocab_size() const;

  // Whether `id` is an added token marked special.
  bool IsSpecial(int32_t id) const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// tokenizer.json text for the built-in tiny model: byte-level BPE with 256
// byte tokens whose id equals the byte value (token strings per the GPT-2
// byte-to-unicode map), no merges, and the special tokens
// "<|begin_of_text|>" = 256, "<|end_of_text|>" = 257, "<|pad|>" = 258; a
// ByteLevel pre-tokenizer (add_prefix_space false) and ByteLevel decoder.
// HF tokenizers loads it and gives the same ids.
std::string MakeByteLevelTokenizerJson();

}  // namespace lorad::model

#endif  // LORAD_MODEL_TOKENIZER_H_
