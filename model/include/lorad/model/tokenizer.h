// A BPE / Unigram tokenizer read from a Hugging Face tokenizer.json (and, for a
// model directory, tokenizer_config.json), with no Python or torch at run time.
// It reproduces `tokenizers`' ids for the byte-level families (GPT-2, Llama 3,
// Qwen2) and the SentencePiece-style ones (Llama 2, Mistral 7B v0.1, Gemma),
// and transformers' `tokenizer(text)` for a model directory.
//
// Supported tokenizer.json content:
//   model:          BPE (merges as "a b" strings or [a, b] pairs,
//                   ignore_merges, unk_token, fuse_unk, byte_fallback to
//                   "<0xNN>" tokens; not continuing_subword_prefix or
//                   end_of_word_suffix), or Unigram (scored pieces, unk_id,
//                   byte_fallback; best segmentation, unknown runs fused).
//                   Not WordPiece or WordLevel.
//   normalizer:     none, NFC, Prepend, Replace (a String pattern), or a
//                   Sequence of those.
//   pre_tokenizer:  none, ByteLevel (add_prefix_space, use_regex with GPT-2's
//                   regex), Split (a String pattern, or one of the GPT-2,
//                   Llama-3 and Qwen2 regexes; any behavior; not inverted),
//                   Metaspace (replacement, prepend_scheme always / first /
//                   never, split), or a Sequence of those.
//   decoder:        none (tokens joined by spaces), ByteLevel, Replace (a
//                   String pattern), ByteFallback, Fuse, Strip, Metaspace, or
//                   a Sequence of those.
//   added_tokens:   matched leftmost-longest, with lstrip, rstrip and
//                   single_word; normalized=false ones in the raw text, then
//                   normalized=true ones in each remaining piece after the
//                   normalizer (against their own normalized content, which
//                   is also what they decode to), as HF does.
//   post_processor: none, TemplateProcessing (the single-sequence template),
//                   ByteLevel (no ids), RobertaProcessing, BertProcessing, or
//                   a Sequence of those.
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
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace lorad::model {

class Tokenizer {
 public:
  // Parses tokenizer.json text; `where` names the file in error messages.
  // InvalidArgument for malformed JSON, a model type other than BPE or
  // Unigram, or any unsupported component (the message names it).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(
      std::string_view json, std::string_view where);
  // Reads and parses a tokenizer.json file. NotFound if it does not exist.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromFile(
      const std::string& path);
  // The tokenizer transformers (5.x) builds for AutoTokenizer.from_pretrained
  // on a local model directory: tokenizer.json, adjusted by
  // tokenizer_config.json (optional) and config.json's model_type (optional):
  //  - tokenizer_class LlamaTokenizer / GemmaTokenizer (with or without
  //    "Fast") on a tokenizer.json that is not byte-level: transformers keeps
  //    the file's vocabulary, merges and post-processor and rebuilds the
  //    rest, and so does this. Llama: Metaspace with prepend_scheme "first"
  //    ("always" when `legacy` is true, "never" when add_prefix_space is
  //    false), no normalizer, no unk_token. Gemma: Replace(" ", U+2581), the
  //    config's unk_token. Added tokens are the file's (transformers reads
  //    added_tokens_decoder, the same list in directories it saved);
  //  - a Mistral model_type, and every other class, keep the file as it is;
  //  - the post-processor is always the file's: transformers 5 drops
  //    add_bos_token / add_eos_token from tokenizer_config.json when
  //    tokenizer.json exists.
  // NotFound without tokenizer.json; InvalidArgument for malformed files.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromModelDir(
      const std::string& dir);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Like HF tokenizers' encode(text, add_special_tokens=False): added and
  // special tokens that appear literally in `text` become single tokens; the
  // rest is normalized, pre-tokenized and split by the model. Bytes that are
  // not valid UTF-8 are tokenized as single bytes (HF cannot receive them).
  std::vector<int32_t> Encode(std::string_view text) const;

  // Encode, and for each id the bytes [first, second) of `text` it stands
  // for: HF tokenizers' encoding offsets (transformers' char offsets) in
  // bytes. Offsets cover whole characters: a byte-level or "<0xNN>" token
  // holding part of a character has that character's span (so pieces of
  // one character share it); a character the normalizer or pre-tokenizer
  // puts in (Prepend, Metaspace's or ByteLevel's prefix) has the span of
  // the character it was put before, a replacement (Replace, Metaspace)
  // that of what it replaced; an added token that of its match, stripped
  // spaces included; a ByteLevel or Roberta post-processor with
  // trim_offsets then trims spaces off them as HF does. Where NFC composes
  // characters, the composed one has the span of its first part, as in HF.
  std::vector<int32_t> EncodeWithOffsets(
      std::string_view text,
      std::vector<std::pair<size_t, size_t>>* offsets) const;

  // Like HF tokenizers' encode(text) with add_special_tokens=True, and
  // transformers' tokenizer(text)["input_ids"] for a tokenizer loaded with
  // FromModelDir: PrefixIds() + Encode(text) + SuffixIds().
  std::vector<int32_t> EncodeWithSpecialTokens(std::string_view text) const;

  // What the post-processor puts before and after a single sequence (e.g.
  // {bos} and {} for Llama; both empty for Qwen2).
  const std::vector<int32_t>& PrefixIds() const;
  const std::vector<int32_t>& SuffixIds() const;

  // Like HF tokenizers' decode(ids, skip_special_tokens). Unknown ids are
  // skipped. Byte sequences that are not valid UTF-8 (e.g. a multi-byte
  // character cut between tokens) become U+FFFD, as in HF.
  std::string Decode(std::span<const int32_t> ids,
                     bool skip_special_tokens) const;
  std::string Decode(const std::vector<int32_t>& ids,
                     bool skip_special_tokens) const {
    return Decode(std::span<const int32_t>(ids), skip_special_tokens);
  }

  // The id of a vocabulary or added token, if there is one.
  std::optional<int32_t> TokenToId(std::string_view token) const;

  // Max id + 1 over the vocabulary and the added tokens.
  int64_t vocab_size() const;

  // Whether `id` is an added token marked special.
  bool IsSpecial(int32_t id) const;

  // The bytes vocabulary token `id` adds to Decode(ids, true) when it is
  // ids[0] (`first`) or comes after other tokens (not first), before the
  // U+FFFD repair: a byte-level or "<0xNN>" token may hold part of a UTF-8
  // character. They differ where the decoder treats the first token apart
  // (Metaspace drops its "\u2581", Strip cuts the text's first space).
  // nullopt for added tokens (special or not) and unknown ids. Exact for
  // every supported decoder when the whole decode is valid UTF-8.
  std::optional<std::string> TokenBytes(int32_t id, bool first) const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Decodes generated ids one at a time into text, handing out only text that
