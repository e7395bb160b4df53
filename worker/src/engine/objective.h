// What the training loop (trainer.cc) optimises, apart from the loop itself:
// the job's training and validation examples and the loss of a micro-batch
// of them. The loop owns the optimizer, the schedule, accumulation,
// clipping, checkpoints and early stopping; an objective owns the data and
// the loss. Two: supervised fine-tuning (hp.method "sft", sft_objective.cc)
// and DPO on preference pairs ("dpo", dpo.cc).
//
// Not thread-safe: one job's loop calls it.
#ifndef LORAD_WORKER_ENGINE_OBJECTIVE_H_
#define LORAD_WORKER_ENGINE_OBJECTIVE_H_

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lorad/common/dataset.h"
#include "lorad/internal/worker/v1/worker.pb.h"
#include "lorad/model/memory_estimate.h"
#include "lorad/worker/device_turns.h"
#include "lorad/worker/llama_model.h"
#include "lorad/worker/trainer.h"
#include "lorad/worker/training_group.h"

namespace lorad::worker {

class Objective {
 public:
  virtual ~Objective() = default;

  // Examples (sequences, or pairs for DPO) to train on and to evaluate on.
  virtual int64_t num_train() const = 0;
  virtual int64_t num_eval() const = 0;

  // Fills the memory estimate's batch shape: sequences per example and the
  // longest training sequence.
  virtual void Shape(model::TrainingShape* shape) const = 0;

  // The training examples `pick` (indices below num_train()) as a
  // micro-batch; adds the tokens read to *tokens. Whatever needs no
  // gradient (DPO's reference pass with the adapter off) runs here.
  virtual PreparedMicroBatch Prepare(const std::vector<int64_t>& pick,
                                     int64_t* tokens) = 0;

  // Writes the metrics of the micro-batches since the last call into `step`
  // (beyond loss, which the loop sets) and forgets them.
  virtual void FinishStep(lorad::worker::v1::TrainStep* step) = 0;

  // Evaluates `adapter` on the validation examples, batch_size at a time,
  // each batch in a training turn: eval_loss (the objective's loss, the one
  // early stopping compares) and the objective's metrics.
  virtual void Evaluate(const AdapterSet& adapter, int64_t batch_size,
                        DeviceTurns* turns,
                        lorad::worker::v1::EvalResult* out) = 0;
};

// The objective hp.method names ("" and "sft": supervised, "dpo"), with its
// data loaded and tokenized (and the validation split made). Errors are
// InvalidArgument naming the file and line, or the hyper-parameter.
absl::StatusOr<std::unique_ptr<Objective>> MakeObjective(
    const LlamaModel& model, const TrainJob& job);

// Shared by the objectives.

// The parsed dataset at `path`; errors carry the path.
absl::StatusOr<ParsedDataset> ReadDataset(const std::string& path,
                                          bool train_on_prompt);
// The model's EOS token as text (tokenizer_config.json's eos_token, else
// the first EOS id decoded), as TRL appends it.
std::string EosText(const LlamaModel& model);
// The id batches are right-padded with: pad, else the first EOS, else 0.
int32_t PadId(const LlamaModel& model);
// Indices 0..n-1 in order, cut into batches of at most batch_size (the
// evaluation passes).
std::vector<std::vector<int64_t>> InOrderBatches(int64_t n, int64_t batch_size);

absl::StatusOr<std::unique_ptr<Objective>> MakeSftObjective(
    const LlamaModel& model, const TrainJob& job);
absl::StatusOr<std::unique_ptr<Objective>> MakeDpoObjective(
    const LlamaModel& model, const TrainJob& job);

}  // namespace lorad::worker

#endif  // LORAD_WORKER_ENGINE_OBJECTIVE_H_
