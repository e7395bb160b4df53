// Paged optimizers (`paged_adamw`, `paged_adamw_8bit`): the same AdamW or
// 8-bit AdamW update, with the state in memory that can move to the host
// when the device runs short, as bitsandbytes' paged optimizers keep it.
//
// PageOptimizerState creates every parameter's state up front (zeros, as a
// first step would, so the update is bit for bit that of the unpaged
// optimizer) and, for parameters on a CUDA device, moves each state tensor
// into CUDA managed memory (cuda_bridge/managed_memory.h). The optimizer's
// in-place updates keep it there. On the CPU the state is in host memory
// already: nothing moves and the note says so. Call it again after loading
// a checkpoint (loaded state is ordinary memory).
#ifndef LORAD_WORKER_PAGED_OPTIMIZER_H_
#define LORAD_WORKER_PAGED_OPTIMIZER_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace lorad::worker {

struct PagedState {
  int64_t bytes = 0;        // all state bytes of the optimizer
  int64_t paged_bytes = 0;  // of which in managed (pageable) memory
  int64_t tensors = 0;      // state tensors
  std::string note;         // what happened, for the job's log
};

// For torch::optim::AdamW and AdamW8bit (InvalidArgument for another
// optimizer). ResourceExhausted when managed memory cannot be had.
absl::StatusOr<PagedState> PageOptimizerState(
    torch::optim::Optimizer& optimizer);

}  // namespace lorad::worker

#endif  // LORAD_WORKER_PAGED_OPTIMIZER_H_
