// Training checkpoints: each one file written atomically, holding the
// adapter tensors, AdamW's state, the step reached and the random state. The
// data position follows from the step (batches are a pure function of seed
// and step), so resuming at step N replays exactly what a run without the
// interruption would have done.
//
// A job's checkpoints live in its directory as checkpoint-<step>.pt, each
// ending in a trailer with the sha256 of what precedes it. The last two are
// kept: a save that fails (full disk, failed fsync) leaves both, and a load
// that finds the newest corrupt falls back to the one before. Files go
// through an Env, so tests can inject a full disk or a failed fsync/rename.
#ifndef LORAD_WORKER_ENGINE_TRAIN_CHECKPOINT_H_
#define LORAD_WORKER_ENGINE_TRAIN_CHECKPOINT_H_

#include <torch/torch.h>

#include <limits>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lorad/common/env.h"
#include "lorad/worker/lora.h"

namespace lorad::worker {

struct CheckpointState {
  int64_t step = 0;  // optimizer steps completed
  int64_t tokens_seen = 0;
  // Early stopping: the step and eval loss of the best evaluation so far
  // (0 / +inf: none) and the evaluations since it.
  int64_t best_step = 0;
  float best_eval_loss = std::numeric_limits<float>::infinity();
  int64_t evals_since_best = 0;
  // The events sent before the save (a serialised SentTrainEvents), kept as
  // they are; empty in checkpoints written before it existed.
  std::string sent_events;
};

// Writes the checkpoint for `state.step` into `dir` atomically, then removes
// all but the two newest. On failure every earlier checkpoint stays as it
// was: ResourceExhausted for a full disk, Internal when the state does not
// serialise or another write step fails; the message names the file. The
// random state saved is `rng`'s (the job's dropout generator), or when that
// is undefined the CPU default generator's.
absl::Status SaveCheckpoint(const std::string& dir, const AdapterSet& adapter,
                            torch::optim::Optimizer& optimizer,
                            const CheckpointState& state,
                            Env* env = Env::Default(),
                            const at::Generator& rng = {});

struct RestoredCheckpoint {
  CheckpointState state;
  std::string path;  // the file restored
  // Newer checkpoints that were skipped, each with why (corrupt, unreadable).
  std::vector<std::string> skipped;
};

// Restores the newest intact checkpoint in `dir` into `adapter` and
// `optimizer` (built with the same shapes). NotFound when there is none;
// DataLoss when there are some and none is intact; InvalidArgument when one
// does not fit the job. The saved random state goes into `rng` (undefined:
// the CPU default generator); a state that generator cannot take (saved on
// another kind of device) leaves it as it is.
absl::StatusOr<RestoredCheckpoint> LoadCheckpoint(
    const std::string& dir, AdapterSet& adapter,
    torch::optim::Optimizer& optimizer, Env* env = Env::Default(),
    const at::Generator& rng = {});

// checkpoint-<step>.pt in `dir`.
std::string CheckpointPath(const std::string& dir, int64_t step);

}  // namespace lorad::worker

#endif  // LORAD_WORKER_ENGINE_TRAIN_CHECKPOINT_H_
