// A host emulator for the CUDA kernels in kernels/, so their indexing,
// shared-memory staging, barriers and warp shuffles run (slowly) on a
// machine with no GPU. Each CTA runs as blockDim.x std::threads; CTAs run
// one after another, so a kernel's __shared__ variables become function
// statics shared by the CTA's threads. Only what the kernels use is here:
// 1-D CTAs of at most 1024 threads, __syncthreads, __shfl_xor_sync,
// atomicAdd on floats, and the fp32 intrinsics. Include it before any
// kernel source, and only in tests; it redefines CUDA's qualifiers. A
// test includes one kernels/*.cu file after it and calls its launcher with
// host pointers (one .cu per translation unit: their internals collide).
#ifndef LORAD_TESTS_UNIT_KERNELS_EMU_H_
#define LORAD_TESTS_UNIT_KERNELS_EMU_H_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <barrier>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#undef __global__
#undef __device__
#undef __shared__
#undef __constant__
#undef __forceinline__
#undef __launch_bounds__
#undef __restrict__
#undef __host__
#define __global__
#define __device__
#define __shared__ static
#define __constant__ static
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__
#define __host__

namespace lorad::kernels::emu {

struct Ctx {
  uint3 thread_idx, block_idx;
  dim3 block_dim, grid_dim;
};

inline thread_local Ctx t_ctx;

// Per-CTA synchronisation: one barrier for the CTA, one per warp with a
// slot per lane for shuffles.
struct Cta {
  explicit Cta(int threads)
      : block(threads), warps((threads + 31) / 32), slots(threads) {
    for (int w = 0; w < (threads + 31) / 32; ++w) {
      const int n = std::min(32, threads - 32 * w);
      warps[w] = std::make_unique<std::barrier<>>(n);
    }
  }
  std::barrier<> block;
  std::vector<std::unique_ptr<std::barrier<>>> warps;
  std::vector<float> slots;
};

inline thread_local Cta* t_cta = nullptr;

// Runs kernel(args...) over grid x block, CTA by CTA.
template <typename... P, typename... A>
void Launch(void (*kernel)(P...), dim3 grid, dim3 block, A&&... args) {
  const int threads = static_cast<int>(block.x * block.y * block.z);
  for (unsigned bz = 0; bz < grid.z; ++bz) {
    for (unsigned by = 0; by < grid.y; ++by) {
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        Cta cta(threads);
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t) {
          pool.emplace_back([&, t] {
            t_ctx = Ctx{uint3{static_cast<unsigned>(t), 0, 0},
                        uint3{bx, by, bz}, block, grid};
            t_cta = &cta;
            kernel(args...);
            // A thread that returns early stops counting at the barriers.
            cta.block.arrive_and_drop();
            cta.warps[t / 32]->arrive_and_drop();
          });
        }
        for (auto& th : pool) th.join();
      }
    }
  }
}

}  // namespace lorad::kernels::emu

#define threadIdx (::lorad::kernels::emu::t_ctx.thread_idx)
#define blockIdx (::lorad::kernels::emu::t_ctx.block_idx)
#define blockDim (::lorad::kernels::emu::t_ctx.block_dim)
#define gridDim (::lorad::kernels::emu::t_ctx.grid_dim)

inline void __syncthreads() {
  ::lorad::kernels::emu::t_cta->block.arrive_and_wait();
}

inline float __shfl_xor_sync(unsigned, float v, int mask) {
  auto* cta = ::lorad::kernels::emu::t_cta;
  const int t = static_cast<int>(threadIdx.x);
  const int warp = t / 32;
  cta->slots[t] = v;
  cta->warps[warp]->arrive_and_wait();
  const float r = cta->slots[warp * 32 + ((t % 32) ^ mask)];
  cta->warps[warp]->arrive_and_wait();
  return r;
}

inline float atomicAdd(float* p, float v) {
  return std::atomic_ref<float>(*p).fetch_add(v);
}

#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
#pragma GCC pop_options
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __uint_as_float(unsigned u) { return std::bit_cast<float>(u); }

// What the launchers call around their kernels.
#define LORAD_LAUNCH_KERNEL(kernel, grid, block, stream, ...) \
  ::lorad::kernels::emu::Launch(kernel, dim3(grid), dim3(block), __VA_ARGS__)
#define cudaMemsetAsync(p, v, n, s) (std::memset((p), (v), (n)), cudaSuccess)
#define cudaGetLastError() cudaSuccess
using std::max;
using std::min;

#endif  // LORAD_TESTS_UNIT_KERNELS_EMU_H_
