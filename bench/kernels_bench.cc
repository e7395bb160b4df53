// kernels_bench: the CUDA kernels against the bandwidth of the device they
// run on, one JSON object per result line.
//
//   nf4_gemv   NF4 GEMV at Llama-3-8B layer shapes, m = 1 and 16. gbps =
//              (packed weight bytes + absmax codes + scales) / time; the
//              peer is a device-to-device cudaMemcpy of the same bytes,
//              whose HBM traffic (read + write = 2 x bytes) / time is the
//              device's measured bandwidth; ratio = gbps / copy_gbps
//              (goal >= 0.7).
//   bgmv       a decode batch of 32 rows, 32 distinct adapters (rank 16 and
//              64) on a 4096 x 4096 projection: base NF4 GEMV for the batch
//              alone vs base + BGMV; ratio = base time / (base + BGMV) time,
//              the throughput kept (goal >= 0.85).
//   sgmv       prefill: 4 segments x 512 rows, rank 16, 4096 x 4096.
//   rmsnorm    4096 rows x 4096, bytes in + out per second vs the copy.
// Weights rotate through enough copies to exceed the L2 cache, so every
// timed call reads HBM. Without a CUDA device it prints
// {"bench":"kernels","skipped":"no CUDA device"} and exits 0.
//
// Usage: kernels_bench [--iters=100]
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/bgmv.cuh"
#include "kernels/nf4_gemv.cuh"
#include "kernels/nf4_ref.h"
#include "kernels/rmsnorm.cuh"
#include "kernels/sgmv.cuh"

namespace {

#define CHECK_CUDA(expr)                                                 \
  do {                                                                   \
    const cudaError_t e_ = (expr);                                       \
    if (e_ != cudaSuccess) {                                             \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, \
                   cudaGetErrorString(e_));                              \
      std::exit(1);                                                      \
    }                                                                    \
  } while (0)

constexpr int64_t kMinFootprint = int64_t{512} << 20;  // well past any L2

int g_iters = 100;
std::string g_device;

void* DeviceRandom(int64_t bytes, uint32_t seed) {
  std::vector<uint8_t> host(static_cast<size_t>(bytes));
  std::mt19937 rng(seed);
  for (auto& b : host) b = static_cast<uint8_t>(rng());
  void* d = nullptr;
  CHECK_CUDA(cudaMalloc(&d, std::max<int64_t>(bytes, 16)));
  CHECK_CUDA(cudaMemcpy(d, host.data(), bytes, cudaMemcpyHostToDevice));
  return d;
}

// Random bf16 values N(0, stddev^2) (random bits would give NaNs).
__nv_bfloat16* DeviceBf16(int64_t n, uint32_t seed, float stddev) {
  std::vector<__nv_bfloat16> host(static_cast<size_t>(n));
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  for (auto& v : host) v = __float2bfloat16(dist(rng));
  __nv_bfloat16* d = nullptr;
  CHECK_CUDA(cudaMalloc(&d, n * sizeof(__nv_bfloat16)));
  CHECK_CUDA(cudaMemcpy(d, host.data(), n * sizeof(__nv_bfloat16),
                        cudaMemcpyHostToDevice));
  return d;
}

// Seconds per call of f(i) (i counts calls), after warm-up.
template <typename F>
double TimePerCall(F&& f) {
  for (int i = 0; i < 5; ++i) f(i);
  CHECK_CUDA(cudaDeviceSynchronize());
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  CHECK_CUDA(cudaEventRecord(start));
  for (int i = 0; i < g_iters; ++i) f(i);
  CHECK_CUDA(cudaEventRecord(stop));
  CHECK_CUDA(cudaEventSynchronize(stop));
  float ms = 0.0f;
  CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
  return ms / 1e3 / g_iters;
}

// An NF4 [out, in] weight (random state: timing does not depend on values).
struct Nf4Weight {
  uint8_t* packed;
  uint8_t* codes;
  float* scales;
  int64_t bytes;  // everything the GEMV reads of the weight
};

Nf4Weight MakeWeight(int64_t out, int64_t in, uint32_t seed) {
  const int64_t n = out * in;
  const int64_t blocks = n / lorad::nf4::kBlockSize;
  const int64_t nscales = (blocks + 255) / 256;
  Nf4Weight w;
  w.packed = static_cast<uint8_t*>(DeviceRandom(n / 2, seed));
  w.codes = static_cast<uint8_t*>(DeviceRandom(blocks, seed + 1));
  std::vector<float> s(static_cast<size_t>(nscales), 0.05f);
  CHECK_CUDA(cudaMalloc(&w.scales, nscales * sizeof(float)));
  CHECK_CUDA(cudaMemcpy(w.scales, s.data(), nscales * sizeof(float),
                        cudaMemcpyHostToDevice));
  w.bytes = n / 2 + blocks + nscales * static_cast<int64_t>(sizeof(float));
  return w;
}

