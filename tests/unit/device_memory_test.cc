// The worker's memory numbers: RSS on CPU, LibTorch's allocator on CUDA.
#include "lorad/worker/device_memory.h"

#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace lorad::worker {
namespace {

TEST(DeviceMemoryTest, CpuReportsRssAndNoAllocator) {
  const torch::Device cpu(torch::kCPU);
  lorad::worker::v1::MemoryUsage before = CurrentMemoryUsage(cpu);
  EXPECT_EQ(before.device(), "cpu");
  EXPECT_GT(before.rss_bytes(), 1 << 20);
  EXPECT_EQ(before.used_bytes(), before.rss_bytes());
  EXPECT_GE(before.peak_bytes(), before.rss_bytes());
  EXPECT_GT(before.total_bytes(), before.rss_bytes());
  EXPECT_EQ(before.allocator_allocated_bytes(), 0);
  EXPECT_EQ(before.allocator_reserved_bytes(), 0);
  // 256 MiB touched shows in the RSS.
  torch::Tensor big = torch::ones({64, 1024, 1024}, torch::kFloat32);
  lorad::worker::v1::MemoryUsage after = CurrentMemoryUsage(cpu);
  EXPECT_GE(after.rss_bytes() - before.rss_bytes(), int64_t{200} << 20);
  EXPECT_GE(PeakMemoryBytes(cpu), after.rss_bytes());
  EXPECT_EQ(big.sum().item<float>(), 64.0f * 1024 * 1024);
}

TEST(DeviceMemoryTest, CudaReportsTheCachingAllocator) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const torch::Device gpu(torch::kCUDA, 0);
  lorad::worker::v1::MemoryUsage before = CurrentMemoryUsage(gpu);
  torch::Tensor big =
      torch::empty({64 << 20}, torch::dtype(torch::kFloat32).device(gpu));
  lorad::worker::v1::MemoryUsage after = CurrentMemoryUsage(gpu);
  EXPECT_EQ(after.device(), "cuda:0");
  EXPECT_GE(
      after.allocator_allocated_bytes() - before.allocator_allocated_bytes(),
      int64_t{256} << 20);
  EXPECT_GE(after.allocator_reserved_bytes(),
            after.allocator_allocated_bytes());
  EXPECT_GE(after.allocator_peak_allocated_bytes(),
            after.allocator_allocated_bytes());
  EXPECT_EQ(after.used_bytes(), after.allocator_allocated_bytes());
  EXPECT_GT(after.total_bytes(), after.allocator_reserved_bytes());
  big.reset();
  lorad::worker::v1::MemoryUsage freed = CurrentMemoryUsage(gpu);
  EXPECT_LT(freed.allocator_allocated_bytes(),
            after.allocator_allocated_bytes());
  EXPECT_EQ(freed.allocator_reserved_bytes(), after.allocator_reserved_bytes());
}

}  // namespace
}  // namespace lorad::worker
