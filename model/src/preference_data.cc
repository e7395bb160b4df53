#include "lorad/model/preference_data.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lorad/common/status_macros.h"
#include "nlohmann/json.hpp"

namespace lorad::model {
namespace {

size_t CommonPrefix(const std::vector<int32_t>& a,
                    const std::vector<int32_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

std::string WithEos(const std::string& text, const std::string& eos) {
  if (eos.empty() || absl::EndsWith(text, eos)) return text;
  return text + eos;
}

// The ids of `messages` (the prompt, then `completion`) through the chat
// template, as apply_chat_template(tokenize=True) gives them.
absl::StatusOr<std::vector<int32_t>> ChatIds(
    const Example& ex, const std::vector<DatasetMessage>& completion,
    bool add_generation_prompt, const ChatTemplate& chat,
    const Tokenizer& tokenizer) {
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  for (const auto* part : {&ex.preference.prompt_messages, &completion}) {
    for (const auto& [role, content] : *part) {
      messages.push_back({{"role", role}, {"content", content}});
    }
  }
  ChatRenderOptions options;
  options.add_generation_prompt = add_generation_prompt;
  absl::StatusOr<std::string> text =
      RenderChatMessages(chat, messages, options);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("line ", ex.line, ": ", text.status().message()));
  }
  return tokenizer.Encode(*text);
}

// prompt ids, prompt + chosen ids, prompt + rejected ids.
struct FullIds {
  std::vector<int32_t> prompt, chosen, rejected;
};

absl::StatusOr<FullIds> PairIds(const Example& ex, const Tokenizer& tokenizer,
                                const PreferenceTokenizeOptions& options) {
  const PreferencePair& pair = ex.preference;
  FullIds ids;
  if (!pair.conversational) {
    ids.prompt = tokenizer.EncodeWithSpecialTokens(pair.prompt);
    ids.chosen = tokenizer.EncodeWithSpecialTokens(
        pair.prompt + WithEos(pair.chosen, options.eos_text));
    ids.rejected = tokenizer.EncodeWithSpecialTokens(
        pair.prompt + WithEos(pair.rejected, options.eos_text));
    return ids;
  }
  static const ChatTemplate* const kPlain = new ChatTemplate();
  const ChatTemplate& chat = options.chat != nullptr ? *options.chat : *kPlain;
  LORAD_ASSIGN_OR_RETURN(ids.prompt, ChatIds(ex, {}, true, chat, tokenizer));
  LORAD_ASSIGN_OR_RETURN(
      ids.chosen, ChatIds(ex, pair.chosen_messages, false, chat, tokenizer));
  LORAD_ASSIGN_OR_RETURN(ids.rejected, ChatIds(ex, pair.rejected_messages,
                                               false, chat, tokenizer));
  return ids;
}

// The first `max_len` tokens of `full`, labelled from `prompt_len` on.
TokenSequence Labelled(const std::vector<int32_t>& full, size_t prompt_len,
                       int64_t max_len) {
  const size_t n = std::min(full.size(), static_cast<size_t>(max_len));
  TokenSequence seq;
  seq.ids.assign(full.begin(), full.begin() + n);
  seq.labels.assign(n, kIgnoreLabel);
  for (size_t k = prompt_len; k < n; ++k) seq.labels[k] = seq.ids[k];
  return seq;
}

}  // namespace

absl::StatusOr<std::vector<PreferenceTokens>> TokenizePreferenceDataset(
    const ParsedDataset& data, const Tokenizer& tokenizer,
    const PreferenceTokenizeOptions& options) {
  if (data.format != DatasetFormat::kPreference) {
    return absl::InvalidArgumentError(absl::StrCat(
        "DPO trains on preference pairs (keys \"prompt\", \"chosen\", "
        "\"rejected\"), but the dataset is in the \"",
        std::string(DatasetFormatName(data.format)), "\" format"));
  }
  std::vector<PreferenceTokens> out;
  for (const Example& ex : data.examples) {
    LORAD_ASSIGN_OR_RETURN(FullIds ids, PairIds(ex, tokenizer, options));
    const size_t prompt_len = std::min(CommonPrefix(ids.prompt, ids.chosen),
                                       CommonPrefix(ids.prompt, ids.rejected));
    if (static_cast<int64_t>(prompt_len) >= options.max_seq_len) continue;
    out.push_back({Labelled(ids.chosen, prompt_len, options.max_seq_len),
                   Labelled(ids.rejected, prompt_len, options.max_seq_len)});
  }
  return out;
}

void SplitValidation(std::vector<PreferenceTokens>* train,
                     std::vector<PreferenceTokens>* validation, double fraction,
                     uint64_t seed) {
  const std::vector<bool> held =
      ValidationMask(static_cast<int64_t>(train->size()), fraction, seed);
  std::vector<PreferenceTokens> kept;
  for (size_t i = 0; i < train->size(); ++i) {
    (held[i] ? *validation : kept).push_back(std::move((*train)[i]));
  }
  *train = std::move(kept);
}

}  // namespace lorad::model