void FreeWeight(const Nf4Weight& w) {
  cudaFree(w.packed);
  cudaFree(w.codes);
  cudaFree(w.scales);
}

float* DynamicMap() {
  static float* d = [] {
    float* p = nullptr;
    CHECK_CUDA(cudaMalloc(&p, 256 * sizeof(float)));
    CHECK_CUDA(cudaMemcpy(p, lorad::nf4::DynamicMap().data(),
                          256 * sizeof(float), cudaMemcpyHostToDevice));
    return p;
  }();
  return d;
}

// HBM bandwidth as a device-to-device copy of `bytes` measures it (read +
// write traffic per second), rotating buffers past the L2.
double CopyGbps(int64_t bytes) {
  const int copies = static_cast<int>(
      std::max<int64_t>(2, kMinFootprint / std::max<int64_t>(bytes, 1)));
  std::vector<void*> src(copies), dst(copies);
  for (int i = 0; i < copies; ++i) {
    CHECK_CUDA(cudaMalloc(&src[i], bytes));
    CHECK_CUDA(cudaMalloc(&dst[i], bytes));
    CHECK_CUDA(cudaMemset(src[i], 1, bytes));
  }
  const double t = TimePerCall([&](int i) {
    CHECK_CUDA(cudaMemcpyAsync(dst[i % copies], src[i % copies], bytes,
                               cudaMemcpyDeviceToDevice));
  });
  for (int i = 0; i < copies; ++i) {
    cudaFree(src[i]);
    cudaFree(dst[i]);
  }
  return 2.0 * static_cast<double>(bytes) / t / 1e9;
}

// Seconds per NF4 GEMV of `rows` rows (in launches of up to 16) over
// rotating copies of the weight.
double Nf4GemvSeconds(const std::vector<Nf4Weight>& ws, int64_t out, int64_t in,
                      int64_t rows, const __nv_bfloat16* x, __nv_bfloat16* y) {
  return TimePerCall([&](int i) {
    const Nf4Weight& w = ws[i % ws.size()];
    for (int64_t r0 = 0; r0 < rows; r0 += lorad::kernels::kNf4GemvMaxRows) {
      const int64_t m =
          std::min<int64_t>(lorad::kernels::kNf4GemvMaxRows, rows - r0);
      CHECK_CUDA(lorad::kernels::Nf4GemvBf16(w.packed, w.codes, w.scales, 0.01f,
                                             DynamicMap(), x + r0 * in, m, in,
                                             out, y + r0 * out, 0));
    }
  });
}

std::vector<Nf4Weight> Weights(int64_t out, int64_t in) {
  const int64_t one = out * in / 2;
  const int copies =
      static_cast<int>(std::max<int64_t>(2, kMinFootprint / one + 1));
  std::vector<Nf4Weight> ws;
  for (int c = 0; c < copies; ++c) {
    ws.push_back(MakeWeight(out, in, static_cast<uint32_t>(c * 7 + 1)));
  }
  return ws;
}

void BenchNf4Gemv() {
  struct Shape {
    const char* name;
    int64_t out, in;
  };
  for (const Shape& s : {Shape{"q_proj/o_proj", 4096, 4096},
                         Shape{"gate_proj/up_proj", 14336, 4096},
                         Shape{"down_proj", 4096, 14336}}) {
    const std::vector<Nf4Weight> ws = Weights(s.out, s.in);
    const double copy_gbps = CopyGbps(ws[0].bytes);
    __nv_bfloat16* x = DeviceBf16(16 * s.in, 3, 1.0f);
    __nv_bfloat16* y = DeviceBf16(16 * s.out, 4, 1.0f);
    for (int64_t m : {1, 16}) {
      const double t = Nf4GemvSeconds(ws, s.out, s.in, m, x, y);
      const double gbps = static_cast<double>(ws[0].bytes) / t / 1e9;
      std::printf(
          "{\"bench\":\"nf4_gemv\",\"device\":\"%s\",\"layer\":\"%s\","
          "\"out\":%lld,\"in\":%lld,\"m\":%lld,\"weight_bytes\":%lld,"
          "\"seconds\":%.9f,\"gbps\":%.1f,\"copy_gbps\":%.1f,\"ratio\":%.3f,"
          "\"goal\":0.7}\n",
          g_device.c_str(), s.name, static_cast<long long>(s.out),
          static_cast<long long>(s.in), static_cast<long long>(m),
          static_cast<long long>(ws[0].bytes), t, gbps, copy_gbps,
          gbps / copy_gbps);
      std::fflush(stdout);
    }
    cudaFree(x);
    cudaFree(y);
    for (const Nf4Weight& w : ws) FreeWeight(w);
  }
}

