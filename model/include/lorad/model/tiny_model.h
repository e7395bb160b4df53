// The built-in `tiny` model: a small Llama with a byte-level tokenizer,
// random-initialised from a fixed seed and written as a real Hugging Face
// directory (config.json, model.safetensors, tokenizer.json), so it goes
// through the same loader as any other model and HF transformers loads it.
#ifndef LORAD_MODEL_TINY_MODEL_H_
#define LORAD_MODEL_TINY_MODEL_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "lorad/model/model_config.h"

namespace lorad::model {

inline constexpr char kTinyModelName[] = "tiny";

// The tiny model's architecture (vocab = 256 bytes + 3 special tokens).
ModelConfig TinyModelConfig();

// Writes a Llama directory for `config` with random weights (linears
// N(0, 1/in), embeddings N(0, 1), head N(0, 16/hidden), norms 1, biases
// N(0, 0.02)) drawn by a generator seeded with `seed`, and the byte-level
// tokenizer.
// The same seed always gives the same bytes. Written atomically file by file.
absl::Status WriteRandomLlama(const std::string& dir, const ModelConfig& config,
                              uint64_t seed);

// Resolves a model argument to a directory: "tiny" (or "") becomes
// <cache_dir>/tiny, written on first use; anything else is returned as is.
// Safe to call from many threads and processes at once: one writes (under
// an exclusive lock on <cache_dir>/tiny.lock), the others wait for it.
absl::StatusOr<std::string> ResolveModelDir(const std::string& model,
                                            const std::string& cache_dir);

// The config of a model argument without touching the disk for "tiny" (or
// ""): TinyModelConfig(); anything else is ModelConfig::FromDir (NotFound /
// InvalidArgument as it says).
absl::StatusOr<ModelConfig> ModelConfigOf(const std::string& model);

}  // namespace lorad::model

#endif  // LORAD_MODEL_TINY_MODEL_H_
