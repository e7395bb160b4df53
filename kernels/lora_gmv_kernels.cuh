// Internal to kernels/bgmv.cu and kernels/sgmv.cu: the shrink (v = x A^T)
// and expand (y += scale * v B^T) kernels both ops share. A "work item" is
// a run of rows that use one adapter: one row for BGMV, one segment for
// SGMV; the Map functor turns grid.y into that item. Rows are processed T
// at a time so each A and B element loaded serves T rows.
#ifndef LORAD_KERNELS_LORA_GMV_KERNELS_CUH_
#define LORAD_KERNELS_LORA_GMV_KERNELS_CUH_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace lorad::kernels::lora_gmv {

inline constexpr int kMaxRank = 128;
inline constexpr int kThreads = 256;
inline constexpr int kWarps = kThreads / 32;
inline constexpr int64_t kShrinkChunk = 1024;  // inputs per CTA (split-K)
inline constexpr int64_t kExpandTile = 256;    // outputs per CTA

struct Adapters {
  const __nv_bfloat16* const* a;  // [count] -> [rank, in]
  const __nv_bfloat16* const* b;  // [count] -> [out, rank]
  const int32_t* ranks;           // [count]
  const float* scales;            // [count]
  int32_t count;
};

struct Work {
  int64_t begin;
  int64_t end;
  int32_t adapter;
};

__device__ __forceinline__ float GroupSum(float v, int width) {
  for (int o = width / 2; o > 0; o >>= 1) {
    v += __shfl_xor_sync(0xffffffffu, v, o);
  }
  return v;
}

// acc + the dot product of two vectors of 8 bf16 (a bf16 is the top half
// of its fp32; unpacked by value, no pointer punning).
__device__ __forceinline__ float Dot8(const uint4& a, const uint4& b,
                                      float acc) {
  const uint32_t aw[4] = {a.x, a.y, a.z, a.w};
  const uint32_t bw[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    acc = fmaf(__uint_as_float(aw[i] << 16), __uint_as_float(bw[i] << 16), acc);
    acc = fmaf(__uint_as_float(aw[i] & 0xffff0000u),
               __uint_as_float(bw[i] & 0xffff0000u), acc);
  }
  return acc;
}

// v[row, k] += sum over this CTA's input chunk of x[row, j] * A[k, j], for
// k < rank. grid = (work items, input chunks, row-tile slices); v must be
// zeroed first (the chunks add into it atomically).
template <int T, class Map>
static __global__ void __launch_bounds__(kThreads)
    ShrinkKernel(Map map, Adapters ad, const __nv_bfloat16* __restrict__ x,
                 int64_t in, float* __restrict__ v) {
  const Work w = map(blockIdx.x);
  if (w.adapter < 0 || w.adapter >= ad.count) return;
  const int rank = min(ad.ranks[w.adapter], kMaxRank);
  const __nv_bfloat16* a = ad.a[w.adapter];
  const int64_t j0 = static_cast<int64_t>(blockIdx.y) * kShrinkChunk;
  const int64_t j1 = min(in, j0 + kShrinkChunk);
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  // Rows of A and x start 16-byte aligned when in % 8 == 0 and the bases
  // are (kShrinkChunk is a multiple of 8 too).
  const bool vec = in % 8 == 0 && reinterpret_cast<uintptr_t>(a) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(x) % 16 == 0;
  for (int64_t t0 = w.begin + static_cast<int64_t>(blockIdx.z) * T; t0 < w.end;
       t0 += static_cast<int64_t>(gridDim.z) * T) {
    const int rows = w.end - t0 < T ? static_cast<int>(w.end - t0) : T;
    for (int k = warp; k < rank; k += kWarps) {
      const __nv_bfloat16* arow = a + k * in;
      float acc[T];
#pragma unroll
      for (int t = 0; t < T; ++t) acc[t] = 0.0f;
      if (vec) {
        // 8 values per 16-byte load; chunks of 8 never straddle j1.
        for (int64_t j = j0 + lane * 8; j < j1; j += 32 * 8) {
          const uint4 av = *reinterpret_cast<const uint4*>(arow + j);
#pragma unroll
          for (int t = 0; t < T; ++t) {
            if (t < rows) {
              const uint4 xv =
                  *reinterpret_cast<const uint4*>(x + (t0 + t) * in + j);
              acc[t] = Dot8(av, xv, acc[t]);
            }
          }
        }
      } else {
        for (int64_t j = j0 + lane; j < j1; j += 32) {
          const float av = __bfloat162float(arow[j]);
#pragma unroll
          for (int t = 0; t < T; ++t) {
            if (t < rows) {
              acc[t] = fmaf(av, __bfloat162float(x[(t0 + t) * in + j]), acc[t]);
            }
          }
        }
      }
#pragma unroll
      for (int t = 0; t < T; ++t) {
        const float s = GroupSum(acc[t], 32);
        if (lane == 0 && t < rows) atomicAdd(&v[(t0 + t) * kMaxRank + k], s);
      }
    }
  }
}

