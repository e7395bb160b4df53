// Supervised fine-tuning: the mean next-token cross-entropy over the
// labelled tokens of each micro-batch (model/training_data.h).
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lorad/common/status_macros.h"
#include "lorad/model/training_data.h"
#include "objective.h"

namespace lorad::worker {
namespace {

absl::StatusOr<std::vector<model::TokenSequence>> LoadSequences(
    const std::string& path, const LlamaModel& model,
    const lorad::worker::v1::TrainConfig& hp) {
  LORAD_ASSIGN_OR_RETURN(ParsedDataset parsed,
                         ReadDataset(path, hp.train_on_prompt()));
  // The model's own chat template and EOS text, as TRL's SFTTrainer would
  // use them (model/training_data.h).
  model::TokenizeOptions options;
  options.max_seq_len = hp.max_seq_len();
  options.packing = hp.packing();
  options.train_on_prompt = hp.train_on_prompt();
  options.chat = &model.chat_template();
  options.eos_text = EosText(model);
  absl::StatusOr<std::vector<model::TokenSequence>> sequences =
      model::TokenizeDataset(parsed, model.tokenizer(), options);
  if (!sequences.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", sequences.status().message()));
  }
  return sequences;
}

struct Batch {
  torch::Tensor ids;     // [B, T] long
  torch::Tensor labels;  // [B, T] long, -100 where no loss
  int64_t tokens = 0;    // non-pad tokens
};

Batch MakeBatch(const std::vector<model::TokenSequence>& seqs,
                const std::vector<int64_t>& pick, int32_t pad_id,
                torch::Device device) {
  int64_t longest = 0;
  for (int64_t i : pick) {
    longest = std::max<int64_t>(longest, seqs[i].ids.size());
  }
  const int64_t b = static_cast<int64_t>(pick.size());
  torch::Tensor ids = torch::full({b, longest}, pad_id, torch::kLong);
  torch::Tensor labels =
      torch::full({b, longest}, model::kIgnoreLabel, torch::kLong);
  auto ia = ids.accessor<int64_t, 2>();
  auto la = labels.accessor<int64_t, 2>();
  Batch batch;
  for (int64_t r = 0; r < b; ++r) {
    const model::TokenSequence& s = seqs[pick[r]];
    for (size_t t = 0; t < s.ids.size(); ++t) {
      ia[r][t] = s.ids[t];
      la[r][t] = s.labels[t];
    }
    batch.tokens += static_cast<int64_t>(s.ids.size());
  }
  batch.ids = ids.to(device);
  batch.labels = labels.to(device);
  return batch;
}

// Sum of the next-token losses of `hidden` (Forward with hidden_out) and
// how many targets they cover.
std::pair<torch::Tensor, int64_t> LossSum(const LlamaModel& model,
                                          const torch::Tensor& hidden,
                                          const torch::Tensor& labels) {
  const int64_t count =
      labels.slice(1, 1).ne(model::kIgnoreLabel).sum().item<int64_t>();
  return {model.NextTokenNll(hidden, labels, at::Reduction::Sum), count};
}

class SftObjective final : public Objective {
 public:
  SftObjective(const LlamaModel& model, std::vector<model::TokenSequence> train,
               std::vector<model::TokenSequence> eval)
      : model_(model),
        pad_id_(PadId(model)),
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
    for (const model::TokenSequence& s : train_) {
      longest = std::max<int64_t>(longest, s.ids.size());
    }
    shape->seq_len = longest;
  }

  PreparedMicroBatch Prepare(const std::vector<int64_t>& pick,
                             int64_t* tokens) override {
    Batch batch = MakeBatch(train_, pick, pad_id_, model_.device());
    *tokens += batch.tokens;
    PreparedMicroBatch prepared;
    prepared.ids = batch.ids;
    prepared.pad_id = pad_id_;
    prepared.loss = [this, labels = batch.labels](const torch::Tensor& hidden) {
      auto [loss, count] = LossSum(model_, hidden, labels);
      return loss / std::max<int64_t>(1, count);
    };
    return prepared;
  }

  void FinishStep(lorad::worker::v1::TrainStep*) override {}

  void Evaluate(const AdapterSet& adapter, int64_t batch_size,
                DeviceTurns* turns,
                lorad::worker::v1::EvalResult* out) override {
    torch::NoGradGuard no_grad;
    ForwardOptions options;
    options.adapter = &adapter;
    options.hidden_out = true;
    double total = 0;
    int64_t count = 0;
    for (const std::vector<int64_t>& pick :
         InOrderBatches(static_cast<int64_t>(eval_.size()), batch_size)) {
      DeviceTurn turn(turns, DeviceTurn::Kind::kTraining);
      Batch batch = MakeBatch(eval_, pick, pad_id_, model_.device());
      auto [loss, n] =
          LossSum(model_, model_.Forward(batch.ids, options), batch.labels);
      total += loss.item<double>();
      count += n;
    }
    out->set_eval_loss(count == 0 ? 0.0f : static_cast<float>(total / count));
  }

 private:
  const LlamaModel& model_;
  const int32_t pad_id_;
  std::vector<model::TokenSequence> train_;
  std::vector<model::TokenSequence> eval_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Objective>> MakeSftObjective(
    const LlamaModel& model, const TrainJob& job) {
  const lorad::worker::v1::TrainConfig& hp = job.hp;
  LORAD_ASSIGN_OR_RETURN(std::vector<model::TokenSequence> train,
                         LoadSequences(job.training_path, model, hp));
  std::vector<model::TokenSequence> eval;
  if (!job.validation_path.empty()) {
    LORAD_ASSIGN_OR_RETURN(eval, LoadSequences(job.validation_path, model, hp));
  } else {
    model::SplitValidation(&train, &eval, hp.validation_split(), hp.seed());
  }
  if (train.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        job.training_path, ": no example has a token to learn after ",
        "tokenizing to max_seq_len ", hp.max_seq_len()));
  }
  return std::make_unique<SftObjective>(model, std::move(train),
                                        std::move(eval));
}

}  // namespace lorad::worker
