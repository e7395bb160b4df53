#include "objective.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "lorad/common/files.h"
#include "lorad/common/status_macros.h"

namespace lorad::worker {

absl::StatusOr<std::unique_ptr<Objective>> MakeObjective(
    const LlamaModel& model, const TrainJob& job) {
  const std::string& method = job.hp.method();
  if (method.empty() || method == "sft") return MakeSftObjective(model, job);
  if (method == "dpo") return MakeDpoObjective(model, job);
  return absl::InvalidArgumentError(absl::StrCat(
      "method \"", method, "\" unknown; expected \"sft\" or \"dpo\""));
}

absl::StatusOr<ParsedDataset> ReadDataset(const std::string& path,
                                          bool train_on_prompt) {
  LORAD_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  absl::StatusOr<ParsedDataset> parsed =
      ParseJsonlDataset(text, train_on_prompt);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", parsed.status().message()));
  }
  return parsed;
}

std::string EosText(const LlamaModel& model) {
  for (const auto& [name, text] : model.chat_template().special_tokens) {
    if (name == "eos_token" && !text.empty()) return text;
  }
  if (model.config().eos_token_ids.empty()) return "";
  return model.tokenizer().Decode(
      {static_cast<int32_t>(model.config().eos_token_ids[0])}, false);
}

int32_t PadId(const LlamaModel& model) {
  const auto& config = model.config();
  if (config.pad_token_id >= 0) {
    return static_cast<int32_t>(config.pad_token_id);
  }
  return config.eos_token_ids.empty()
             ? 0
             : static_cast<int32_t>(config.eos_token_ids[0]);
}

std::vector<std::vector<int64_t>> InOrderBatches(int64_t n,
                                                 int64_t batch_size) {
  std::vector<std::vector<int64_t>> batches;
  for (int64_t start = 0; start < n; start += batch_size) {
    std::vector<int64_t>& pick = batches.emplace_back();
    for (int64_t i = start; i < std::min(n, start + batch_size); ++i) {
      pick.push_back(i);
    }
  }
  return batches;
}

}  // namespace lorad::worker
