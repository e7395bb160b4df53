#include "lorad/worker/thread_scratch.h"

#include <torch/torch.h>

#include <array>

namespace lorad::worker {

bool UseThreadScratch(const torch::Device& device, torch::ScalarType dtype,
                      int64_t rows, int64_t cols) {
  return device.is_cpu() &&
         rows * cols * static_cast<int64_t>(c10::elementSize(dtype)) <=
             kThreadScratchMaxBytes;
}

torch::Tensor ThreadScratch(ScratchSlot slot, torch::ScalarType dtype,
                            int64_t rows, int64_t cols) {
  thread_local std::array<torch::Tensor, 2> buffers;
  torch::Tensor& buffer = buffers[static_cast<size_t>(slot)];
  const int64_t n = rows * cols;
  if (!buffer.defined() || buffer.scalar_type() != dtype ||
      buffer.numel() < n) {
    buffer = torch::Tensor();  // the old one goes before the new comes
    buffer = torch::empty({n}, torch::TensorOptions().dtype(dtype));
  }
  return buffer.narrow(0, 0, n).view({rows, cols});
}

torch::Tensor CastInThreadScratch(const torch::Tensor& values,
                                  torch::ScalarType dtype) {
  if (dtype == values.scalar_type()) return values;
  torch::Tensor cast =
      ThreadScratch(ScratchSlot::kCast, dtype, values.size(0), values.size(1));
  cast.copy_(values);
  return cast;
}

}  // namespace lorad::worker
