// NF4 dequantization on a CUDA device: the bitsandbytes layout produced by
// lorad::nf4::Quantize (kernels/nf4_ref.h) with double quantization, to bf16.
//
// Each output is bf16(code[q] * absmax_b), where the block absmax is
// absmax_b = dynamic_map[absmax_codes[b]] * absmax_scales[b / 256] + offset,
// every product and sum rounded in fp32 exactly as the CPU reference does,
// so the result equals FloatToBf16 of lorad::nf4::Dequantize's output.
#ifndef LORAD_KERNELS_NF4_DEQUANTIZE_CUH_
#define LORAD_KERNELS_NF4_DEQUANTIZE_CUH_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace lorad::kernels {

// Enqueues the dequantization of `numel` weights on `stream` and returns the
// launch's status (errors of the kernel itself surface at the next
// synchronisation). All pointers are device memory:
//   packed         (numel + 1) / 2 bytes, first weight in the high nibble
//   absmax_codes   one byte per 64-weight block
//   absmax_scales  one float per 256 blocks
//   dynamic_map    the 256 floats of lorad::nf4::DynamicMap()
//   out            numel bf16 values
// absmax_offset is the fp32 mean subtracted before double quantization.
// The fastest path wants `packed` 4-byte and `out` 16-byte aligned (as
// cudaMalloc gives); any alignment works. numel == 0 launches nothing.
// cudaErrorInvalidValue for a negative numel or a null pointer when
// numel > 0. Thread-safe; the kernel only reads its inputs.
cudaError_t Nf4DequantizeBf16(const uint8_t* packed,
                              const uint8_t* absmax_codes,
                              const float* absmax_scales, float absmax_offset,
                              const float* dynamic_map, int64_t numel,
                              __nv_bfloat16* out, cudaStream_t stream);

}  // namespace lorad::kernels

#endif  // LORAD_KERNELS_NF4_DEQUANTIZE_CUH_
