#include <algorithm>
#include <cstdint>

#include "kernels/launch.cuh"
#include "kernels/nf4_codebook.cuh"
#include "kernels/nf4_gemv.cuh"

namespace lorad::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kRowsPerWarp = 2;
constexpr int kRowsPerCta = kWarps * kRowsPerWarp;
// Weights of one row per tile: each lane takes 32 (one 16-byte load).
constexpr int kTile = 32 * 32;
constexpr int64_t kBlockSize = 64;
constexpr int64_t kAbsmaxBlockSize = 256;

// x's staged tile keeps 8 bf16 of padding after every 32 values, so the
// lanes' 16-byte reads (lane stride 80 bytes) hit distinct banks.
__host__ __device__ constexpr int Padded(int col) { return col + col / 32 * 8; }

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float BlockAbsmax(const float* s_map,
                                             const uint8_t* codes,
                                             const float* scales, float offset,
                                             int64_t block) {
  return __fadd_rn(
      __fmul_rn(s_map[codes[block]], scales[block / kAbsmaxBlockSize]), offset);
}

// Fast path (in % 64 == 0, aligned): a CTA owns kRowsPerCta output rows and
// walks the input in tiles of kTile. x's tile is staged in shared memory
// (all M rows), then each lane loads 16 packed bytes (32 weights, all in
// one 64-weight block) per output row and multiplies them against every
// staged row. The codes are summed against x and the block absmax applied
// once per 32 weights. M is m rounded up to a power of two; rows past m
// are zero in shared memory and never stored.
template <int M>
static __global__ void __launch_bounds__(kThreads)
    Nf4GemvFastKernel(const uint8_t* __restrict__ packed,
                      const uint8_t* __restrict__ codes,
                      const float* __restrict__ scales, float offset,
                      const float* __restrict__ dynamic_map,
                      const __nv_bfloat16* __restrict__ x, int m, int64_t in,
                      int64_t out, __nv_bfloat16* __restrict__ y) {
  __shared__ float s_map[256];
  __shared__ float2 s_pair[256];  // byte -> (high nibble, low nibble) values
  __shared__ __align__(16) __nv_bfloat16 s_x[M][Padded(kTile)];
  for (int i = threadIdx.x; i < 256; i += kThreads) {
    s_map[i] = dynamic_map[i];
    s_pair[i] = make_float2(c_nf4[i >> 4], c_nf4[i & 15]);
  }
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int64_t row0 =
      static_cast<int64_t>(blockIdx.x) * kRowsPerCta + warp * kRowsPerWarp;
  float acc[kRowsPerWarp][M];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
    for (int i = 0; i < M; ++i) acc[r][i] = 0.0f;
  }

  for (int64_t j0 = 0; j0 < in; j0 += kTile) {
    const int len = in - j0 < kTile ? static_cast<int>(in - j0) : kTile;
    __syncthreads();  // the previous tile is consumed (and tables written)
    constexpr int kChunks = M * kTile / 8;  // 8 bf16 per 16-byte chunk
    for (int c = threadIdx.x; c < kChunks; c += kThreads) {
      const int r = c / (kTile / 8);
      const int col = (c % (kTile / 8)) * 8;
      uint4 v = make_uint4(0, 0, 0, 0);
      if (r < m && col < len) {
        v = *reinterpret_cast<const uint4*>(x + r * in + j0 + col);
      }
      *reinterpret_cast<uint4*>(&s_x[r][Padded(col)]) = v;
    }
    __syncthreads();

    const int col = lane * 32;
    if (col >= len) continue;
    uint4 wq[kRowsPerWarp];
    float absmax[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int64_t row = row0 + r;
      if (row < out) {
        const int64_t k = row * in + j0 + col;
        wq[r] = *reinterpret_cast<const uint4*>(packed + k / 2);
        absmax[r] = BlockAbsmax(s_map, codes, scales, offset, k / kBlockSize);
      } else {
        wq[r] = make_uint4(0x77777777u, 0x77777777u, 0x77777777u, 0x77777777u);
        absmax[r] = 0.0f;
      }
    }
    const int base = Padded(col);
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const uint32_t words[4] = {wq[r].x, wq[r].y, wq[r].z, wq[r].w};
      float part[M];
#pragma unroll
      for (int i = 0; i < M; ++i) part[i] = 0.0f;
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        // Packed word q holds weights 8q..8q+7 of the lane's 32: byte b is
        // the pair (8q + 2b, 8q + 2b + 1), high nibble first.
        float2 w[4];
#pragma unroll
        for (int b = 0; b < 4; ++b)
          w[b] = s_pair[(words[q] >> (8 * b)) & 0xffu];
#pragma unroll
        for (int i = 0; i < M; ++i) {
          const uint4 xv =
              *reinterpret_cast<const uint4*>(&s_x[i][base + 8 * q]);
          const uint32_t xw[4] = {xv.x, xv.y, xv.z, xv.w};
#pragma unroll
          for (int b = 0; b < 4; ++b) {
            // Word b holds x elements 8q + 2b (low half) and 8q + 2b + 1;
            // a bf16 is the top half of its fp32.
            part[i] = fmaf(w[b].x, __uint_as_float(xw[b] << 16), part[i]);
            part[i] =
                fmaf(w[b].y, __uint_as_float(xw[b] & 0xffff0000u), part[i]);
          }
        }
      }
