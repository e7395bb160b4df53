#include "lorad/worker/intra_op_threads.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>

namespace lorad::worker {
namespace {

std::atomic<int> g_max_threads{0};
std::atomic<int64_t> g_parallel_gemm_macs{kParallelGemmMacs};

}  // namespace

int MaxIntraOpThreads() {
  int n = g_max_threads.load();
  if (n > 0) return n;
  // First use: LibTorch's count before any ScopedIntraOpThreads changed
  // one (each of those asks here first).
  int expected = 0;
  g_max_threads.compare_exchange_strong(expected,
                                        std::max(1, at::get_num_threads()));
  return g_max_threads.load();
}

void SetMaxIntraOpThreads(int n) { g_max_threads.store(std::max(1, n)); }

int64_t ParallelGemmMacs() { return g_parallel_gemm_macs.load(); }

void SetParallelGemmMacs(int64_t macs) {
  g_parallel_gemm_macs.store(std::max<int64_t>(0, macs));
}

int IntraOpThreadsFor(const model::ModelConfig& c, int64_t tokens) {
  const int max_threads = MaxIntraOpThreads();
  const int64_t widest = std::max(c.hidden_size, c.intermediate_size);
  const int64_t other = std::min(c.hidden_size, c.intermediate_size);
  // Saturates rather than overflows for absurd sizes.
  const double macs = static_cast<double>(tokens) *
                      static_cast<double>(widest) * static_cast<double>(other);
  return macs < static_cast<double>(ParallelGemmMacs()) ? 1 : max_threads;
}

ScopedIntraOpThreads::ScopedIntraOpThreads(int n) {
  if (n < 1) return;
  MaxIntraOpThreads();  // fixes the maximum before any count changes
  const int current = at::get_num_threads();
  if (current == n) return;
  previous_ = current;
  at::set_num_threads(n);
}

ScopedIntraOpThreads::~ScopedIntraOpThreads() {
  if (previous_ > 0) at::set_num_threads(previous_);
}

}  // namespace lorad::worker
