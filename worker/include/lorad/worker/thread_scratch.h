// Buffers that a thread keeps for the weight matrices its CPU matmuls build
// and drop (a dequantized NF4 or int8 weight). The worker gives each host
// block of 4 MiB or more a mapping of its own (device_memory.h), so a fresh
// matrix that size faults its pages in on every call; llama-100m's fp32
// training (train_bench, 2 x 128) spent about 10% of its time there.
#ifndef LORAD_WORKER_THREAD_SCRATCH_H_
#define LORAD_WORKER_THREAD_SCRATCH_H_

#include <torch/torch.h>

#include <cstdint>

namespace lorad::worker {

// The largest matrix kept; larger ones are made fresh each time.
inline constexpr int64_t kThreadScratchMaxBytes = int64_t{64} << 20;

// A thread's two buffers: the fp32 values, and their copy in the compute
// dtype.
enum class ScratchSlot { kValues = 0, kCast = 1 };

// True when a [rows, cols] `dtype` matrix on `device` should go into a
// thread buffer: on the CPU, at most kThreadScratchMaxBytes.
bool UseThreadScratch(const torch::Device& device, torch::ScalarType dtype,
                      int64_t rows, int64_t cols);

// A contiguous [rows, cols] `dtype` tensor on the CPU in the calling thread's
// buffer `slot` (grown when too small), valid until this thread's next call
// for that slot. Its values are left as they were.
torch::Tensor ThreadScratch(ScratchSlot slot, torch::ScalarType dtype,
                            int64_t rows, int64_t cols);

// `values` (fp32, from ThreadScratch(kValues, ...)) in `dtype`: `values`
// itself for fp32, else their copy in this thread's kCast buffer.
torch::Tensor CastInThreadScratch(const torch::Tensor& values,
                                  torch::ScalarType dtype);

}  // namespace lorad::worker

#endif  // LORAD_WORKER_THREAD_SCRATCH_H_
