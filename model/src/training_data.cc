#include "lorad/model/training_data.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lorad/common/status_macros.h"
#include "nlohmann/json.hpp"

namespace lorad::model {
namespace {

bool HasTarget(const TokenSequence& s) {
  return std::any_of(s.labels.begin() + (s.labels.empty() ? 0 : 1),
                     s.labels.end(),
                     [](int32_t l) { return l != kIgnoreLabel; });
}

void Append(TokenSequence& seq, const std::vector<int32_t>& ids,
            bool trainable) {
  for (int32_t id : ids) {
    seq.ids.push_back(id);
    seq.labels.push_back(trainable ? id : kIgnoreLabel);
  }
}

std::string WithEos(const std::string& text, const std::string& eos) {
  if (eos.empty() || absl::EndsWith(text, eos)) return text;
  return text + eos;
}

size_t CommonPrefix(const std::vector<int32_t>& a,
                    const std::vector<int32_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

absl::Status LineError(const Example& ex, const absl::Status& status) {
  return absl::InvalidArgumentError(
      absl::StrCat("line ", ex.line, ": ", status.message()));
}

// The chat template over messages [0, end), as transformers' message list;
// with `generation_spans`, also where its {% generation %} blocks rendered.
absl::StatusOr<std::string> Render(
    const Example& ex, size_t end, bool add_generation_prompt,
    const ChatTemplate& chat,
    std::vector<std::pair<size_t, size_t>>* generation_spans = nullptr) {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  for (size_t i = 0; i < end; ++i) {
    messages.push_back(
        {{"role", ex.messages[i].first}, {"content", ex.messages[i].second}});
  }
  ChatRenderOptions options;
  options.add_generation_prompt = add_generation_prompt;
  options.generation_spans = generation_spans;
  absl::StatusOr<std::string> text =
      RenderChatMessages(chat, messages, options);
  if (!text.ok()) return LineError(ex, text.status());
  return text;
}

absl::StatusOr<std::vector<int32_t>> RenderIds(const Example& ex, size_t end,
                                               bool add_generation_prompt,
                                               const ChatTemplate& chat,
                                               const Tokenizer& tokenizer) {
  LORAD_ASSIGN_OR_RETURN(std::string text,
                         Render(ex, end, add_generation_prompt, chat));
  return tokenizer.Encode(text);
}

// TRL's assistant_only_loss: transformers' assistant_masks, made in one pass
// over the tokens (both lists are in order): a token is learned when its
// offsets overlap the current span. Offsets and spans are bytes on
// character boundaries, so comparing them compares transformers' character
// offsets.
absl::StatusOr<TokenSequence> TokenizeChatWithGenerationBlocks(
    const Example& ex, const Tokenizer& tokenizer, const ChatTemplate& chat) {
  std::vector<std::pair<size_t, size_t>> spans;
  LORAD_ASSIGN_OR_RETURN(std::string text,
                         Render(ex, ex.messages.size(), false, chat, &spans));
  std::vector<std::pair<size_t, size_t>> offsets;
  const std::vector<int32_t> ids = tokenizer.EncodeWithOffsets(text, &offsets);
  TokenSequence seq;
  Append(seq, ids, false);
  size_t span = 0;
  bool any = false;
  for (size_t k = 0; k < ids.size(); ++k) {
    while (span < spans.size() && offsets[k].first >= spans[span].second) {
      ++span;
    }
    if (span == spans.size()) break;
    if (offsets[k].second > spans[span].first) {
      seq.labels[k] = ids[k];
      any = true;
    }
  }
  if (!any) {
    return LineError(
        ex, absl::InvalidArgumentError(
                "the chat template's {% generation %} blocks mark no token of "
                "this conversation, so it has nothing to learn (TRL refuses "
                "such a row with assistant_only_loss too)"));
  }
  return seq;
}

absl::StatusOr<TokenSequence> TokenizeChat(const Example& ex,
                                           const Tokenizer& tokenizer,
                                           const TokenizeOptions& options) {
  const ChatTemplate& chat = *options.chat;
  if (!options.train_on_prompt && chat.jinja->has_generation()) {
    return TokenizeChatWithGenerationBlocks(ex, tokenizer, chat);
  }
  LORAD_ASSIGN_OR_RETURN(
      std::vector<int32_t> ids,
      RenderIds(ex, ex.messages.size(), false, chat, tokenizer));
  TokenSequence seq;
  Append(seq, ids, options.train_on_prompt);
  if (options.train_on_prompt) return seq;
  for (size_t i = 0; i < ex.messages.size(); ++i) {
    if (ex.messages[i].first != "assistant") continue;
    LORAD_ASSIGN_OR_RETURN(std::vector<int32_t> before,
                           RenderIds(ex, i, true, chat, tokenizer));
    LORAD_ASSIGN_OR_RETURN(std::vector<int32_t> through,
                           RenderIds(ex, i + 1, false, chat, tokenizer));
    // Where the renders stop agreeing with the whole conversation bounds
    // the turn, as TRL bounds a completion.
    const size_t begin = CommonPrefix(before, ids);
    const size_t end = CommonPrefix(through, ids);
    for (size_t k = begin; k < end; ++k) seq.labels[k] = seq.ids[k];
  }
  return seq;
}

absl::StatusOr<TokenSequence> TokenizeExample(const ParsedDataset& data,
                                              const Example& ex,
                                              const Tokenizer& tokenizer,
                                              const TokenizeOptions& options) {
  TokenSequence seq;
  switch (data.format) {
    case DatasetFormat::kText:
      Append(seq,
             tokenizer.EncodeWithSpecialTokens(
                 WithEos(ex.segments.at(0).text, options.eos_text)),
             true);
      return seq;
    case DatasetFormat::kPromptCompletion:
    case DatasetFormat::kInstruction: {
      const std::string& prompt = ex.segments.at(0).text;
      const std::vector<int32_t> prompt_ids =
          tokenizer.EncodeWithSpecialTokens(prompt);
      const std::vector<int32_t> all = tokenizer.EncodeWithSpecialTokens(
          prompt + WithEos(ex.segments.at(1).text, options.eos_text));
      const size_t split =
          options.train_on_prompt ? 0 : CommonPrefix(prompt_ids, all);
      Append(seq, std::vector<int32_t>(all.begin(), all.begin() + split),
             false);
      Append(seq, std::vector<int32_t>(all.begin() + split, all.end()), true);
      return seq;
    }
    case DatasetFormat::kChat:
      if (options.chat != nullptr && options.chat->jinja != nullptr) {
        return TokenizeChat(ex, tokenizer, options);
      }
      break;
    case DatasetFormat::kPreference:
      break;  // refused by TokenizeDataset
  }
  // No template: the fixed segments after the tokenizer's prefix ids.
  Append(seq, tokenizer.PrefixIds(), false);
  for (const Segment& s : ex.segments) {
    Append(seq, tokenizer.Encode(s.text), s.trainable);
  }
  if (!options.eos_text.empty()) {
    Append(seq, tokenizer.Encode(options.eos_text), true);
  }
  return seq;
}

}  // namespace

absl::StatusOr<std::vector<TokenSequence>> TokenizeDataset(
    const ParsedDataset& data, const Tokenizer& tokenizer,
    const TokenizeOptions& options) {
  if (data.format == DatasetFormat::kPreference) {
    return absl::InvalidArgumentError(
        "a preference dataset (keys \"prompt\", \"chosen\", \"rejected\") "
        "trains with method \"dpo\", not supervised fine-tuning");
  }
  std::vector<TokenSequence> out;
  TokenSequence stream;
  for (const Example& ex : data.examples) {
    LORAD_ASSIGN_OR_RETURN(TokenSequence seq,
                           TokenizeExample(data, ex, tokenizer, options));
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

std::vector<bool> ValidationMask(int64_t n, double fraction, uint64_t seed) {
  std::vector<bool> is_held(n, false);
  if (fraction <= 0 || n < 2) return is_held;
  int64_t held = std::max<int64_t>(
      1, static_cast<int64_t>(std::llround(fraction * static_cast<double>(n))));
  held = std::min(held, n - 1);
  std::vector<int64_t> order = EpochOrder(n, seed ^ 0x5eed5eedULL, -1);
  for (int64_t i = 0; i < held; ++i) is_held[order[i]] = true;
  return is_held;
}

void SplitValidation(std::vector<TokenSequence>* train,
                     std::vector<TokenSequence>* validation, double fraction,
                     uint64_t seed) {
  const int64_t n = static_cast<int64_t>(train->size());
  const std::vector<bool> is_held = ValidationMask(n, fraction, seed);
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
