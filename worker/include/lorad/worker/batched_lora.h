// LoRA for a batch whose rows use different adapters (or none): per module,
// the rows are grouped by (rank, segment length) and each group gathers the
// A and B of its rows' adapters into stacked tensors, so one batched matmul
// applies every row's own delta (BGMV for decode rows, SGMV-like for prompt
// segments). The math runs behind BatchedLoraBackend: the LibTorch backend
// here works on any device; a CUDA kernel backend can plug in beside it.
#ifndef LORAD_WORKER_BATCHED_LORA_H_
#define LORAD_WORKER_BATCHED_LORA_H_

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "lorad/model/model_config.h"
#include "lorad/worker/lora.h"

namespace lorad::worker {

// G segments of T consecutive tokens each, all with adapters of one rank.
struct LoraGroup {
  // long [G*T]: the rows of the flat batch in group order; undefined when
  // the group is the whole batch in order.
  torch::Tensor tokens;
  int64_t segments = 0;        // G
  int64_t segment_length = 0;  // T
  // Transposed and contiguous, ready for bmm (compute dtype).
  torch::Tensor a_t;    // [G, in, r]: A^T of each segment's adapter
  torch::Tensor b_t;    // [G, r, out]: B^T
  torch::Tensor scale;  // [G, 1, 1], compute dtype
};

class BatchedLoraBackend {
 public:
  virtual ~BatchedLoraBackend() = default;
  // y[rows] += scale * (x[rows] A^T) B^T for every group, in place.
  // x: [N, in], y: [N, out] (compute dtype, same device as the groups).
  virtual void AddDelta(const torch::Tensor& x,
                        const std::vector<LoraGroup>& groups,
                        torch::Tensor& y) const = 0;
};

// bmm over the stacked A/B of each group. Stateless; thread-safe.
const BatchedLoraBackend& TorchLoraBackend();

struct BatchedLora {
  std::map<std::string, std::vector<LoraGroup>> modules;  // by module key
  const BatchedLoraBackend* backend = &TorchLoraBackend();
};

// One request's slice of the flat batch.
struct LoraSegment {
  const AdapterSet* adapter = nullptr;  // nullptr: the base alone
  int64_t start = 0;
  int64_t length = 0;
};

// Groups `segments` per module of `config` and stacks their adapters' A/B
// on `device` in `dtype`.
BatchedLora BuildBatchedLora(const std::vector<LoraSegment>& segments,
                             const model::ModelConfig& config,
                             torch::Device device, torch::ScalarType dtype);

}  // namespace lorad::worker

#endif  // LORAD_WORKER_BATCHED_LORA_H_
