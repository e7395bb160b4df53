// Fused RMSNorm forward (Llama/Mistral/Qwen2), CPU reference:
//   rstd[i] = 1 / sqrt(mean_j(x[i, j]^2) + eps)
//   y[i, j] = bf16(x[i, j] * rstd[i] * w[j])
// x, w, y bf16; the sum of squares in double, the rest in fp32 with one
// final rounding (HF rounds x * rstd to bf16 before the weight multiply;
// the fused result can differ from HF's by one bf16 ulp). Torch-free,
// thread-compatible.
#ifndef LORAD_KERNELS_RMSNORM_REF_H_
#define LORAD_KERNELS_RMSNORM_REF_H_

#include <cstdint>

namespace lorad::kernels {

// x and y are [rows, hidden] (bf16 bits, may alias), w is [hidden]. rstd,
// when not null, receives the rows fp32 reciprocal RMS values (what a
// backward pass needs).
void RmsNormRef(const uint16_t* x, const uint16_t* w, int64_t rows,
                int64_t hidden, float eps, uint16_t* y, float* rstd);

}  // namespace lorad::kernels

#endif  // LORAD_KERNELS_RMSNORM_REF_H_
