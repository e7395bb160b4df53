// How many threads LibTorch's CPU ops use, chosen by the size of the work.
//
// LibTorch runs a CPU op on all its intra-op threads (OpenMP) once the op
// is big enough for its own rule, and many ops (softmax rows, index ops,
// copies) split from a grain of one. For a small model every such op then
// wakes and waits for the other threads: on the 2-core machine, with
// OpenMP's passive wait (worker_main.cc), the tiny model's training step
// spent most of its time in futex wake-ups, and one thread ran it 5x
// faster (fused_train_bench --model=tiny --batch=1 --seq=32 --threads=1).
// Big GEMMs still gain from every thread (llama-100m at 4 x 128 tokens:
// 1.9x with two threads over one). So each training thread picks its
// count from the widest GEMM it will run.
//
// The count is the calling thread's own (OpenMP's and MKL's settings are
// per thread), so jobs, passes and serving each keep theirs.
#ifndef LORAD_WORKER_INTRA_OP_THREADS_H_
#define LORAD_WORKER_INTRA_OP_THREADS_H_

#include <cstdint>

#include "lorad/model/model_config.h"

namespace lorad::worker {

// The most intra-op threads any work uses: LibTorch's count when first
// asked, or what SetMaxIntraOpThreads set (lorad-worker's --threads).
int MaxIntraOpThreads();
void SetMaxIntraOpThreads(int n);  // n >= 1

// Below this many multiply-adds in the widest GEMM of a pass (tokens x
// hidden_size x intermediate_size), one thread runs the pass faster than
// several on the CPU (measured on 2 cores: llama-100m at 64 tokens ran
// 1.1x faster on one thread, at 256 tokens 1.5x slower).
inline constexpr int64_t kParallelGemmMacs = int64_t{1} << 27;
// The threshold in use (benchmarks compare: 0 gives every pass all threads).
int64_t ParallelGemmMacs();
void SetParallelGemmMacs(int64_t macs);

// Intra-op threads for a forward and backward of `tokens` tokens (rows x
// positions) through a model of config `c` on the CPU: 1 below
// ParallelGemmMacs(), else MaxIntraOpThreads().
int IntraOpThreadsFor(const model::ModelConfig& c, int64_t tokens);

// Sets the calling thread's intra-op threads for its lifetime (n < 1: no
// change), then restores the count it found.
class ScopedIntraOpThreads {
 public:
  explicit ScopedIntraOpThreads(int n);
  ~ScopedIntraOpThreads();
  ScopedIntraOpThreads(const ScopedIntraOpThreads&) = delete;
  ScopedIntraOpThreads& operator=(const ScopedIntraOpThreads&) = delete;

 private:
  int previous_ = 0;  // 0: nothing to restore
};

}  // namespace lorad::worker

#endif  // LORAD_WORKER_INTRA_OP_THREADS_H_