// is final: a character split between tokens (byte-level or "<0xNN>" byte
// fallback pieces) waits for its last byte. The pieces Add returns, followed
// by Finish(), concatenate to tokenizer.Decode(all ids, skip_special_tokens)
// (whenever that decode is a prefix-stable function of the ids, true of every
// supported decoder for output that is valid UTF-8). Each Add costs a decode
// of the few ids since the last finished text, not of the whole sequence.
// Serving feeds it each sampled id (stop ids excluded) and sends what Add
// returns; stop strings are then searched in the text sent so far plus the
// new piece. Not thread-safe; the tokenizer must outlive it.
class StreamDecoder {
 public:
  StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens);

  // Adds one id; returns the text that became final (often empty).
  std::string Add(int32_t id);
  // Ends the stream: returns what is still held back (an unfinished
  // character decodes as U+FFFD, as in Decode).
  std::string Finish();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> ids_;  // from the start of the last emitted window
  size_t read_ = 0;           // ids_[0, read_) were decoded and emitted
  std::string prefix_text_;   // Decode(ids_[0, read_))
};

// tokenizer.json text for the built-in tiny model: byte-level BPE with 256
// byte tokens whose id equals the byte value (token strings per the GPT-2
// byte-to-unicode map), no merges, and the special tokens
// "<|begin_of_text|>" = 256, "<|end_of_text|>" = 257, "<|pad|>" = 258; a
// ByteLevel pre-tokenizer (add_prefix_space false), a TemplateProcessing
// post-processor that puts "<|begin_of_text|>" in front (as Llama 3's
// does) and a ByteLevel decoder.
// HF tokenizers loads it and gives the same ids.
std::string MakeByteLevelTokenizerJson();

}  // namespace lorad::model

#endif  // LORAD_MODEL_TOKENIZER_H_
