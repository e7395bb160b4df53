// The models the benchmarks run on, by name: "tiny" (the built-in model)
// and "llama-100m", a ~100M-parameter Llama (12 layers, hidden 768, GQA
// 12/4, SwiGLU 2048, 32000-entry vocab) with random weights from a fixed
// seed and the tiny model's byte-level tokenizer; "llama-100m-v128k", the
// same with Llama 3's 128256-entry vocabulary (where the head and its
// logits weigh as much as the blocks). Every benchmark that names a model
// gets the same weights, written once under the cache dir.
#ifndef LORAD_BENCH_BENCH_MODELS_H_
#define LORAD_BENCH_BENCH_MODELS_H_

#include <string>

#include "absl/status/statusor.h"
#include "lorad/internal/worker/v1/worker.pb.h"

namespace lorad::bench {

// The model directory for `model` under `cache_dir`, written on first use.
absl::StatusOr<std::string> BenchModelDir(const std::string& model,
                                          const std::string& cache_dir);

// The training settings every training benchmark shares: LoRA on all seven
// linears of each block without dropout, packed sequences of `seq_len`,
// `batch` per micro-batch and no accumulation, a constant learning rate,
// `steps` optimizer steps, no checkpoints. Rank, alpha, rate and seed are
// the caller's.
void SetBenchTraining(int steps, int batch, int seq_len,
                      bool gradient_checkpointing,
                      const std::string& compute_dtype,
                      lorad::worker::v1::TrainConfig* hp);

}  // namespace lorad::bench

#endif  // LORAD_BENCH_BENCH_MODELS_H_
