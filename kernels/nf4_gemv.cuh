// Fused NF4 matrix-vector / skinny matrix product for decode:
//   y[m, out] = bf16(x[m, in] * W^T),  m = 1..16
// W is [out, in] in the double-quantized NF4 layout of kernels/nf4_ref.h
// (see kernels/nf4_gemv_ref.h for the exact arithmetic; the CPU reference
// is lorad::kernels::Nf4GemvRef). Every packed weight byte is loaded once
// and used for all m rows of x; products are summed in fp32. No
// dequantized copy of W is ever written.
#ifndef LORAD_KERNELS_NF4_GEMV_CUH_
#define LORAD_KERNELS_NF4_GEMV_CUH_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace lorad::kernels {

// The most rows of x one call takes.
inline constexpr int kNf4GemvMaxRows = 16;

// Enqueues the product on `stream`; returns the launch status. All pointers
// are device memory: packed / absmax_codes / absmax_scales as in
// nf4_ref.h for out * in weights, dynamic_map the 256 floats of
// lorad::nf4::DynamicMap(), x [m, in] and y [m, out] contiguous bf16.
// The fast path needs in % 64 == 0 and 16-byte aligned packed and x (as
// cudaMalloc gives); other shapes take a slower general path. Returns
// cudaErrorInvalidValue for m outside 1..16, in or out < 1, or a null
// pointer. Thread-safe; reads only its inputs, writes only y.
cudaError_t Nf4GemvBf16(const uint8_t* packed, const uint8_t* absmax_codes,
                        const float* absmax_scales, float absmax_offset,
                        const float* dynamic_map, const __nv_bfloat16* x,
                        int64_t m, int64_t in, int64_t out, __nv_bfloat16* y,
                        cudaStream_t stream);

}  // namespace lorad::kernels

#endif  // LORAD_KERNELS_NF4_GEMV_CUH_
