// Internal to lorad::cuda_bridge: the device half of each op, implemented
// by device_cuda.cc (CUDA kernels) or device_none.cc (no kernels). Callers
// (kernels.cc) have checked every argument: contiguous tensors of the right
// dtypes and sizes, all on one CUDA device, outputs allocated.
#ifndef LORAD_CUDA_BRIDGE_DEVICE_OPS_H_
#define LORAD_CUDA_BRIDGE_DEVICE_OPS_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lorad/cuda_bridge/kernels.h"

namespace lorad::cuda_bridge::device {

bool Built();
bool Available();

absl::Status Nf4Dequantize(const Nf4Tensors& w, at::Tensor& out);
absl::Status Nf4Gemv(const at::Tensor& x, const Nf4Tensors& w, at::Tensor& y);
// Exactly one of idx (BGMV) or segments (SGMV) is used.
absl::Status Bgmv(at::Tensor& y, const at::Tensor& x,
                  const std::vector<LoraTensors>& adapters,
                  const at::Tensor& idx);
absl::Status Sgmv(at::Tensor& y, const at::Tensor& x,
                  const std::vector<LoraTensors>& adapters,
                  const std::vector<int32_t>& seg_starts,
                  const std::vector<int32_t>& seg_adapters);
absl::Status RmsNorm(const at::Tensor& x, const at::Tensor& w, float eps,
                     at::Tensor& y);
// managed_memory.h; `src` is contiguous, `device_index` is a visible device.
absl::StatusOr<at::Tensor> ManagedCopy(const at::Tensor& src, int device_index);
bool IsManaged(const at::Tensor& t);
int DeviceCount();

}  // namespace lorad::cuda_bridge::device

#endif  // LORAD_CUDA_BRIDGE_DEVICE_OPS_H_
