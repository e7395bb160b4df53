#include <algorithm>
#include <cstdint>

#include "kernels/launch.cuh"
#include "kernels/nf4_codebook.cuh"
#include "kernels/nf4_dequantize.cuh"

namespace lorad::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kBlockSize = 64;         // weights per absmax
constexpr int64_t kAbsmaxBlockSize = 256;  // absmax codes per scale
constexpr int64_t kBytesPerBlock = kBlockSize / 2;

// Each thread turns kBytes packed bytes (2 * kBytes weights, all in one
// 64-weight block since kBytes divides 32) into bf16. The lookups index
// with data-dependent values, which constant memory would serialise, so
// both tables are staged in shared memory first. __fmul_rn / __fadd_rn keep
// nvcc from fusing into FMAs, matching the CPU reference bit for bit.
template <int kBytes>
static __global__ void __launch_bounds__(kThreads)
    Nf4DequantizeKernel(const uint8_t* __restrict__ packed,
                        const uint8_t* __restrict__ absmax_codes,
                        const float* __restrict__ absmax_scales,
                        float absmax_offset,
                        const float* __restrict__ dynamic_map, int64_t numel,
                        __nv_bfloat16* __restrict__ out) {
  static_assert(kBytesPerBlock % kBytes == 0);
  __shared__ float s_map[256];
  __shared__ float s_nf4[16];
  for (int i = threadIdx.x; i < 256; i += blockDim.x) s_map[i] = dynamic_map[i];
  if (threadIdx.x < 16) s_nf4[threadIdx.x] = c_nf4[threadIdx.x];
  __syncthreads();

  const int64_t nbytes = (numel + 1) / 2;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x * kBytes;
  for (int64_t b0 =
           (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) *
           kBytes;
       b0 < nbytes; b0 += stride) {
    const int64_t block = b0 / kBytesPerBlock;
    const float absmax =
        __fadd_rn(__fmul_rn(s_map[absmax_codes[block]],
                            absmax_scales[block / kAbsmaxBlockSize]),
                  absmax_offset);
    if (kBytes == 4 && 2 * (b0 + 4) <= numel) {
      const uint32_t word = *reinterpret_cast<const uint32_t*>(packed + b0);
      __align__(16) __nv_bfloat162 v[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const uint32_t byte = (word >> (8 * j)) & 0xffu;
        v[j] = __floats2bfloat162_rn(__fmul_rn(s_nf4[byte >> 4], absmax),
                                     __fmul_rn(s_nf4[byte & 0xfu], absmax));
      }
      *reinterpret_cast<uint4*>(out + 2 * b0) =
          *reinterpret_cast<const uint4*>(v);
    } else {
      for (int j = 0; j < kBytes && b0 + j < nbytes; ++j) {
        const int64_t i = 2 * (b0 + j);
        const uint32_t byte = packed[b0 + j];
        out[i] = __float2bfloat16_rn(__fmul_rn(s_nf4[byte >> 4], absmax));
        if (i + 1 < numel) {
          out[i + 1] =
              __float2bfloat16_rn(__fmul_rn(s_nf4[byte & 0xfu], absmax));
        }
      }
    }
  }
}

}  // namespace

cudaError_t Nf4DequantizeBf16(const uint8_t* packed,
                              const uint8_t* absmax_codes,
                              const float* absmax_scales, float absmax_offset,
                              const float* dynamic_map, int64_t numel,
                              __nv_bfloat16* out, cudaStream_t stream) {
  if (numel < 0) return cudaErrorInvalidValue;
  if (numel == 0) return cudaSuccess;
  if (packed == nullptr || absmax_codes == nullptr ||
      absmax_scales == nullptr || dynamic_map == nullptr || out == nullptr) {
    return cudaErrorInvalidValue;
  }
  const bool aligned = reinterpret_cast<uintptr_t>(packed) % 4 == 0 &&
                       reinterpret_cast<uintptr_t>(out) % 16 == 0;
  const int bytes_per_thread = aligned ? 4 : 1;
  const int64_t nbytes = (numel + 1) / 2;
  const int64_t per_cta = int64_t{kThreads} * bytes_per_thread;
  // Enough CTAs to fill any current GPU many times over; the grid-stride
  // loop covers the rest.
  const int64_t grid =
      std::min<int64_t>((nbytes + per_cta - 1) / per_cta, int64_t{1} << 16);
  const auto kernel = aligned ? Nf4DequantizeKernel<4> : Nf4DequantizeKernel<1>;
  LORAD_LAUNCH_KERNEL(kernel, static_cast<unsigned>(grid), kThreads, stream,
                      packed, absmax_codes, absmax_scales, absmax_offset,
                      dynamic_map, numel, out);
  return cudaGetLastError();
}

}  // namespace lorad::kernels
