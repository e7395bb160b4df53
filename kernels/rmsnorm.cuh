// Fused RMSNorm forward (Llama/Mistral/Qwen2) in one pass over each row:
//   rstd[i] = rsqrt(mean_j(x[i, j]^2) + eps)
//   y[i, j] = bf16(x[i, j] * rstd[i] * w[j])
// bf16 in and out, fp32 inside. The CPU reference is
// lorad::kernels::RmsNormRef (kernels/rmsnorm_ref.h).
#ifndef LORAD_KERNELS_RMSNORM_CUH_
#define LORAD_KERNELS_RMSNORM_CUH_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace lorad::kernels {

// Enqueues the normalisation of `rows` rows of `hidden` values on `stream`;
// returns the launch status. Device pointers: x and y [rows, hidden]
// contiguous bf16 (y may equal x), w [hidden] bf16, rstd (may be null)
// [rows] fp32. Any hidden >= 1; 16-byte aligned x, y, w with
// hidden % 8 == 0 take vector loads. rows at most 2^31 - 1.
// cudaErrorInvalidValue for a negative size, a null x / w / y when
// rows > 0, or eps < 0. Thread-safe.
cudaError_t RmsNormBf16(const __nv_bfloat16* x, const __nv_bfloat16* w,
                        int64_t rows, int64_t hidden, float eps,
                        __nv_bfloat16* y, float* rstd, cudaStream_t stream);

}  // namespace lorad::kernels

#endif  // LORAD_KERNELS_RMSNORM_CUH_
