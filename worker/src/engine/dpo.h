// Direct Preference Optimization (hp.method "dpo") on preference pairs
// (model/preference_data.h), computed as TRL 1.16's DPOTrainer computes it
// for a PEFT model without a separate reference model:
//
//   log-probs   per sequence, the sum over the completion's tokens of
//               log p(token | tokens before it); the policy is the model
//               with the adapter, the reference the same model with the
//               adapter off (ForwardOptions::adapter = nullptr, no
//               gradient; no second copy of the base).
//   log-ratios  chosen_lr = policy(chosen) - reference(chosen), likewise
//               rejected_lr.
//   sigmoid     -log sigmoid(beta * (chosen_lr - rejected_lr))
//   ipo         (chosen_lr / |chosen| - rejected_lr / |rejected| -
//                1 / (2 beta))^2, |x| the completion's token count (at
//               least 1): TRL's length-normalised IPO.
//   loss        the mean over the pairs of a micro-batch.
//   metrics     rewards = beta * log-ratio (chosen, rejected), margin =
//               their difference, accuracy = the share of pairs whose
//               chosen reward is the higher, logps = the policy's summed
//               log-probs; means over the pairs of a step or evaluation.
//
// As TRL does by default (disable_dropout), LoRA dropout is off in DPO.
// A micro-batch of B pairs is one forward of 2B rows, the chosen sequences
// first, right-padded.
#ifndef LORAD_WORKER_ENGINE_DPO_H_
#define LORAD_WORKER_ENGINE_DPO_H_

#include <torch/torch.h>

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "lorad/internal/worker/v1/worker.pb.h"
#include "lorad/worker/llama_model.h"

namespace lorad::worker {

enum class DpoLossType { kSigmoid, kIpo };

// "sigmoid" or "ipo"; InvalidArgument naming anything else.
absl::StatusOr<DpoLossType> ParseDpoLossType(std::string_view name);

// For logits [R, T, V] of ids whose labels [R, T] hold the id where the
// token counts and -100 elsewhere: per row, the summed log-probability of
// each counted token at t >= 1 given the tokens before it, [R] fp32.
torch::Tensor SequenceLogProbs(const torch::Tensor& logits,
                               const torch::Tensor& labels);
// The same from `model`'s hidden states (Forward with hidden_out), through
// LlamaModel::NextTokenNll.
torch::Tensor SequenceLogProbs(const LlamaModel& model,
                               const torch::Tensor& hidden,
                               const torch::Tensor& labels);

struct DpoTerms {
  torch::Tensor loss;  // scalar, the mean over pairs; carries the policy's
                       // gradient
  // Per pair [B], without gradient.
  torch::Tensor losses;
  torch::Tensor chosen_rewards, rejected_rewards;
  torch::Tensor chosen_logps, rejected_logps;  // the policy's
};

// `policy` and `reference` are [2B] log-probs (the B chosen rows first),
// `completion_tokens` [2B] the completions' token counts.
DpoTerms DpoLoss(const torch::Tensor& policy, const torch::Tensor& reference,
                 const torch::Tensor& completion_tokens, double beta,
                 DpoLossType type);

// Sums over pairs, for the means a step or an evaluation reports.
class DpoTotals {
 public:
  void Add(const DpoTerms& terms);
  int64_t pairs() const { return pairs_; }
  double MeanLoss() const;
  // The means; all zero without pairs.
  void Fill(lorad::worker::v1::DpoMetrics* out) const;

 private:
  int64_t pairs_ = 0;
  double loss_ = 0, chosen_ = 0, rejected_ = 0, correct_ = 0;
  double logps_chosen_ = 0, logps_rejected_ = 0;
};

}  // namespace lorad::worker

#endif  // LORAD_WORKER_ENGINE_DPO_H_
