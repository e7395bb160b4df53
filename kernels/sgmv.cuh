// SGMV: multi-adapter LoRA for prefill, rows grouped in segments that share
// one adapter:
//   y[i] = bf16(y[i] + scale[a] * (x[i] A[a]^T) B[a]^T)
//   for i in [seg_starts[s], seg_starts[s + 1]), a = seg_adapters[s]
// Same weights, precision and workspace as BGMV (kernels/bgmv.cuh); rows of
// one segment are taken 8 at a time so each adapter weight loaded serves
// up to 8 rows. The CPU reference is lorad::kernels::SgmvRef.
#ifndef LORAD_KERNELS_SGMV_CUH_
#define LORAD_KERNELS_SGMV_CUH_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/bgmv.cuh"

namespace lorad::kernels {

// Enqueues y += LoRA(x) on `stream`; returns the launch status. Device
// pointers as in LoraBgmvBf16, plus seg_starts (num_segments + 1
// non-decreasing row offsets) and seg_adapters (num_segments indices; one
// outside [0, num_adapters) = no adapter). Offsets are clamped to [0, n];
// rows outside every segment are left untouched. num_segments and n are at
// most 2^31 - 1. cudaErrorInvalidValue for a negative size or a null
// pointer when there is work. Thread-safe given distinct workspaces and
// outputs.
cudaError_t LoraSgmvBf16(const __nv_bfloat16* x, int64_t n, int64_t in,
                         int64_t out, const __nv_bfloat16* const* a_ptrs,
                         const __nv_bfloat16* const* b_ptrs,
                         const int32_t* ranks, const float* scales,
                         int32_t num_adapters, const int32_t* seg_starts,
                         const int32_t* seg_adapters, int64_t num_segments,
                         float* workspace, __nv_bfloat16* y,
                         cudaStream_t stream);

}  // namespace lorad::kernels

#endif  // LORAD_KERNELS_SGMV_CUH_
