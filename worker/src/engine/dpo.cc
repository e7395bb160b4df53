#include "dpo.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lorad/common/status_macros.h"
#include "lorad/model/preference_data.h"
#include "objective.h"

namespace lorad::worker {

absl::StatusOr<DpoLossType> ParseDpoLossType(std::string_view name) {
  if (name == "sigmoid") return DpoLossType::kSigmoid;
  if (name == "ipo") return DpoLossType::kIpo;
  return absl::InvalidArgumentError(
      absl::StrCat("dpo_loss_type \"", std::string(name),
                   "\" unknown; expected \"sigmoid\" or \"ipo\""));
}

torch::Tensor SequenceLogProbs(const torch::Tensor& logits,
                               const torch::Tensor& labels) {
  return -NextTokenNllOfLogits(logits, labels, at::Reduction::None).sum(1);
}

torch::Tensor SequenceLogProbs(const LlamaModel& model,
                               const torch::Tensor& hidden,
                               const torch::Tensor& labels) {
  return -model.NextTokenNll(hidden, labels, at::Reduction::None).sum(1);
}

DpoTerms DpoLoss(const torch::Tensor& policy, const torch::Tensor& reference,
                 const torch::Tensor& completion_tokens, double beta,
                 DpoLossType type) {
  const std::vector<torch::Tensor> pol = policy.chunk(2, 0);
  const std::vector<torch::Tensor> ref = reference.chunk(2, 0);
  const torch::Tensor chosen_lr = pol[0] - ref[0];
  const torch::Tensor rejected_lr = pol[1] - ref[1];
  torch::Tensor losses;
  if (type == DpoLossType::kSigmoid) {
    losses = -torch::log_sigmoid(beta * (chosen_lr - rejected_lr));
  } else {
    const std::vector<torch::Tensor> n =
        completion_tokens.to(torch::kFloat32).clamp_min(1.0).chunk(2, 0);
    const torch::Tensor delta = chosen_lr / n[0] - rejected_lr / n[1];
    losses = (delta - 1.0 / (2.0 * beta)).pow(2);
  }
  DpoTerms terms;
  terms.loss = losses.mean();
  terms.losses = losses.detach();
  terms.chosen_rewards = beta * chosen_lr.detach();
  terms.rejected_rewards = beta * rejected_lr.detach();
  terms.chosen_logps = pol[0].detach();
  terms.rejected_logps = pol[1].detach();
  return terms;
}

void DpoTotals::Add(const DpoTerms& t) {
  pairs_ += t.losses.size(0);
  loss_ += t.losses.sum().item<double>();
  chosen_ += t.chosen_rewards.sum().item<double>();
  rejected_ += t.rejected_rewards.sum().item<double>();
  correct_ += t.chosen_rewards.gt(t.rejected_rewards).sum().item<int64_t>();
  logps_chosen_ += t.chosen_logps.sum().item<double>();
  logps_rejected_ += t.rejected_logps.sum().item<double>();
}

double DpoTotals::MeanLoss() const {
  return pairs_ == 0 ? 0.0 : loss_ / static_cast<double>(pairs_);
}

void DpoTotals::Fill(lorad::worker::v1::DpoMetrics* out) const {
  const double n = std::max<double>(1, static_cast<double>(pairs_));
  out->set_rewards_chosen(static_cast<float>(chosen_ / n));
  out->set_rewards_rejected(static_cast<float>(rejected_ / n));
  out->set_reward_margin(static_cast<float>((chosen_ - rejected_) / n));
  out->set_reward_accuracy(static_cast<float>(correct_ / n));
  out->set_logps_chosen(static_cast<float>(logps_chosen_ / n));
  out->set_logps_rejected(static_cast<float>(logps_rejected_ / n));
}

namespace {

struct PairBatch {
  torch::Tensor ids;                // [2B, T] long, the chosen rows first
  torch::Tensor labels;             // [2B, T] long, -100 off the completion
  torch::Tensor completion_tokens;  // [2B]
  int64_t tokens = 0;               // non-pad tokens
};

PairBatch MakePairBatch(const std::vector<model::PreferenceTokens>& pairs,
                        const std::vector<int64_t>& pick, int32_t pad_id,
                        torch::Device device) {
  std::vector<const model::TokenSequence*> rows;
  for (int64_t i : pick) rows.push_back(&pairs[i].chosen);
  for (int64_t i : pick) rows.push_back(&pairs[i].rejected);
  int64_t longest = 0;
  for (const model::TokenSequence* s : rows) {
    longest = std::max<int64_t>(longest, s->ids.size());
  }
  const int64_t r = static_cast<int64_t>(rows.size());
  torch::Tensor ids = torch::full({r, longest}, pad_id, torch::kLong);
  torch::Tensor labels =
      torch::full({r, longest}, model::kIgnoreLabel, torch::kLong);
  torch::Tensor counts = torch::zeros({r}, torch::kLong);
  auto ia = ids.accessor<int64_t, 2>();
  auto la = labels.accessor<int64_t, 2>();
  auto ca = counts.accessor<int64_t, 1>();
  PairBatch batch;
  for (int64_t k = 0; k < r; ++k) {
    const model::TokenSequence& s = *rows[k];
    for (size_t t = 0; t < s.ids.size(); ++t) {
      ia[k][t] = s.ids[t];
      la[k][t] = s.labels[t];
      ca[k] += s.labels[t] != model::kIgnoreLabel;
    }
    batch.tokens += static_cast<int64_t>(s.ids.size());
  }
  batch.ids = ids.to(device);
  batch.labels = labels.to(device);
  batch.completion_tokens = counts.to(device);
  return batch;
}

absl::StatusOr<std::vector<model::PreferenceTokens>> LoadPairs(
    const std::string& path, const LlamaModel& model,
    const lorad::worker::v1::TrainConfig& hp) {
  LORAD_ASSIGN_OR_RETURN(ParsedDataset parsed, ReadDataset(path, false));
  model::PreferenceTokenizeOptions options;
  options.max_seq_len = hp.max_seq_len();
  options.eos_text = EosText(model);
  options.chat = &model.chat_template();
  absl::StatusOr<std::vector<model::PreferenceTokens>> pairs =
      model::TokenizePreferenceDataset(parsed, model.tokenizer(), options);
  if (!pairs.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", pairs.status().message()));
  }
  return pairs;
}

class DpoObjective final : public Objective {
 public:
  DpoObjective(const LlamaModel& model, double beta, DpoLossType type,
               std::vector<model::PreferenceTokens> train,
               std::vector<model::PreferenceTokens> eval)
      : model_(model),
        pad_id_(PadId(model)),
        beta_(beta),
        type_(type),
        train_(std::move(train)),
        eval_(std::move(eval)) {}

