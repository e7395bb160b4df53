// A frozen linear weight held in NF4 (double-quantized) on the device, and
// the matmul that uses it. The dequantized matrix only ever exists for the
// duration of one matmul: forward dequantizes, multiplies and drops it (on
// the CPU into a buffer reused by the next); backward dequantizes again for
// the input gradient. Nothing dequantized is saved for backward.
#ifndef LORAD_WORKER_NF4_WEIGHT_H_
#define LORAD_WORKER_NF4_WEIGHT_H_

#include <torch/torch.h>

#include <cstdint>

namespace lorad::worker {

class Nf4Weight {
 public:
  // Quantizes a [out, in] fp32 matrix (row-major, host memory) and moves the
  // state to `device`.
  static Nf4Weight Quantize(const float* w, int64_t out_features,
                            int64_t in_features, torch::Device device);

  // The [out, in] matrix in `dtype`, a fresh tensor each call.
  torch::Tensor Dequantize(torch::ScalarType dtype) const;
  // The same values, for one matmul: on the CPU, up to
  // kThreadScratchMaxBytes, in this thread's buffers (thread_scratch.h),
  // valid until its next call; elsewhere, or larger, a fresh tensor.
  torch::Tensor DequantizeForMatMul(torch::ScalarType dtype) const;

  int64_t out_features() const { return out_; }
  int64_t in_features() const { return in_; }
  int64_t numel() const { return out_ * in_; }
  // Bytes of the quantized state on the device (codes + statistics).
  int64_t StorageBytes() const;

 private:
  // Dequantizes into `out` ([out, in] fp32, contiguous) on the CPU.
  void DequantizeOnCpu(torch::Tensor& out) const;

  int64_t out_ = 0, in_ = 0;
  torch::Tensor packed_;         // uint8 [ceil(numel/2)]
  torch::Tensor absmax_codes_;   // uint8 [num_blocks]
  torch::Tensor absmax_scales_;  // fp32 [ceil(num_blocks/256)]
  torch::Tensor dynamic_map_;    // fp32 [256]
  torch::Tensor pair_table_;     // fp32 [256, 2]: byte -> its two values
  float absmax_offset_ = 0.0f;
};

// y = x @ W^T for x [..., in], with W in NF4. Differentiable in x only.
torch::Tensor Nf4MatMul(const torch::Tensor& x, const Nf4Weight& w);

}  // namespace lorad::worker

#endif  // LORAD_WORKER_NF4_WEIGHT_H_
