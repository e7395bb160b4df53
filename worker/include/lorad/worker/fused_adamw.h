// torch::optim::AdamW whose step updates all of a parameter group's tensors
// in one call to LibTorch's fused AdamW kernel (at::_fused_adamw_, on the
// CPU and on CUDA), instead of a dozen small ops per tensor. An adapter has
// two tensors per targeted linear per layer, hundreds for a 7B model with
// every linear targeted, so the per-tensor loop is launch-bound on a GPU
// and dispatch-bound on the CPU for small ranks.
//
// The state is torch::optim::AdamW's (AdamWParamState: step, exp_avg,
// exp_avg_sq, max_exp_avg_sq), so save()/load(), train checkpoints and
// paging (paged_optimizer.h) treat it as AdamW; the update is the same
// formula, equal to AdamW's up to float rounding.
#ifndef LORAD_WORKER_FUSED_ADAMW_H_
#define LORAD_WORKER_FUSED_ADAMW_H_

#include <torch/torch.h>

#include <vector>

namespace lorad::worker {

class FusedAdamW : public torch::optim::AdamW {
 public:
  FusedAdamW(const std::vector<torch::Tensor>& params,
             const torch::optim::AdamWOptions& options);

  // Sparse gradients are refused (LoRA's are dense), as AdamW refuses them.
  torch::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace lorad::worker

#endif  // LORAD_WORKER_FUSED_ADAMW_H_
