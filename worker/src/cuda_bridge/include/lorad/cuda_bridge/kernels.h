// The bridge between LibTorch tensors and the kernels in kernels/: checks
// shapes, dtypes and devices, then runs each op on the tensors' device.
//
// CUDA tensors run the CUDA kernels on the current CUDA stream of the
// tensors' device (asynchronously, like any LibTorch op). CPU tensors run
// the kernels' CPU references (slow; meant for tests and tiny models).
// Builds without the CUDA kernels, or with a LibTorch without CUDA, link a
// bridge whose device path returns UnimplementedError; KernelsBuilt() says
// which one this is. Nothing else in lorad needs to know.
//
// Every function returns InvalidArgument naming the argument for a wrong
// dtype, shape, device or size, never aborts, and turns LibTorch errors into
// a Status (ResourceExhausted for out-of-memory). Thread-safe.
#ifndef LORAD_CUDA_BRIDGE_KERNELS_H_
#define LORAD_CUDA_BRIDGE_KERNELS_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lorad::cuda_bridge {

// True when this build carries the CUDA kernels (the device path).
bool KernelsBuilt();

// KernelsBuilt() and at least one CUDA device is visible.
bool DeviceAvailable();

// A [rows, cols] matrix in double-quantized NF4 (kernels/nf4_ref.h), all
// tensors on one device.
struct Nf4Tensors {
  at::Tensor packed;         // uint8 [(rows * cols + 1) / 2]
  at::Tensor absmax_codes;   // uint8 [ceil(rows * cols / 64)]
  at::Tensor absmax_scales;  // float32 [ceil(codes / 256)]
  at::Tensor dynamic_map;    // float32 [256], lorad::nf4::DynamicMap()
  float absmax_offset = 0.0f;
  int64_t rows = 0;
  int64_t cols = 0;
};

// The whole matrix as a fresh bf16 [rows, cols] tensor.
absl::StatusOr<at::Tensor> Nf4DequantizeBf16(const Nf4Tensors& w);

// x [m, cols] bf16 with m in 1..16 -> x W^T, bf16 [m, rows], without
// dequantizing W.
absl::StatusOr<at::Tensor> Nf4Gemv(const at::Tensor& x, const Nf4Tensors& w);

// One adapter for one target module: a = lora_A [rank, in], b = lora_B
// [out, rank], bf16, rank 1..128; scale = lora_alpha / rank.
struct LoraTensors {
  at::Tensor a;
  at::Tensor b;
  float scale = 1.0f;
};

// BGMV: y[i] += scale * (x[i] A^T) B^T with adapter idx[i] (int32 [n], on
// any device; -1 = none). x [n, in] and y [n, out] bf16, y contiguous; y is
// updated in place.
absl::Status LoraBgmv(at::Tensor& y, const at::Tensor& x,
                      const std::vector<LoraTensors>& adapters,
                      const at::Tensor& idx);

// SGMV: the same with rows [seg_starts[s], seg_starts[s + 1]) using adapter
// seg_adapters[s] (-1 = none). seg_starts is non-decreasing within [0, n],
// one longer than seg_adapters.
absl::Status LoraSgmv(at::Tensor& y, const at::Tensor& x,
                      const std::vector<LoraTensors>& adapters,
                      const std::vector<int32_t>& seg_starts,
                      const std::vector<int32_t>& seg_adapters);

// Fused RMSNorm forward: x [..., hidden] bf16, weight [hidden] bf16, eps >=
// 0 -> bf16 like x.
absl::StatusOr<at::Tensor> RmsNorm(const at::Tensor& x,
                                   const at::Tensor& weight, double eps);

}  // namespace lorad::cuda_bridge

#endif  // LORAD_CUDA_BRIDGE_KERNELS_H_
