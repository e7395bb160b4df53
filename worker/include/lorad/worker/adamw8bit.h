// AdamW with 8-bit optimizer state, stored and updated the way
// bitsandbytes 0.50's AdamW8bit does it on the CPU, so that its state bytes
// (and the parameters it produces) match bitsandbytes exactly.
//
// Per parameter of at least `min_8bit_size` elements (4096 by default, as in
// bitsandbytes) the two Adam moments live as one byte per element: state1
// indexes a signed dynamic-exponent map, state2 an unsigned one, each scaled
// per block of 256 elements by a float absmax (absmax1 / absmax2). A step
// dequantises both moments to float, does the AdamW update in float and
// quantises them again: each block is divided by its largest magnitude and
// every value is mapped to its nearest code through bitsandbytes' 65536-bin
// lookup table. Smaller parameters keep float moments (exp_avg, exp_avg_sq)
// updated as bitsandbytes' 32-bit path does (eps scaled by the bias
// correction). So the state takes about 2 bytes per element instead of
// AdamW's 8.
//
// The update itself is a chain of ordinary torch ops, so CPU and CUDA
// parameters both work; on CUDA the float rounding of the update may differ
// from the CPU in the last bit (bitsandbytes' own CUDA kernel differs too).
//
// save()/load() go through torch::serialize like torch::optim::AdamW, so
// train checkpoints round-trip the exact state bytes. State loaded on the CPU
// is moved to each parameter's device on its next step.
//
// Not thread-safe: one thread steps an optimizer at a time.
#ifndef LORAD_WORKER_ADAMW8BIT_H_
#define LORAD_WORKER_ADAMW8BIT_H_

#include <torch/torch.h>

#include <cstdint>
#include <tuple>
#include <utility>
#include <vector>

namespace lorad::worker {

struct AdamW8bitOptions
    : public torch::optim::OptimizerCloneableOptions<AdamW8bitOptions> {
  AdamW8bitOptions(double lr = 1e-3);  // NOLINT: torch's options convention
  TORCH_ARG(double, lr) = 1e-3;
  typedef std::tuple<double, double> betas_t;
  TORCH_ARG(betas_t, betas) = std::make_tuple(0.9, 0.999);
  TORCH_ARG(double, eps) = 1e-8;
  TORCH_ARG(double, weight_decay) = 1e-2;
  // Parameters with fewer elements keep 32-bit moments.
  TORCH_ARG(int64_t, min_8bit_size) = 4096;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override;
  void set_lr(const double lr) override;
};

// One parameter's state: either the 8-bit tensors (state1, state2: uint8 in
// the parameter's shape; absmax1, absmax2: float, one per 256-element block)
// or the 32-bit ones (exp_avg, exp_avg_sq: float in the parameter's shape).
struct AdamW8bitParamState
    : public torch::optim::OptimizerCloneableParamState<AdamW8bitParamState> {
  TORCH_ARG(int64_t, step) = 0;
  TORCH_ARG(torch::Tensor, state1);
  TORCH_ARG(torch::Tensor, state2);
  TORCH_ARG(torch::Tensor, absmax1);
  TORCH_ARG(torch::Tensor, absmax2);
  TORCH_ARG(torch::Tensor, exp_avg);
  TORCH_ARG(torch::Tensor, exp_avg_sq);

 public:
  bool quantized() const { return state1().defined(); }
  // Bytes held by the defined tensors above.
  int64_t Bytes() const;
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

class AdamW8bit : public torch::optim::Optimizer {
 public:
  static constexpr int64_t kBlockSize = 256;

  // Throws c10::Error for a negative lr, eps or weight_decay, or a beta
  // outside [0, 1) (as torch::optim::AdamW does).
  explicit AdamW8bit(
      const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
      AdamW8bitOptions defaults = {});
  explicit AdamW8bit(std::vector<torch::Tensor> params,
                     AdamW8bitOptions defaults = {})
      : AdamW8bit({torch::optim::OptimizerParamGroup(std::move(params))},
                  std::move(defaults)) {}

  // Updates every parameter that has a gradient; state is created on a
  // parameter's first step. Throws c10::Error when loaded state does not fit
  // its parameter (a checkpoint of another shape).
  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  // Creates the (zero) state of every parameter that has none yet, as its
  // first step would; the update is unchanged. Lets a caller place the state
  // (paged_optimizer.h) before the first step.
  void CreateState();

  // Bytes of optimizer state held now (zero before the first step).
  int64_t StateBytes() const;
  // Bytes the state of a parameter of `numel` elements will take.
  static int64_t StateBytesFor(int64_t numel, int64_t min_8bit_size = 4096);

  // bitsandbytes' dynamic maps (create_dynamic_map): 256 sorted floats.
  static torch::Tensor SignedMap();
  static torch::Tensor UnsignedMap();

 private:
  struct Tables {
    torch::Device device;
    torch::Tensor signed_map, unsigned_map;  // float [256]
    torch::Tensor signed_lut, unsigned_lut;  // uint8 [65536]
  };
  const Tables& TablesOn(const torch::Device& device);
  using StateMap = decltype(state_);
  StateMap::iterator CreateStateFor(const torch::Tensor& p,
                                    int64_t min_8bit_size);

  std::vector<Tables> tables_;  // one per device met
};

}  // namespace lorad::worker

#endif  // LORAD_WORKER_ADAMW8BIT_H_
