#include <cstdint>

#include "kernels/bgmv.cuh"
#include "kernels/launch.cuh"
#include "kernels/lora_gmv_kernels.cuh"

namespace lorad::kernels {
namespace {

using lora_gmv::Adapters;
using lora_gmv::Work;

static_assert(lora_gmv::kMaxRank == kMaxLoraRank);

// Work item i is row i alone.
struct PerRow {
  const int32_t* idx;
  __device__ Work operator()(int64_t i) const { return Work{i, i + 1, idx[i]}; }
};

}  // namespace

cudaError_t LoraBgmvBf16(const __nv_bfloat16* x, int64_t n, int64_t in,
                         int64_t out, const __nv_bfloat16* const* a_ptrs,
                         const __nv_bfloat16* const* b_ptrs,
                         const int32_t* ranks, const float* scales,
                         int32_t num_adapters, const int32_t* idx,
                         float* workspace, __nv_bfloat16* y,
                         cudaStream_t stream) {
  if (n < 0 || in < 0 || out < 0 || num_adapters < 0 ||
      n > int64_t{0x7fffffff}) {
    return cudaErrorInvalidValue;
  }
  if (n == 0 || in == 0 || out == 0 || num_adapters == 0) return cudaSuccess;
  if (x == nullptr || a_ptrs == nullptr || b_ptrs == nullptr ||
      ranks == nullptr || scales == nullptr || idx == nullptr ||
      workspace == nullptr || y == nullptr) {
    return cudaErrorInvalidValue;
  }
  cudaError_t err = cudaMemsetAsync(
      workspace, 0, LoraWorkspaceFloats(n) * sizeof(float), stream);
  if (err != cudaSuccess) return err;
  const Adapters ad{a_ptrs, b_ptrs, ranks, scales, num_adapters};
  const PerRow map{idx};
  const dim3 shrink_grid(
      static_cast<unsigned>(n),
      static_cast<unsigned>((in + lora_gmv::kShrinkChunk - 1) /
                            lora_gmv::kShrinkChunk));
  const auto shrink = lora_gmv::ShrinkKernel<1, PerRow>;
  LORAD_LAUNCH_KERNEL(shrink, shrink_grid, lora_gmv::kThreads, stream, map, ad,
                      x, in, workspace);
  const dim3 expand_grid(
      static_cast<unsigned>(n),
      static_cast<unsigned>((out + lora_gmv::kExpandTile - 1) /
                            lora_gmv::kExpandTile));
  const auto expand = lora_gmv::ExpandKernel<1, PerRow>;
  LORAD_LAUNCH_KERNEL(expand, expand_grid, lora_gmv::kThreads, stream, map, ad,
                      workspace, out, y);
  return cudaGetLastError();
}

}  // namespace lorad::kernels
