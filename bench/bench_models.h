// The models the benchmarks run on, by name: "tiny" (the built-in model)
// and "llama-100m", a ~100M-parameter Llama (12 layers, hidden 768, GQA
// 12/4, SwiGLU 2048, 32000-entry vocab) with random weights from a fixed
// seed and the tiny model's byte-level tokenizer. Every benchmark that
// names a model gets the same weights, written once under the cache dir.
#ifndef LORAD_BENCH_BENCH_MODELS_H_
#define LORAD_BENCH_BENCH_MODELS_H_

#include <string>

#include "absl/status/statusor.h"

namespace lorad::bench {

// The model directory for `model` under `cache_dir`, written on first use.
absl::StatusOr<std::string> BenchModelDir(const std::string& model,
                                          const std::string& cache_dir);

}  // namespace lorad::bench

#endif  // LORAD_BENCH_BENCH_MODELS_H_
