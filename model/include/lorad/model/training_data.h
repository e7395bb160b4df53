// Turns a parsed JSONL dataset into token sequences with loss masks, and
// sequences into padded batches.
#ifndef LORAD_MODEL_TRAINING_DATA_H_
#define LORAD_MODEL_TRAINING_DATA_H_

#include <cstdint>
#include <vector>

#include "lorad/common/dataset.h"
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
  int32_t bos_id = -1;   // prepended to each example when >= 0
  int32_t eos_id = -1;   // appended (trainable) when >= 0
};

// Examples longer than max_seq_len are truncated; with packing, the token
// stream of all examples is cut into windows of max_seq_len (the last one
// may be shorter). Sequences with no trainable label are dropped.
std::vector<TokenSequence> TokenizeDataset(const ParsedDataset& data,
                                           const Tokenizer& tokenizer,
                                           const TokenizeOptions& options);

// A deterministic split: shuffles indices with `seed` and holds out
// round(fraction * n) sequences (at least 1 when fraction > 0 and n > 1).
void SplitValidation(std::vector<TokenSequence>* train,
                     std::vector<TokenSequence>* validation, double fraction,
                     uint64_t seed);

// The order of sequences in epoch `epoch`: a permutation drawn from `seed`
// and the epoch number, the same every time.
std::vector<int64_t> EpochOrder(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace lorad::model

#endif  // LORAD_MODEL_TRAINING_DATA_H_
