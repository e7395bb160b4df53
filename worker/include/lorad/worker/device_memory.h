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

// Host allocations of at least kReturnedHostBlockBytes get their own
// mapping, given back to the system when freed (glibc's mmap threshold,
// fixed instead of growing with the largest block freed so far). Without
// it, freed activations stay in the heap and the process's RSS keeps a
// training job's high-water mark plus fragments, so the peak RSS on the CPU
// overshot the memory estimate by up to 80% (memory_peak_test). Call once at
// start, before other threads allocate; a no-op off glibc.
inline constexpr int kReturnedHostBlockBytes = 4 << 20;
void ReturnLargeHostBlocks();

}  // namespace lorad::worker

#endif  // LORAD_WORKER_DEVICE_MEMORY_H_
