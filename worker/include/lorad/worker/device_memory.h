// Memory in use by this process on its device (host memory on CPU).
#ifndef LORAD_WORKER_DEVICE_MEMORY_H_
#define LORAD_WORKER_DEVICE_MEMORY_H_

#include <torch/torch.h>

#include "lorad/internal/worker/v1/worker.pb.h"

namespace lorad::worker {

// used/peak: the allocator's allocated bytes on CUDA, RSS / peak RSS on CPU;
// total: device memory or MemTotal; the allocator_* fields from LibTorch's
// device allocator (zero on CPU). Never throws: an allocator that cannot
// answer leaves its fields zero.
lorad::worker::v1::MemoryUsage CurrentMemoryUsage(const torch::Device& device);

// Peak since the last reset (CUDA) or since the process started (CPU).
int64_t PeakMemoryBytes(const torch::Device& device);

}  // namespace lorad::worker

#endif  // LORAD_WORKER_DEVICE_MEMORY_H_
