// Turns a preference dataset (common/dataset.h, format "preference") into
// token sequences for DPO exactly as TRL 1.16's DPOTrainer prepares and
// collates the same rows, so the log-probabilities DPO compares are of the
// same tokens:
//
//   text rows        EOS text appended to "chosen" and "rejected" unless
//                    they end with it; then tokenizer(prompt),
//                    tokenizer(prompt + chosen) and tokenizer(prompt +
//                    rejected), each with the tokenizer's special tokens
//                    (BOS for most models), as transformers' tokenizer(text).
//   conversational   the chat template over the prompt messages with the
//                    generation prompt, and over the prompt followed by the
//                    chosen (rejected) messages without it, tokenized
//                    without special tokens (apply_chat_template(
//                    tokenize=True)); no EOS is added, the template closes
//                    the turn. A model without a template renders the plain
//                    form of model/chat_template.h (TRL would refuse).
//
// The prompt is the longest prefix the prompt's ids share with both full
// sequences (TRL's common_prefix_length); each completion is the rest of
// its full sequence. A pair whose prompt takes max_seq_len tokens or more
// is dropped (TRL's filter for truncation_mode "keep_start"); otherwise
// each sequence is cut to its first max_seq_len tokens (TRL's max_length).
#ifndef LORAD_MODEL_PREFERENCE_DATA_H_
#define LORAD_MODEL_PREFERENCE_DATA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lorad/common/dataset.h"
#include "lorad/model/chat_template.h"
#include "lorad/model/tokenizer.h"
#include "lorad/model/training_data.h"

namespace lorad::model {

// One pair: the prompt followed by each completion, labels (the id, else
// kIgnoreLabel) on the completion's tokens only (TRL's completion_mask).
struct PreferenceTokens {
  TokenSequence chosen;
  TokenSequence rejected;
};

struct PreferenceTokenizeOptions {
  int64_t max_seq_len = 512;  // TRL's max_length, per sequence
  // The tokenizer's EOS token as text; empty: none is appended.
  std::string eos_text;
  // The model's chat template; null, or the plain form, for none.
  const ChatTemplate* chat = nullptr;
};

// InvalidArgument when `data` is not in the preference format (saying so),
// or naming the line when the chat template refuses a row.
absl::StatusOr<std::vector<PreferenceTokens>> TokenizePreferenceDataset(
    const ParsedDataset& data, const Tokenizer& tokenizer,
    const PreferenceTokenizeOptions& options);

// SplitValidation (training_data.h) for pairs: the same pairs held out as
// the same number of sequences would be.
void SplitValidation(std::vector<PreferenceTokens>* train,
                     std::vector<PreferenceTokens>* validation, double fraction,
                     uint64_t seed);

}  // namespace lorad::model

#endif  // LORAD_MODEL_PREFERENCE_DATA_H_
