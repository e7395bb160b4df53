// A frozen linear weight held as LLM.int8 holds it, and the matmul that uses
// it. The bytes are bitsandbytes' `Int8Params` (has_fp16_weights=False):
// CB, int8 [out, in], row-major, and SCB, the fp32 absmax of each output row
// of the weight rounded to fp16; CB = round(w * (127 / SCB)) with ties to
// even, and a row of zeros stays zeros.
//
// The matmul is LLM.int8's mixed-precision decomposition: the input columns
// holding any |x| >= threshold (6.0) are multiplied in the input's dtype
// against the dequantized weight columns; the rest of the input is quantized
// row-wise to int8 and multiplied as integers (exactly: int8 products summed
// in fp32, as bitsandbytes' portable backend does), then rescaled by
// rowabsmax(x) * SCB / 127^2. Only the input is differentiable; its
// gradient is dY @ dequantize(W). Nothing dequantized is kept between calls
// (on the CPU the matrices go into buffers the thread reuses).
//
// Thread-safety: after Quantize the weight is read-only.
#ifndef LORAD_WORKER_INT8_WEIGHT_H_
#define LORAD_WORKER_INT8_WEIGHT_H_

#include <torch/torch.h>

#include <cstdint>

namespace lorad::worker {

// LLM.int8's outlier threshold (bitsandbytes' `threshold=6.0`).
inline constexpr float kInt8OutlierThreshold = 6.0f;

class Int8Weight {
 public:
  // Quantizes a [out, in] fp32 matrix (row-major, host memory) and moves CB
  // and SCB to `device`.
  static Int8Weight Quantize(const float* w, int64_t out_features,
                             int64_t in_features, torch::Device device);

  // The [out, in] matrix CB * SCB / 127 in `dtype`, a fresh tensor each call.
  torch::Tensor Dequantize(torch::ScalarType dtype) const;
  // The same values, for one matmul: on the CPU, up to
  // kThreadScratchMaxBytes, in this thread's buffers (thread_scratch.h),
  // valid until its next call; elsewhere, or larger, a fresh tensor.
  torch::Tensor DequantizeForMatMul(torch::ScalarType dtype) const;

  const torch::Tensor& cb() const { return cb_; }    // int8 [out, in]
  const torch::Tensor& scb() const { return scb_; }  // fp32 [out]
  int64_t out_features() const { return out_; }
  int64_t in_features() const { return in_; }
  int64_t numel() const { return out_ * in_; }
  // Bytes of CB and SCB on the device.
  int64_t StorageBytes() const { return numel() + out_ * 4; }

 private:
  int64_t out_ = 0, in_ = 0;
  torch::Tensor cb_;
  torch::Tensor scb_;
};

// y = x @ W^T for x [..., in] (y in x's dtype); outlier columns are those
// with any |x| >= `threshold` in any row of x, so a row's output depends on
// the rows multiplied with it, as in bitsandbytes. Differentiable in x.
torch::Tensor Int8MatMul(const torch::Tensor& x, const Int8Weight& w,
                         float threshold = kInt8OutlierThreshold);

}  // namespace lorad::worker

#endif  // LORAD_WORKER_INT8_WEIGHT_H_
