#include "lorad/cuda_bridge/managed_memory.h"

#include "absl/strings/str_cat.h"
#include "device_ops.h"

namespace lorad::cuda_bridge {

absl::StatusOr<at::Tensor> ManagedCopy(const at::Tensor& src,
                                       int device_index) {
  if (!src.defined()) {
    return absl::InvalidArgumentError("ManagedCopy: src is undefined");
  }
  if (!device::Built()) return device::ManagedCopy(src, device_index);
  const int count = device::DeviceCount();
  if (device_index < 0 || device_index >= count) {
    return absl::InvalidArgumentError(
        absl::StrCat("ManagedCopy: device_index ", device_index,
                     " is not one of the ", count, " visible CUDA devices"));
  }
  try {
    return device::ManagedCopy(src.contiguous(), device_index);
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("ManagedCopy: ", e.what_without_backtrace()));
  }
}

bool IsManaged(const at::Tensor& t) { return device::IsManaged(t); }

}  // namespace lorad::cuda_bridge