// num_adapters adapters of one rank for a [out, in] module, in device
// memory, with the pointer / rank / scale arrays the launchers take.
struct DeviceAdapters {
  std::vector<void*> allocations;
  const __nv_bfloat16** a_ptrs;
  const __nv_bfloat16** b_ptrs;
  int32_t* ranks;
  float* scales;
};

DeviceAdapters MakeAdapters(int count, int rank, int64_t in, int64_t out) {
  DeviceAdapters d;
  std::vector<const __nv_bfloat16*> a, b;
  for (int i = 0; i < count; ++i) {
    a.push_back(DeviceBf16(rank * in, 100 + 2 * i, 0.05f));
    b.push_back(DeviceBf16(out * rank, 101 + 2 * i, 0.05f));
    d.allocations.push_back(const_cast<__nv_bfloat16*>(a.back()));
    d.allocations.push_back(const_cast<__nv_bfloat16*>(b.back()));
  }
  const std::vector<int32_t> r(count, rank);
  const std::vector<float> s(count, 2.0f);
  CHECK_CUDA(cudaMalloc(&d.a_ptrs, count * sizeof(void*)));
  CHECK_CUDA(cudaMalloc(&d.b_ptrs, count * sizeof(void*)));
  CHECK_CUDA(cudaMalloc(&d.ranks, count * sizeof(int32_t)));
  CHECK_CUDA(cudaMalloc(&d.scales, count * sizeof(float)));
  CHECK_CUDA(cudaMemcpy(d.a_ptrs, a.data(), count * sizeof(void*),
                        cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(d.b_ptrs, b.data(), count * sizeof(void*),
                        cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(d.ranks, r.data(), count * sizeof(int32_t),
                        cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(d.scales, s.data(), count * sizeof(float),
                        cudaMemcpyHostToDevice));
  for (void* p : {static_cast<void*>(d.a_ptrs), static_cast<void*>(d.b_ptrs),
                  static_cast<void*>(d.ranks), static_cast<void*>(d.scales)}) {
    d.allocations.push_back(p);
  }
  return d;
}

void BenchLora() {
  const int64_t in = 4096, out = 4096, batch = 32;
  const int num_adapters = 32;
  const std::vector<Nf4Weight> ws = Weights(out, in);
  __nv_bfloat16* x = DeviceBf16(batch * in, 5, 1.0f);
  __nv_bfloat16* y = DeviceBf16(batch * out, 6, 1.0f);
  float* workspace = nullptr;
  CHECK_CUDA(cudaMalloc(
      &workspace, lorad::kernels::LoraWorkspaceFloats(2048) * sizeof(float)));
  std::vector<int32_t> idx(batch);
  for (int64_t i = 0; i < batch; ++i) idx[i] = static_cast<int32_t>(i);
  int32_t* d_idx = nullptr;
  CHECK_CUDA(cudaMalloc(&d_idx, batch * sizeof(int32_t)));
  CHECK_CUDA(cudaMemcpy(d_idx, idx.data(), batch * sizeof(int32_t),
                        cudaMemcpyHostToDevice));
  const double base = Nf4GemvSeconds(ws, out, in, batch, x, y);
  for (int rank : {16, 64}) {
    DeviceAdapters ad = MakeAdapters(num_adapters, rank, in, out);
    const double both = TimePerCall([&](int i) {
      const Nf4Weight& w = ws[i % ws.size()];
      for (int64_t r0 = 0; r0 < batch; r0 += 16) {
        CHECK_CUDA(lorad::kernels::Nf4GemvBf16(w.packed, w.codes, w.scales,
                                               0.01f, DynamicMap(), x + r0 * in,
                                               16, in, out, y + r0 * out, 0));
      }
      CHECK_CUDA(lorad::kernels::LoraBgmvBf16(
          x, batch, in, out, ad.a_ptrs, ad.b_ptrs, ad.ranks, ad.scales,
          num_adapters, d_idx, workspace, y, 0));
    });
    std::printf(
        "{\"bench\":\"bgmv\",\"device\":\"%s\",\"out\":%lld,\"in\":%lld,"
        "\"batch\":%lld,\"adapters\":%d,\"rank\":%d,\"base_seconds\":%.9f,"
        "\"base_plus_bgmv_seconds\":%.9f,\"bgmv_seconds\":%.9f,"
        "\"ratio\":%.3f,\"goal\":0.85}\n",
        g_device.c_str(), static_cast<long long>(out),
        static_cast<long long>(in), static_cast<long long>(batch), num_adapters,
        rank, base, both, both - base, base / both);
    std::fflush(stdout);

    // Prefill: 4 segments of 512 rows, one adapter each.
    const int64_t rows = 2048;
    __nv_bfloat16* px = DeviceBf16(rows * in, 7, 1.0f);
    __nv_bfloat16* py = DeviceBf16(rows * out, 8, 1.0f);
    const std::vector<int32_t> starts = {0, 512, 1024, 1536, 2048};
    const std::vector<int32_t> segs = {0, 1, 2, 3};
    int32_t *d_starts = nullptr, *d_segs = nullptr;
    CHECK_CUDA(cudaMalloc(&d_starts, starts.size() * sizeof(int32_t)));
    CHECK_CUDA(cudaMalloc(&d_segs, segs.size() * sizeof(int32_t)));
    CHECK_CUDA(cudaMemcpy(d_starts, starts.data(),
                          starts.size() * sizeof(int32_t),
                          cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(d_segs, segs.data(), segs.size() * sizeof(int32_t),
                          cudaMemcpyHostToDevice));
    const double t = TimePerCall([&](int) {
      CHECK_CUDA(lorad::kernels::LoraSgmvBf16(
          px, rows, in, out, ad.a_ptrs, ad.b_ptrs, ad.ranks, ad.scales,
          num_adapters, d_starts, d_segs, 4, workspace, py, 0));
    });
    // Bytes the op must move at least: x, y read + written, 4 adapters.
    const double bytes =
        2.0 * (rows * in + 2 * rows * out + 4 * rank * (in + out));
    std::printf(
        "{\"bench\":\"sgmv\",\"device\":\"%s\",\"out\":%lld,\"in\":%lld,"
        "\"rows\":%lld,\"segments\":4,\"rank\":%d,\"seconds\":%.9f,"
        "\"min_bytes_gbps\":%.1f}\n",
        g_device.c_str(), static_cast<long long>(out),
        static_cast<long long>(in), static_cast<long long>(rows), rank, t,
        bytes / t / 1e9);
    std::fflush(stdout);
    cudaFree(px);
    cudaFree(py);
    cudaFree(d_starts);
    cudaFree(d_segs);
    for (void* p : ad.allocations) cudaFree(p);
  }
  cudaFree(x);
  cudaFree(y);
  cudaFree(workspace);
  cudaFree(d_idx);
  for (const Nf4Weight& w : ws) FreeWeight(w);
}

void BenchRmsNorm() {
  const int64_t rows = 4096, hidden = 4096;
  const int64_t bytes = rows * hidden * 2;
  const int copies = static_cast<int>(kMinFootprint / bytes + 1);
  std::vector<__nv_bfloat16*> xs, ys;
  for (int c = 0; c < copies; ++c) {
    xs.push_back(DeviceBf16(rows * hidden, 20 + c, 1.0f));
    ys.push_back(DeviceBf16(rows * hidden, 40 + c, 1.0f));
  }
  __nv_bfloat16* w = DeviceBf16(hidden, 9, 1.0f);
  const double t = TimePerCall([&](int i) {
    CHECK_CUDA(lorad::kernels::RmsNormBf16(xs[i % copies], w, rows, hidden,
                                           1e-5f, ys[i % copies], nullptr, 0));
  });
  const double gbps = 2.0 * static_cast<double>(bytes) / t / 1e9;
  const double copy_gbps = CopyGbps(bytes);
  std::printf(
      "{\"bench\":\"rmsnorm\",\"device\":\"%s\",\"rows\":%lld,\"hidden\":%lld,"
      "\"seconds\":%.9f,\"gbps\":%.1f,\"copy_gbps\":%.1f,\"ratio\":%.3f}\n",
      g_device.c_str(), static_cast<long long>(rows),
      static_cast<long long>(hidden), t, gbps, copy_gbps, gbps / copy_gbps);
  std::fflush(stdout);
  for (auto* p : xs) cudaFree(p);
  for (auto* p : ys) cudaFree(p);
  cudaFree(w);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--iters=", 8) == 0) {
      g_iters = std::max(1, std::atoi(argv[i] + 8));
    } else {
      std::fprintf(stderr, "usage: kernels_bench [--iters=N]\n");
      return 2;
    }
  }
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("{\"bench\":\"kernels\",\"skipped\":\"no CUDA device\"}\n");
    return 0;
  }
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  g_device = prop.name;
  BenchNf4Gemv();
  BenchLora();
  BenchRmsNorm();
  return 0;
}
