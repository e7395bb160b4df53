#include <cstdint>

#include "kernels/launch.cuh"
#include "kernels/rmsnorm.cuh"

namespace lorad::kernels {
namespace {

constexpr int kThreads = 256;

// Two bf16 in one 32-bit word (the first in the low half) <-> fp32; by
// value, so no type punning through pointers.
__device__ __forceinline__ float2 Unpack(uint32_t word) {
  return make_float2(__uint_as_float(word << 16),
                     __uint_as_float(word & 0xffff0000u));
}

__device__ __forceinline__ uint32_t Pack(float lo, float hi) {
  return static_cast<uint32_t>(__bfloat16_as_ushort(__float2bfloat16_rn(lo))) |
         static_cast<uint32_t>(__bfloat16_as_ushort(__float2bfloat16_rn(hi)))
             << 16;
}

__device__ __forceinline__ float BlockSum(float v) {
  __shared__ float s_part[kThreads / 32];
  __shared__ float s_total;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  if (threadIdx.x % 32 == 0) s_part[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    float t = 0.0f;
    for (int i = 0; i < kThreads / 32; ++i) t += s_part[i];
    s_total = t;
  }
  __syncthreads();
  return s_total;
}

// One CTA per row. kVec values per access: 8 (16-byte loads) when the row
// and pointers allow, else 1. The row is read twice (sum of squares, then
// scale); the second read mostly hits L1/L2.
template <int kVec>
static __global__ void __launch_bounds__(kThreads)
    RmsNormKernel(const __nv_bfloat16* x, const __nv_bfloat16* __restrict__ w,
                  int64_t hidden, float eps, __nv_bfloat16* y,
                  float* __restrict__ rstd) {
  const int64_t row = blockIdx.x;
  const __nv_bfloat16* xr = x + row * hidden;
  __nv_bfloat16* yr = y + row * hidden;
  float ss = 0.0f;
  if constexpr (kVec == 8) {
    for (int64_t j = threadIdx.x * 8; j < hidden; j += kThreads * 8) {
      const uint4 v = *reinterpret_cast<const uint4*>(xr + j);
      const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int t = 0; t < 4; ++t) {
        const float2 f = Unpack(words[t]);
        ss = fmaf(f.x, f.x, ss);
        ss = fmaf(f.y, f.y, ss);
      }
    }
  } else {
    for (int64_t j = threadIdx.x; j < hidden; j += kThreads) {
      const float f = __bfloat162float(xr[j]);
      ss = fmaf(f, f, ss);
    }
  }
  const float r = rsqrtf(BlockSum(ss) / static_cast<float>(hidden) + eps);
  if (rstd != nullptr && threadIdx.x == 0) rstd[row] = r;
  if constexpr (kVec == 8) {
    for (int64_t j = threadIdx.x * 8; j < hidden; j += kThreads * 8) {
      const uint4 xv = *reinterpret_cast<const uint4*>(xr + j);
      const uint4 wv = *reinterpret_cast<const uint4*>(w + j);
      const uint32_t xw[4] = {xv.x, xv.y, xv.z, xv.w};
      const uint32_t ww[4] = {wv.x, wv.y, wv.z, wv.w};
      uint32_t ow[4];
#pragma unroll
      for (int t = 0; t < 4; ++t) {
        const float2 xf = Unpack(xw[t]);
        const float2 wf = Unpack(ww[t]);
        ow[t] = Pack(xf.x * r * wf.x, xf.y * r * wf.y);
      }
      *reinterpret_cast<uint4*>(yr + j) =
          make_uint4(ow[0], ow[1], ow[2], ow[3]);
    }
  } else {
    for (int64_t j = threadIdx.x; j < hidden; j += kThreads) {
      yr[j] = __float2bfloat16_rn(__bfloat162float(xr[j]) * r *
                                  __bfloat162float(w[j]));
    }
  }
}

}  // namespace

cudaError_t RmsNormBf16(const __nv_bfloat16* x, const __nv_bfloat16* w,
                        int64_t rows, int64_t hidden, float eps,
                        __nv_bfloat16* y, float* rstd, cudaStream_t stream) {
  if (rows < 0 || hidden < 0 || !(eps >= 0.0f) || rows > int64_t{0x7fffffff}) {
    return cudaErrorInvalidValue;
  }
  if (rows == 0) return cudaSuccess;
  if (hidden == 0 || x == nullptr || w == nullptr || y == nullptr) {
    return cudaErrorInvalidValue;
  }
  const bool vec = hidden % 8 == 0 &&
                   reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(w) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(y) % 16 == 0;
  const unsigned grid = static_cast<unsigned>(rows);
  if (vec) {
    const auto kernel = RmsNormKernel<8>;
    LORAD_LAUNCH_KERNEL(kernel, grid, kThreads, stream, x, w, hidden, eps, y,
                        rstd);
  } else {
    const auto kernel = RmsNormKernel<1>;
    LORAD_LAUNCH_KERNEL(kernel, grid, kThreads, stream, x, w, hidden, eps, y,
                        rstd);
  }
  return cudaGetLastError();
}

}  // namespace lorad::kernels
