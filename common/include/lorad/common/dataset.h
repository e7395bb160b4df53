// Parsing of fine-tuning datasets in JSONL form (one JSON object a line) into
// examples made of text segments, each marked trainable or not.
//
// Formats, detected from the keys of the first example:
//   text               {"text": "..."}
//   prompt_completion  {"prompt": "...", "completion": "..."}
//   instruction        {"instruction": "...", "context": "..."?,
//                       "response": "..."}   (Alpaca/Dolly style)
//   chat               {"messages": [{"role": "...", "content": "..."}, ...]}
//   preference         {"prompt": "...", "chosen": "...", "rejected": "..."}
//                      or TRL's conversational form: each of the three a
//                      list of messages as in "messages" above, where
//                      "chosen" and "rejected" hold at least one
//                      "assistant" message (normally exactly one)
// A key that marks no format (an "id", Dolly's "category") is ignored. Keys
// that mark two formats at once (say "text" and "prompt") are an error.
// "chosen" or "rejected" marks the preference format, and "prompt" marks
// prompt_completion only without them.
//
// Rendering into segments is fixed, so that the same dataset always trains
// on the same token stream:
//   text               [text (trainable)]
//   prompt_completion  [prompt, completion (trainable)]
//   instruction        ["### Instruction:\n{instruction}\n\n"
//                       + "### Input:\n{context}\n\n" (only if context is
//                         present and non-empty)
//                       + "### Response:\n",
//                       "{response}" (trainable)]
//   chat               for each message: "<|{role}|>\n", then "{content}\n"
//                      (trainable only when the role is "assistant")
// The trainer tokenizes the segments in order and appends EOS itself; the
// parser adds no special tokens. A preference example has no segments: its
// pair is in Example::preference, for DPO (model/preference_data.h).
//
// All functions here are pure and thread-safe.
#ifndef LORAD_COMMON_DATASET_H_
#define LORAD_COMMON_DATASET_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace lorad {

enum class DatasetFormat {
  kText,
  kPromptCompletion,
  kInstruction,
  kChat,
  kPreference
};

// "text", "prompt_completion", "instruction", "chat" or "preference" (the
// names used in lorad.v1.Dataset.format).
std::string_view DatasetFormatName(DatasetFormat f);

// A run of text and whether the loss is taken on its tokens.
struct Segment {
  std::string text;
  bool trainable = false;
};

// A (role, content) message as given.
using DatasetMessage = std::pair<std::string, std::string>;

// A preference example: two completions of one prompt, the first preferred.
// The text form fills the three strings; the conversational form fills the
// three message lists instead.
struct PreferencePair {
  bool conversational = false;
  std::string prompt, chosen, rejected;
  std::vector<DatasetMessage> prompt_messages, chosen_messages,
      rejected_messages;
};

// One rendered example.
struct Example {
  std::vector<Segment> segments;
  // The chat format's messages as given, (role, content), for a trainer
  // that renders them with the model's own chat template instead.
  std::vector<DatasetMessage> messages;
  PreferencePair preference;  // the preference format only
  int64_t line = 0;           // 1-based line of the source file it came from
};

struct ParsedDataset {
  DatasetFormat format;
  std::vector<Example> examples;  // in file order
};

// Limits on outside input: a file of more lines than this, or one line of
// more bytes than this (not counting its line ending), is refused.
inline constexpr int64_t kMaxDatasetLines = 2'000'000;
inline constexpr size_t kMaxDatasetLineBytes = size_t{1} << 20;

// Parses a JSONL dataset. Lines end in "\n" or "\r\n"; a UTF-8 byte order
// mark at the start is skipped; lines holding only whitespace are skipped.
// Every non-blank line must be a JSON object in the format of the first one.
// With `train_on_prompt`, every segment is trainable (loss on the whole text).
// A preference row's three fields are all strings or all message lists.
//
// Errors are InvalidArgument and name the 1-based line and the field, e.g.
//   line 3: not valid JSON (column 7: syntax error ...)
//   line 17: field "response" missing
//   line 5: field "prompt" must be a string
//   line 9: format "chat" expected (like line 1) but found keys {"text"}
//   line 2: unknown format: keys {"foo"}; expected one of ...
//   line 4: field "messages[1].role" must be "system", "user" or "assistant"
//   line 4: field "messages" must contain at least one "assistant" message
//   line 6: field "chosen" must be a string, like "prompt"
//   line 6: field "rejected" must contain at least one "assistant" message
//   line 8: longer than 1 MiB (1048577 bytes)
//   dataset is empty
absl::StatusOr<ParsedDataset> ParseJsonlDataset(std::string_view contents,
                                                bool train_on_prompt = false);

}  // namespace lorad

#endif  // LORAD_COMMON_DATASET_H_
