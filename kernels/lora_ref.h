// Multi-adapter LoRA products, CPU references for the BGMV (decode: each row
// its own adapter) and SGMV (prefill: segments of rows per adapter) kernels.
//
// For a row i using adapter a (rank r, A [r, in], B [out, r], both bf16
// row-major as PEFT stores lora_A / lora_B):
//   v = x[i] A^T          (r values, summed in double, rounded to fp32)
//   y[i] = bf16(y[i] + scale_a * (v B^T))   (summed in double, fp32 add)
// Rows with no adapter are left untouched. Torch-free, thread-compatible.
#ifndef LORAD_KERNELS_LORA_REF_H_
#define LORAD_KERNELS_LORA_REF_H_

#include <cstdint>

namespace lorad::kernels {

// The largest LoRA rank the kernels take.
inline constexpr int kMaxLoraRank = 128;

// One adapter's weights for one target module (host memory for the
// references; the CUDA launchers take the same fields as device arrays).
struct LoraAdapterRef {
  const uint16_t* a = nullptr;  // [rank, in] bf16 bits
  const uint16_t* b = nullptr;  // [out, rank] bf16 bits
  int32_t rank = 0;             // 1..kMaxLoraRank
  float scale = 1.0f;           // lora_alpha / rank
};

// y [n, out] += per row i: adapter idx[i] (idx[i] outside [0, num_adapters),
// e.g. -1, means no adapter). x is [n, in].
void BgmvRef(const uint16_t* x, int64_t n, int64_t in, int64_t out,
             const LoraAdapterRef* adapters, int32_t num_adapters,
             const int32_t* idx, uint16_t* y);

// Segment s covers rows [seg_starts[s], seg_starts[s + 1]) and uses adapter
// seg_adapters[s] (outside [0, num_adapters) = none). seg_starts has
// num_segments + 1 non-decreasing entries; rows outside every segment are
// left untouched.
void SgmvRef(const uint16_t* x, int64_t in, int64_t out,
             const LoraAdapterRef* adapters, int32_t num_adapters,
             const int32_t* seg_starts, const int32_t* seg_adapters,
             int64_t num_segments, uint16_t* y);

}  // namespace lorad::kernels

#endif  // LORAD_KERNELS_LORA_REF_H_
