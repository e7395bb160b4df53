// The built-in tiny model for worker tests: a fresh directory per test with
// the model written under it and loaded.
#ifndef LORAD_TESTS_UNIT_TINY_MODEL_UTIL_H_
#define LORAD_TESTS_UNIT_TINY_MODEL_UTIL_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "lorad/model/tiny_model.h"
#include "lorad/worker/llama_model.h"
#include "test_dir.h"

namespace lorad::worker {

// Writes the tiny model under <root>/models (once) and loads it.
inline absl::StatusOr<std::unique_ptr<LlamaModel>> LoadTinyModel(
    const std::string& root) {
  auto dir = model::ResolveModelDir("tiny", root + "/models");
  if (!dir.ok()) return dir.status();
  return LlamaModel::Load(*dir, LoadOptions());
}

// Sets LogitsChunkBytes() (llama_model.h) while it lives, then puts back
// what was there, whatever way the test leaves.
class ScopedLogitsChunkBytes {
 public:
  explicit ScopedLogitsChunkBytes(int64_t bytes) : saved_(LogitsChunkBytes()) {
    SetLogitsChunkBytes(bytes);
  }
  ~ScopedLogitsChunkBytes() { SetLogitsChunkBytes(saved_); }
  ScopedLogitsChunkBytes(const ScopedLogitsChunkBytes&) = delete;
  ScopedLogitsChunkBytes& operator=(const ScopedLogitsChunkBytes&) = delete;

 private:
  const int64_t saved_;
};

}  // namespace lorad::worker

#endif  // LORAD_TESTS_UNIT_TINY_MODEL_UTIL_H_
