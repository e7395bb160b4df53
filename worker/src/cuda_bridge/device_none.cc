// The bridge's device path in builds without the CUDA kernels.
#include <string>

#include "device_ops.h"

namespace lorad::cuda_bridge::device {
namespace {

absl::Status NotBuilt(const char* op) {
  return absl::UnimplementedError(
      std::string(op) +
      ": this lorad was built without CUDA kernels (no CUDA toolkit, or a "
      "LibTorch without CUDA); use CPU tensors");
}

}  // namespace

bool Built() { return false; }
bool Available() { return false; }

absl::Status Nf4Dequantize(const Nf4Tensors&, at::Tensor&) {
  return NotBuilt("Nf4DequantizeBf16");
}
absl::Status Nf4Gemv(const at::Tensor&, const Nf4Tensors&, at::Tensor&) {
  return NotBuilt("Nf4Gemv");
}
absl::Status Bgmv(at::Tensor&, const at::Tensor&,
                  const std::vector<LoraTensors>&, const at::Tensor&) {
  return NotBuilt("LoraBgmv");
}
absl::Status Sgmv(at::Tensor&, const at::Tensor&,
                  const std::vector<LoraTensors>&, const std::vector<int32_t>&,
                  const std::vector<int32_t>&) {
  return NotBuilt("LoraSgmv");
}
absl::Status RmsNorm(const at::Tensor&, const at::Tensor&, float, at::Tensor&) {
  return NotBuilt("RmsNorm");
}

absl::StatusOr<at::Tensor> ManagedCopy(const at::Tensor&, int) {
  return NotBuilt("ManagedCopy");
}
bool IsManaged(const at::Tensor&) { return false; }
int DeviceCount() { return 0; }

}  // namespace lorad::cuda_bridge::device