#pragma unroll
      for (int i = 0; i < M; ++i) {
        acc[r][i] = fmaf(part[i], absmax[r], acc[r][i]);
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
    for (int i = 0; i < M; ++i) {
      const float s = WarpSum(acc[r][i]);
      const int64_t row = row0 + r;
      if (lane == 0 && i < m && row < out) {
        y[i * out + row] = __float2bfloat16_rn(s);
      }
    }
  }
}

// General path (any in, any alignment): one warp per output row, lanes
// stride over the input; each weight is decoded from its own nibble.
template <int M>
static __global__ void __launch_bounds__(kThreads)
    Nf4GemvGeneralKernel(const uint8_t* __restrict__ packed,
                         const uint8_t* __restrict__ codes,
                         const float* __restrict__ scales, float offset,
                         const float* __restrict__ dynamic_map,
                         const __nv_bfloat16* __restrict__ x, int m, int64_t in,
                         int64_t out, __nv_bfloat16* __restrict__ y) {
  __shared__ float s_map[256];
  __shared__ float s_nf4[16];
  for (int i = threadIdx.x; i < 256; i += kThreads) s_map[i] = dynamic_map[i];
  if (threadIdx.x < 16) s_nf4[threadIdx.x] = c_nf4[threadIdx.x];
  __syncthreads();
  const int lane = threadIdx.x % 32;
  const int64_t row =
      static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (row >= out) return;
  float acc[M];
#pragma unroll
  for (int i = 0; i < M; ++i) acc[i] = 0.0f;
  for (int64_t j = lane; j < in; j += 32) {
    const int64_t k = row * in + j;
    const uint8_t byte = packed[k / 2];
    const int code = (k % 2 == 0) ? byte >> 4 : byte & 15;
    const float w = __fmul_rn(
        s_nf4[code], BlockAbsmax(s_map, codes, scales, offset, k / kBlockSize));
#pragma unroll
    for (int i = 0; i < M; ++i) {
      if (i < m) acc[i] = fmaf(w, __bfloat162float(x[i * in + j]), acc[i]);
    }
  }
#pragma unroll
  for (int i = 0; i < M; ++i) {
    const float s = WarpSum(acc[i]);
    if (lane == 0 && i < m) y[i * out + row] = __float2bfloat16_rn(s);
  }
}

template <int M>
void Launch(bool fast, const uint8_t* packed, const uint8_t* codes,
            const float* scales, float offset, const float* map,
            const __nv_bfloat16* x, int m, int64_t in, int64_t out,
            __nv_bfloat16* y, cudaStream_t stream) {
  if (fast) {
    const int64_t grid = (out + kRowsPerCta - 1) / kRowsPerCta;
    const auto kernel = Nf4GemvFastKernel<M>;
    LORAD_LAUNCH_KERNEL(kernel, static_cast<unsigned>(grid), kThreads, stream,
                        packed, codes, scales, offset, map, x, m, in, out, y);
  } else {
    const int64_t grid = (out + kWarps - 1) / kWarps;
    const auto kernel = Nf4GemvGeneralKernel<M>;
    LORAD_LAUNCH_KERNEL(kernel, static_cast<unsigned>(grid), kThreads, stream,
                        packed, codes, scales, offset, map, x, m, in, out, y);
  }
}

}  // namespace

cudaError_t Nf4GemvBf16(const uint8_t* packed, const uint8_t* absmax_codes,
                        const float* absmax_scales, float absmax_offset,
                        const float* dynamic_map, const __nv_bfloat16* x,
                        int64_t m, int64_t in, int64_t out, __nv_bfloat16* y,
                        cudaStream_t stream) {
  if (m < 1 || m > kNf4GemvMaxRows || in < 1 || out < 1) {
    return cudaErrorInvalidValue;
  }
  if (packed == nullptr || absmax_codes == nullptr ||
      absmax_scales == nullptr || dynamic_map == nullptr || x == nullptr ||
      y == nullptr) {
    return cudaErrorInvalidValue;
  }
  // Grid x is limited to 2^31 - 1 CTAs; out never comes near that.
  const bool fast = in % kBlockSize == 0 &&
                    reinterpret_cast<uintptr_t>(packed) % 16 == 0 &&
                    reinterpret_cast<uintptr_t>(x) % 16 == 0;
  const int mi = static_cast<int>(m);
  if (m == 1) {
    Launch<1>(fast, packed, absmax_codes, absmax_scales, absmax_offset,
              dynamic_map, x, mi, in, out, y, stream);
  } else if (m <= 2) {
    Launch<2>(fast, packed, absmax_codes, absmax_scales, absmax_offset,
              dynamic_map, x, mi, in, out, y, stream);
  } else if (m <= 4) {
    Launch<4>(fast, packed, absmax_codes, absmax_scales, absmax_offset,
              dynamic_map, x, mi, in, out, y, stream);
  } else if (m <= 8) {
    Launch<8>(fast, packed, absmax_codes, absmax_scales, absmax_offset,
              dynamic_map, x, mi, in, out, y, stream);
  } else {
    Launch<16>(fast, packed, absmax_codes, absmax_scales, absmax_offset,
               dynamic_map, x, mi, in, out, y, stream);
  }
  return cudaGetLastError();
}

}  // namespace lorad::kernels
