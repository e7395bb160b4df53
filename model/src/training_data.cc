#include "lorad/model/training_data.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace lorad::model {
namespace {

bool HasTarget(const TokenSequence& s) {
  return std::any_of(s.labels.begin() + (s.labels.empty() ? 0 : 1),
                     s.labels.end(),
                     [](int32_t l) { return l != kIgnoreLabel; });
}

}  // namespace

std::vector<TokenSequence> TokenizeDataset(const ParsedDataset& data,
                                           const Tokenizer& tokenizer,
                                           const TokenizeOptions& options) {
  std::vector<TokenSequence> out;
  TokenSequence stream;
  for (const Example& ex : data.examples) {
    TokenSequence seq;
    if (options.bos_id >= 0) {
      seq.ids.push_back(options.bos_id);
      seq.labels.push_back(kIgnoreLabel);
    }
    for (const Segment& s : ex.segments) {
      for (int32_t id : tokenizer.Encode(s.text)) {
        seq.ids.push_back(id);
        seq.labels.push_back(s.trainable ? id : kIgnoreLabel);
      }
    }
    if (options.eos_id >= 0) {
      seq.ids.push_back(options.eos_id);
      seq.labels.push_back(options.eos_id);
    }
    if (options.packing) {
      stream.ids.insert(stream.ids.end(), seq.ids.begin(), seq.ids.end());
      stream.labels.insert(stream.labels.end(), seq.labels.begin(),
                           seq.labels.end());
      continue;
    }
    if (static_cast<int64_t>(seq.ids.size()) > options.max_seq_len) {
      seq.ids.resize(options.max_seq_len);
      seq.labels.resize(options.max_seq_len);
    }
    if (HasTarget(seq)) out.push_back(std::move(seq));
  }
  if (options.packing) {
    const size_t window = static_cast<size_t>(options.max_seq_len);
    for (size_t start = 0; start < stream.ids.size(); start += window) {
      size_t end = std::min(stream.ids.size(), start + window);
      TokenSequence seq;
      seq.ids.assign(stream.ids.begin() + start, stream.ids.begin() + end);
      seq.labels.assign(stream.labels.begin() + start,
                        stream.labels.begin() + end);
      if (HasTarget(seq)) out.push_back(std::move(seq));
    }
  }
  return out;
}

void SplitValidation(std::vector<TokenSequence>* train,
                     std::vector<TokenSequence>* validation, double fraction,
                     uint64_t seed) {
  const int64_t n = static_cast<int64_t>(train->size());
  if (fraction <= 0 || n < 2) return;
  int64_t held = std::max<int64_t>(
      1, static_cast<int64_t>(std::llround(fraction * static_cast<double>(n))));
  held = std::min(held, n - 1);
  std::vector<int64_t> order = EpochOrder(n, seed ^ 0x5eed5eedULL, -1);
  std::vector<bool> is_held(n, false);
  for (int64_t i = 0; i < held; ++i) is_held[order[i]] = true;
  std::vector<TokenSequence> kept;
  for (int64_t i = 0; i < n; ++i) {
    (is_held[i] ? *validation : kept).push_back(std::move((*train)[i]));
  }
  *train = std::move(kept);
}

std::vector<int64_t> EpochOrder(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed * 1000003ULL + static_cast<uint64_t>(epoch + 1));
  for (int64_t i = n - 1; i > 0; --i) {
    std::uniform_int_distribution<int64_t> pick(0, i);
    std::swap(order[i], order[pick(rng)]);
  }
  return order;
}

}  // namespace lorad::model
