// BGMV: multi-adapter LoRA for decode, each row with its own adapter:
//   y[i] = bf16(y[i] + scale[a] * (x[i] A[a]^T) B[a]^T),  a = idx[i]
// A[a] is [rank_a, in] and B[a] is [out, rank_a] (PEFT's lora_A / lora_B),
// bf16 row-major; any rank 1..128, any in / out. The intermediate
// x A^T stays fp32 (in `workspace`); all sums are fp32. The CPU reference
// is lorad::kernels::BgmvRef (kernels/lora_ref.h).
#ifndef LORAD_KERNELS_BGMV_CUH_
#define LORAD_KERNELS_BGMV_CUH_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/lora_ref.h"

namespace lorad::kernels {

// Floats of workspace the LoRA launchers need for `rows` rows of x.
inline constexpr int64_t LoraWorkspaceFloats(int64_t rows) {
  return rows * kMaxLoraRank;
}

// Enqueues y += LoRA(x) on `stream`; returns the launch status. All
// pointers are device memory:
//   x [n, in], y [n, out]        bf16, contiguous; y is read and written
//   a_ptrs, b_ptrs               num_adapters device pointers each
//   ranks, scales                num_adapters values (ranks 1..128)
//   idx                          n adapter indices; one outside
//                                [0, num_adapters) (e.g. -1) = no adapter
//   workspace                    LoraWorkspaceFloats(n) floats, scratch
// Ranks above 128 are read as 128 (callers must not pass them). n is at most
// 2^31 - 1. cudaErrorInvalidValue for a negative size or a null pointer
// when n > 0. Thread-safe given distinct workspaces and outputs.
cudaError_t LoraBgmvBf16(const __nv_bfloat16* x, int64_t n, int64_t in,
                         int64_t out, const __nv_bfloat16* const* a_ptrs,
                         const __nv_bfloat16* const* b_ptrs,
                         const int32_t* ranks, const float* scales,
                         int32_t num_adapters, const int32_t* idx,
                         float* workspace, __nv_bfloat16* y,
                         cudaStream_t stream);

}  // namespace lorad::kernels

#endif  // LORAD_KERNELS_BGMV_CUH_