// y[row, o] = bf16(y[row, o] + scale * sum_k v[row, k] * B[o, k]) for this
// CTA's tile of outputs. A group of L lanes (L a power of two, about
// rank / 4) shares one output, reading B's row contiguously.
// grid = (work items, output tiles, row-tile slices).
template <int T, class Map>
static __global__ void __launch_bounds__(kThreads)
    ExpandKernel(Map map, Adapters ad, const float* __restrict__ v, int64_t out,
                 __nv_bfloat16* __restrict__ y) {
  __shared__ float s_v[T][kMaxRank];
  const Work w = map(blockIdx.x);
  if (w.adapter < 0 || w.adapter >= ad.count) return;
  const int rank = min(ad.ranks[w.adapter], kMaxRank);
  if (rank < 1) return;
  const float scale = ad.scales[w.adapter];
  const __nv_bfloat16* b = ad.b[w.adapter];
  int lanes = 1;
  while (lanes < 32 && lanes * 4 < rank) lanes *= 2;
  const int groups = 32 / lanes;  // outputs per warp per pass
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int group = lane / lanes;
  const int gl = lane % lanes;
  const int64_t o0 = static_cast<int64_t>(blockIdx.y) * kExpandTile;
  const int64_t o1 = min(out, o0 + kExpandTile);
  for (int64_t t0 = w.begin + static_cast<int64_t>(blockIdx.z) * T; t0 < w.end;
       t0 += static_cast<int64_t>(gridDim.z) * T) {
    const int rows = w.end - t0 < T ? static_cast<int>(w.end - t0) : T;
    __syncthreads();  // s_v of the previous tile is consumed
    for (int i = threadIdx.x; i < T * kMaxRank; i += kThreads) {
      const int t = i / kMaxRank;
      const int k = i % kMaxRank;
      s_v[t][k] = (t < rows && k < rank) ? v[(t0 + t) * kMaxRank + k] : 0.0f;
    }
    __syncthreads();
    // The loop bound is uniform across the warp so every lane reaches the
    // shuffles; groups past o1 compute zeros and store nothing.
    for (int64_t ob = o0 + static_cast<int64_t>(warp) * groups; ob < o1;
         ob += static_cast<int64_t>(kWarps) * groups) {
      const int64_t o = ob + group;
      float acc[T];
#pragma unroll
      for (int t = 0; t < T; ++t) acc[t] = 0.0f;
      if (o < o1) {
        const __nv_bfloat16* brow = b + o * rank;
        for (int k = gl; k < rank; k += lanes) {
          const float bv = __bfloat162float(brow[k]);
#pragma unroll
          for (int t = 0; t < T; ++t) acc[t] = fmaf(bv, s_v[t][k], acc[t]);
        }
      }
#pragma unroll
      for (int t = 0; t < T; ++t) {
        const float s = GroupSum(acc[t], lanes);
        if (gl == 0 && o < o1 && t < rows) {
          __nv_bfloat16* p = y + (t0 + t) * out + o;
          *p = __float2bfloat16_rn(__bfloat162float(*p) + scale * s);
        }
      }
    }
  }
}

}  // namespace lorad::kernels::lora_gmv

#endif  // LORAD_KERNELS_LORA_GMV_KERNELS_CUH_
