// A training checkpoint in one file written atomically: the adapter
// tensors, AdamW's state, the step reached and the random state. The data
// position follows from the step (batches are a pure function of seed and
// step), so resuming at step N replays exactly what a run without the
// interruption would have done. The file goes through an Env, so tests can
// inject a full disk or a failed fsync/rename.
#ifndef LORAD_WORKER_ENGINE_TRAIN_CHECKPOINT_H_
#define LORAD_WORKER_ENGINE_TRAIN_CHECKPOINT_H_

#include <torch/torch.h>

#include <string>

#include "absl/status/statusor.h"
#include "lorad/common/env.h"
#include "lorad/worker/lora.h"

namespace lorad::worker {

struct CheckpointState {
  int64_t step = 0;  // optimizer steps completed
  int64_t tokens_seen = 0;
};

// Writes the checkpoint to `path` atomically (Env::WriteFileAtomic): on any
// failure the previous checkpoint at `path` stays as it was and readable.
// ResourceExhausted for a full disk, Internal when the state does not
// serialize or another write step fails; the message names the file.
absl::Status SaveCheckpoint(const std::string& path, const AdapterSet& adapter,
                            torch::optim::Optimizer& optimizer,
                            const CheckpointState& state,
                            Env* env = Env::Default());

// Restores into `adapter` and `optimizer` (built with the same shapes).
// NotFound when there is no checkpoint; InvalidArgument when it does not fit.
absl::StatusOr<CheckpointState> LoadCheckpoint(
    const std::string& path, AdapterSet& adapter,
    torch::optim::Optimizer& optimizer, Env* env = Env::Default());

}  // namespace lorad::worker

#endif  // LORAD_WORKER_ENGINE_TRAIN_CHECKPOINT_H_