  int64_t num_train() const override {
    return static_cast<int64_t>(train_.size());
  }
  int64_t num_eval() const override {
    return static_cast<int64_t>(eval_.size());
  }

  void Shape(model::TrainingShape* shape) const override {
    int64_t longest = 0;
    for (const model::PreferenceTokens& p : train_) {
      longest = std::max<int64_t>(
          longest, std::max(p.chosen.ids.size(), p.rejected.ids.size()));
    }
    shape->seq_len = longest;
    shape->preference = true;
  }

  PreparedMicroBatch Prepare(const std::vector<int64_t>& pick,
                             int64_t* tokens) override {
    PairBatch batch = MakePairBatch(train_, pick, pad_id_, model_.device());
    *tokens += batch.tokens;
    PreparedMicroBatch prepared;
    prepared.ids = batch.ids;
    prepared.pad_id = pad_id_;
    prepared.dropout = false;  // as TRL's disable_dropout
    prepared.loss =
        [this, reference = ReferenceLogProbs(batch), labels = batch.labels,
         completion = batch.completion_tokens](const torch::Tensor& hidden) {
          DpoTerms terms = DpoLoss(SequenceLogProbs(model_, hidden, labels),
                                   reference, completion, beta_, type_);
          step_.Add(terms);
          return terms.loss;
        };
    return prepared;
  }

  void FinishStep(lorad::worker::v1::TrainStep* step) override {
    step_.Fill(step->mutable_dpo());
    step_ = DpoTotals();
  }

  void Evaluate(const AdapterSet& adapter, int64_t batch_size,
                DeviceTurns* turns,
                lorad::worker::v1::EvalResult* out) override {
    torch::NoGradGuard no_grad;
    ForwardOptions policy;
    policy.adapter = &adapter;
    policy.hidden_out = true;
    DpoTotals totals;
    for (const std::vector<int64_t>& pick :
         InOrderBatches(static_cast<int64_t>(eval_.size()), batch_size)) {
      DeviceTurn turn(turns, DeviceTurn::Kind::kTraining);
      PairBatch batch = MakePairBatch(eval_, pick, pad_id_, model_.device());
      totals.Add(Terms(batch, policy));
    }
    out->set_eval_loss(static_cast<float>(totals.MeanLoss()));
    totals.Fill(out->mutable_dpo());
  }

 private:
  // The reference first, without gradient, so its activations are gone
  // before the policy's are kept for backward.
  DpoTerms Terms(const PairBatch& batch, const ForwardOptions& policy) {
    torch::Tensor reference = ReferenceLogProbs(batch);
    torch::Tensor logps = SequenceLogProbs(
        model_, model_.Forward(batch.ids, policy), batch.labels);
    return DpoLoss(logps, reference, batch.completion_tokens, beta_, type_);
  }

  // The frozen base's (the adapter off) sequence log-probabilities.
  torch::Tensor ReferenceLogProbs(const PairBatch& batch) const {
    torch::NoGradGuard no_grad;
    ForwardOptions base;
    base.hidden_out = true;
    return SequenceLogProbs(model_, model_.Forward(batch.ids, base),
                            batch.labels);
  }

  const LlamaModel& model_;
  const int32_t pad_id_;
  const double beta_;
  const DpoLossType type_;
  std::vector<model::PreferenceTokens> train_;
  std::vector<model::PreferenceTokens> eval_;
  DpoTotals step_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Objective>> MakeDpoObjective(
    const LlamaModel& model, const TrainJob& job) {
  const lorad::worker::v1::TrainConfig& hp = job.hp;
  LORAD_ASSIGN_OR_RETURN(DpoLossType type,
                         ParseDpoLossType(hp.dpo_loss_type()));
  if (!(hp.dpo_beta() > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("dpo_beta must be above 0 (got ", hp.dpo_beta(), ")"));
  }
  if (hp.packing()) {
    return absl::InvalidArgumentError(
        "packing does not apply to DPO: each pair is its own two sequences");
  }
  LORAD_ASSIGN_OR_RETURN(std::vector<model::PreferenceTokens> train,
                         LoadPairs(job.training_path, model, hp));
  std::vector<model::PreferenceTokens> eval;
  if (!job.validation_path.empty()) {
    LORAD_ASSIGN_OR_RETURN(eval, LoadPairs(job.validation_path, model, hp));
  } else {
    model::SplitValidation(&train, &eval, hp.validation_split(), hp.seed());
  }
  if (train.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        job.training_path, ": every pair's prompt takes max_seq_len (",
        hp.max_seq_len(), ") tokens or more, so no completion is left"));
  }
  return std::make_unique<DpoObjective>(model, hp.dpo_beta(), type,
                                        std::move(train), std::move(eval));
}

}  // namespace lorad::worker
