// Shared by the kernels_*_test.cc files: random bf16 data and, when the
// CUDA kernels are built (LORAD_TEST_KERNELS_CUDA), device buffers and the
// GPU check that makes a test report SKIPPED on a machine without one.
#ifndef LORAD_TESTS_UNIT_KERNELS_TEST_UTIL_H_
#define LORAD_TESTS_UNIT_KERNELS_TEST_UTIL_H_

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/bf16.h"

#if LORAD_TEST_KERNELS_CUDA
#include <cuda_runtime.h>

#include <cstddef>
#endif

namespace lorad::kernels::testing {

// n bf16 values (their bits) drawn from N(0, stddev^2).
inline std::vector<uint16_t> RandomBf16(int64_t n, uint32_t seed,
                                        float stddev) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<uint16_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = FloatToBf16Bits(dist(rng));
  return v;
}

inline std::vector<float> RandomFloats(int64_t n, uint32_t seed, float stddev) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

#if LORAD_TEST_KERNELS_CUDA
inline bool HaveCudaDevice() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

// A device allocation of `count` T (plus `slack` bytes so a test can shift
// the start to a misaligned address), freed on destruction.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t count, size_t slack = 0) : count_(count) {
    if (cudaMalloc(&raw_, count * sizeof(T) + slack + 1) != cudaSuccess) {
      raw_ = nullptr;
    }
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (raw_ != nullptr) cudaFree(raw_);
  }

  bool ok() const { return raw_ != nullptr; }
  // The start shifted by `shift` bytes.
  T* get(size_t shift = 0) const {
    return reinterpret_cast<T*>(static_cast<char*>(raw_) + shift);
  }
  bool Upload(const std::vector<T>& host, size_t shift = 0) {
    return host.size() <= count_ &&
           cudaMemcpy(get(shift), host.data(), host.size() * sizeof(T),
                      cudaMemcpyHostToDevice) == cudaSuccess;
  }
  std::vector<T> Download(size_t shift = 0) const {
    std::vector<T> host(count_);
    if (cudaMemcpy(host.data(), get(shift), count_ * sizeof(T),
                   cudaMemcpyDeviceToHost) != cudaSuccess) {
      host.clear();
    }
    return host;
  }

 private:
  void* raw_ = nullptr;
  size_t count_;
};
#endif  // LORAD_TEST_KERNELS_CUDA

}  // namespace lorad::kernels::testing

#endif  // LORAD_TESTS_UNIT_KERNELS_TEST_UTIL_H_
