// NF4 dequantization on the CPU against memcpy of the same number of output
// bytes. The dequantizer is lorad::nf4::DequantizeBlocks, the function the
// worker's CPU path runs over block ranges (fp32 out); it is measured on one
// thread and on --threads threads (blocks split evenly), beside memcpy on
// the same thread counts (the copy split the same way).
//
// Prints one JSON line per thread count:
//   {"bench":"nf4_dequant","device":"cpu","params":N,"threads":T,
//    "dequant_seconds":..,"dequant_gbps":..,"memcpy_gbps":..,"ratio":..}
// GB/s is bytes of output written (params * 4) per second, in 1e9 bytes;
// memcpy copies the same params * 4 bytes. ratio = dequant_gbps /
// memcpy_gbps (1.0 would mean dequantizing costs no more than copying its
// output). Each figure is the best of --reps runs after one warm-up.
//
// Usage: nf4_dequant_bench [--params=67108864] [--reps=5] [--threads=N]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kernels/nf4_ref.h"

namespace {

int64_t FlagValue(int argc, char** argv, const std::string& name,
                  int64_t fallback) {
  const std::string prefix = "--" + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) {
      return std::strtoll(argv[i] + prefix.size(), nullptr, 10);
    }
  }
  return fallback;
}

template <typename F>
double BestSeconds(int reps, F&& f) {
  f();  // warm-up: page faults, caches
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    f();
    const std::chrono::duration<double> d =
        std::chrono::steady_clock::now() - start;
    best = std::min(best, d.count());
  }
  return best;
}

// Runs fn(begin, end) over [0, n) split into `threads` contiguous parts.
template <typename F>
void Split(int64_t n, int threads, F&& fn) {
  if (threads <= 1) {
    fn(int64_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t per = (n + threads - 1) / threads;
  for (int t = 0; t < threads; ++t) {
    const int64_t begin = std::min(n, t * per);
    const int64_t end = std::min(n, begin + per);
    pool.emplace_back([&fn, begin, end] { fn(begin, end); });
  }
  for (std::thread& th : pool) th.join();
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t params = FlagValue(argc, argv, "params", int64_t{1} << 26);
  const int reps = static_cast<int>(FlagValue(argc, argv, "reps", 5));
  const int threads = static_cast<int>(
      FlagValue(argc, argv, "threads",
                std::max(1u, std::thread::hardware_concurrency())));
  if (params <= 0 || reps <= 0 || threads <= 0) {
    std::fprintf(stderr, "--params, --reps and --threads must be positive\n");
    return 2;
  }

  // Dequantization time does not depend on the values, so random state
  // stands in for a quantized tensor (quantizing 64M weights would only
  // slow the benchmark down).
  lorad::nf4::QuantizedTensor q;
  q.numel = params;
  q.double_quant = true;
  std::mt19937 rng(42);
  q.packed.resize((params + 1) / 2);
  for (auto& b : q.packed) b = static_cast<uint8_t>(rng());
  q.absmax_codes.resize(q.num_blocks());
  for (auto& c : q.absmax_codes) c = static_cast<uint8_t>(rng());
  q.absmax_scales.assign((q.num_blocks() + lorad::nf4::kAbsmaxBlockSize - 1) /
                             lorad::nf4::kAbsmaxBlockSize,
                         0.05f);
  q.absmax_offset = 0.06f;

  const lorad::nf4::DoubleQuantView view{
      params, q.packed.data(), q.absmax_codes.data(), q.absmax_scales.data(),
      q.absmax_offset};
  const int64_t blocks = q.num_blocks();

  std::vector<float> out(params);
  std::vector<float> src(params, 1.0f);
  std::vector<float> dst(params);
  const double bytes = static_cast<double>(params) * sizeof(float);

  std::vector<int> counts = {1};
  if (threads > 1) counts.push_back(threads);
  for (int t : counts) {
    const double dequant_s = BestSeconds(reps, [&] {
      Split(blocks, t, [&](int64_t begin, int64_t end) {
        lorad::nf4::DequantizeBlocks(view, begin, end, out.data());
      });
    });
    const double memcpy_s = BestSeconds(reps, [&] {
      Split(params, t, [&](int64_t begin, int64_t end) {
        std::memcpy(dst.data() + begin, src.data() + begin,
                    (end - begin) * sizeof(float));
      });
    });
    // Keep the results observable.
    volatile float sink = out[params / 3] + dst[params / 2];
    (void)sink;

    const double dequant_gbps = bytes / dequant_s / 1e9;
    const double memcpy_gbps = bytes / memcpy_s / 1e9;
    std::printf(
        "{\"bench\":\"nf4_dequant\",\"device\":\"cpu\",\"params\":%lld,"
        "\"threads\":%d,\"out_dtype\":\"fp32\",\"dequant_seconds\":%.6f,"
        "\"memcpy_seconds\":%.6f,\"dequant_gbps\":%.3f,\"memcpy_gbps\":%.3f,"
        "\"ratio\":%.3f}\n",
        static_cast<long long>(params), t, dequant_s, memcpy_s, dequant_gbps,
        memcpy_gbps, dequant_gbps / memcpy_gbps);
  }
  return 0;
}
