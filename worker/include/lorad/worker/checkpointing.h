// Gradient checkpointing of one decoder block: forward runs without keeping
// activations; backward runs the block again (with the state the dropout
// generators had in the first run: the adapter's or each row segment's, or
// LibTorch's default one; so dropout masks repeat) and backpropagates
// through that recomputation. Gradients equal the non-checkpointed ones.
#ifndef LORAD_WORKER_CHECKPOINTING_H_
#define LORAD_WORKER_CHECKPOINTING_H_

#include <torch/torch.h>

#include "lorad/worker/llama_model.h"

namespace lorad::worker {

torch::Tensor CheckpointedBlock(const LlamaModel& model, int64_t layer,
                                const torch::Tensor& hidden,
                                const torch::Tensor& cos,
                                const torch::Tensor& sin,
                                const ForwardOptions& options);

}  // namespace lorad::worker

#endif  // LORAD_WORKER_CHECKPOINTING_H_
