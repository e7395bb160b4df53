#include <algorithm>
#include <cstdint>

#include "kernels/launch.cuh"
#include "kernels/lora_gmv_kernels.cuh"
#include "kernels/sgmv.cuh"

namespace lorad::kernels {
namespace {

using lora_gmv::Adapters;
using lora_gmv::Work;

constexpr int kRowTile = 8;
// Row-tile slices per segment (grid.z); CTAs past a segment's tiles exit.
constexpr int64_t kMaxSlices = 64;

// Work item s is segment s, clamped to rows [0, n).
struct PerSegment {
  const int32_t* starts;
  const int32_t* adapters;
  int64_t n;
  __device__ Work operator()(int64_t s) const {
    const int64_t begin = max(int64_t{0}, min(n, int64_t{starts[s]}));
    const int64_t end = max(begin, min(n, int64_t{starts[s + 1]}));
    return Work{begin, end, adapters[s]};
  }
};

}  // namespace

cudaError_t LoraSgmvBf16(const __nv_bfloat16* x, int64_t n, int64_t in,
                         int64_t out, const __nv_bfloat16* const* a_ptrs,
                         const __nv_bfloat16* const* b_ptrs,
                         const int32_t* ranks, const float* scales,
                         int32_t num_adapters, const int32_t* seg_starts,
                         const int32_t* seg_adapters, int64_t num_segments,
                         float* workspace, __nv_bfloat16* y,
                         cudaStream_t stream) {
  if (n < 0 || in < 0 || out < 0 || num_adapters < 0 || num_segments < 0 ||
      n > int64_t{0x7fffffff} || num_segments > int64_t{0x7fffffff}) {
    return cudaErrorInvalidValue;
  }
  if (n == 0 || in == 0 || out == 0 || num_adapters == 0 || num_segments == 0) {
    return cudaSuccess;
  }
  if (x == nullptr || a_ptrs == nullptr || b_ptrs == nullptr ||
      ranks == nullptr || scales == nullptr || seg_starts == nullptr ||
      seg_adapters == nullptr || workspace == nullptr || y == nullptr) {
    return cudaErrorInvalidValue;
  }
  cudaError_t err = cudaMemsetAsync(
      workspace, 0, LoraWorkspaceFloats(n) * sizeof(float), stream);
  if (err != cudaSuccess) return err;
  const Adapters ad{a_ptrs, b_ptrs, ranks, scales, num_adapters};
  const PerSegment map{seg_starts, seg_adapters, n};
  const unsigned slices = static_cast<unsigned>(
      std::min<int64_t>(kMaxSlices, (n + kRowTile - 1) / kRowTile));
  const dim3 shrink_grid(
      static_cast<unsigned>(num_segments),
      static_cast<unsigned>((in + lora_gmv::kShrinkChunk - 1) /
                            lora_gmv::kShrinkChunk),
      slices);
  const auto shrink = lora_gmv::ShrinkKernel<kRowTile, PerSegment>;
  LORAD_LAUNCH_KERNEL(shrink, shrink_grid, lora_gmv::kThreads, stream, map, ad,
                      x, in, workspace);
  const dim3 expand_grid(
      static_cast<unsigned>(num_segments),
      static_cast<unsigned>((out + lora_gmv::kExpandTile - 1) /
                            lora_gmv::kExpandTile),
      slices);
  const auto expand = lora_gmv::ExpandKernel<kRowTile, PerSegment>;
  LORAD_LAUNCH_KERNEL(expand, expand_grid, lora_gmv::kThreads, stream, map, ad,
                      workspace, out, y);
  return cudaGetLastError();
}

}  // namespace lorad::kernels
