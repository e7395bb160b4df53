// CUDA managed (unified) memory for tensors that may move to host memory
// when the device runs short, as paged optimizers keep their state: the
// driver migrates pages to whichever processor touches them and evicts them
// to host memory under device-memory pressure, so an oversubscribed device
// slows down instead of failing an allocation.
//
// Builds without the CUDA kernels answer UnimplementedError. Thread-safe.
#ifndef LORAD_CUDA_BRIDGE_MANAGED_MEMORY_H_
#define LORAD_CUDA_BRIDGE_MANAGED_MEMORY_H_

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"

namespace lorad::cuda_bridge {

// A contiguous copy of `src` (any device) in managed memory that reports
// itself as a tensor on CUDA device `device_index`; freed with the tensor.
// InvalidArgument for a negative or unknown device, ResourceExhausted when
// the allocation fails, Unimplemented in builds without CUDA.
absl::StatusOr<at::Tensor> ManagedCopy(const at::Tensor& src, int device_index);

// Whether `t`'s data lies in CUDA managed memory (false in builds without
// CUDA and for CPU tensors).
bool IsManaged(const at::Tensor& t);

}  // namespace lorad::cuda_bridge

#endif  // LORAD_CUDA_BRIDGE_MANAGED_MEMORY_H_
