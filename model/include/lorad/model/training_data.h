// Turns a parsed JSONL dataset into token sequences with loss masks, the
// way TRL's SFTTrainer does for the same rows (so that an adapter trained
// here sees the tokens it will see when served by transformers, vLLM or
// lorad), and sequences into padded batches.
//
//   text               tokenizer(text + eos_text) (eos_text appended unless
//                      the text ends with it); loss on every token.
//   prompt_completion, instruction
//                      tokenizer(prompt) and tokenizer(prompt + completion
//                      + eos_text); the loss starts where the two stop
//                      agreeing (TRL's completion mask), or on every token
//                      with train_on_prompt.
//   chat, with a template
//                      the template rendered over all messages without a
//                      generation prompt, tokenized without special tokens
//                      (apply_chat_template(tokenize=True)); with
//                      train_on_prompt the loss is on every token (TRL's
//                      default), else on the assistant turns only:
//                      - a template with {% generation %} blocks: exactly
//                        TRL's assistant_only_loss=True, i.e. transformers'
//                        assistant_masks: the tokens whose span of the text
//                        (Tokenizer::EncodeWithOffsets) overlaps a span the
//                        blocks rendered (jinja::Template::Render), so a
//                        token that starts before a block and ends inside
//                        it is learned. A row where the blocks mark no
//                        token is an error, as TRL raises one.
//                      - a template without them: for each assistant turn,
//                        the tokens between the conversation before it
//                        rendered with a generation prompt and the
//                        conversation through it (the turn's text and its
//                        end-of-turn token). TRL instead swaps in its own
//                        training copy of the templates it knows (Qwen 2.5
//                        and 3, Llama 3.x, Gemma, Phi-3, ...) and refuses
//                        any other; lorad ships no such copies, so where
//                        TRL has one the two can differ by a few tokens per
//                        turn (with Qwen 2.5 TRL also learns the newline
//                        after "<|im_start|>assistant"). A model directory
//                        whose template has the blocks gets TRL's mask.
//   chat, no template  the fixed "<|role|>\n" segments of common/dataset.h
//                      after the tokenizer's prefix ids, then eos.
// Tokenizer's "with special tokens" means its post-processor (BOS for most
// models), exactly as transformers' tokenizer(text).
#ifndef LORAD_MODEL_TRAINING_DATA_H_
#define LORAD_MODEL_TRAINING_DATA_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "lorad/common/dataset.h"
#include "lorad/model/chat_template.h"
#include "lorad/model/tokenizer.h"

namespace lorad::model {

inline constexpr int32_t kIgnoreLabel = -100;

struct TokenSequence {
  std::vector<int32_t> ids;
  // labels[i] == ids[i] where the loss applies at position i, else -100.
  std::vector<int32_t> labels;
};

struct TokenizeOptions {
  int64_t max_seq_len = 512;
  bool packing = false;  // concatenate examples and cut into full windows
  bool train_on_prompt = false;
  // The tokenizer's EOS token as text (tokenizer_config.json's eos_token);
  // empty: none is appended.
  std::string eos_text;
  // The model's chat template; null, or the plain form, for none.
  const ChatTemplate* chat = nullptr;
};

// Examples longer than max_seq_len are truncated; with packing, the token
// stream of all examples is cut into windows of max_seq_len (the last one
// may be shorter). Sequences with no trainable label are dropped.
// InvalidArgument naming the line when the chat template refuses a row
// (its raise_exception message).
absl::StatusOr<std::vector<TokenSequence>> TokenizeDataset(
    const ParsedDataset& data, const Tokenizer& tokenizer,
    const TokenizeOptions& options);

// A deterministic split: shuffles indices with `seed` and holds out
// round(fraction * n) sequences (at least 1 when fraction > 0 and n > 1).
// ValidationMask says which of n are held out.
std::vector<bool> ValidationMask(int64_t n, double fraction, uint64_t seed);
void SplitValidation(std::vector<TokenSequence>* train,
                     std::vector<TokenSequence>* validation, double fraction,
                     uint64_t seed);

// The order of sequences in epoch `epoch`: a permutation drawn from `seed`
// and the epoch number, the same every time.
std::vector<int64_t> EpochOrder(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace lorad::model

#endif  // LORAD_MODEL_TRAINING_DATA_H_
