// The worker's Nf4Weight dequantizes to bf16 through the CUDA kernel
// (lorad::cuda_bridge) on a GPU; the result must be bit-identical to its
// LibTorch path (fp32 dequantize, then rounding to bf16).
#include <torch/torch.h>

#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "lorad/cuda_bridge/kernels.h"
#include "lorad/worker/nf4_weight.h"

namespace lorad::worker {
namespace {

std::vector<float> Random(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

void ExpectBf16MatchesFp32Path(const torch::Device& device) {
  // 37 x 100: blocks straddle rows and the last block is partial.
  for (auto [out, in] : {std::pair<int64_t, int64_t>{37, 100}, {256, 4096}}) {
    const std::vector<float> w = Random(out * in, 3);
    const Nf4Weight q = Nf4Weight::Quantize(w.data(), out, in, device);
    const torch::Tensor bf16 = q.Dequantize(torch::kBFloat16);
    const torch::Tensor want =
        q.Dequantize(torch::kFloat32).to(torch::kBFloat16);
    ASSERT_EQ(bf16.scalar_type(), torch::kBFloat16);
    ASSERT_EQ(bf16.sizes(), (std::vector<int64_t>{out, in}));
    EXPECT_TRUE(torch::equal(bf16.cpu(), want.cpu()))
        << "out=" << out << " in=" << in << " on " << device;
  }
}

TEST(Nf4WeightKernelTest, CpuBf16MatchesFp32Path) {
  ExpectBf16MatchesFp32Path(torch::kCPU);
}

TEST(Nf4WeightKernelTest, CudaBf16MatchesFp32Path) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  if (!cuda_bridge::KernelsBuilt()) {
    GTEST_SKIP() << "built without CUDA kernels (LibTorch path only)";
  }
  ExpectBf16MatchesFp32Path(torch::Device(torch::kCUDA, 0));
}

}  // namespace
}  // namespace lorad::worker
