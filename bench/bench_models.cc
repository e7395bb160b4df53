#include "bench_models.h"

#include <filesystem>

#include "lorad/model/model_config.h"
#include "lorad/model/tiny_model.h"

namespace lorad::bench {
namespace {

model::ModelConfig Llama100MConfig() {
  model::ModelConfig c = model::TinyModelConfig();
  c.vocab_size = 32000;
  c.hidden_size = 768;
  c.intermediate_size = 2048;
  c.num_hidden_layers = 12;
  c.num_attention_heads = 12;
  c.num_key_value_heads = 4;
  c.head_dim = 64;
  c.max_position_embeddings = 4096;
  return c;
}

}  // namespace

absl::StatusOr<std::string> BenchModelDir(const std::string& model,
                                          const std::string& cache_dir) {
  if (model != "llama-100m") return model::ResolveModelDir(model, cache_dir);
  const std::string dir = cache_dir + "/llama-100m";
  if (!std::filesystem::exists(dir + "/model.safetensors")) {
    absl::Status s = model::WriteRandomLlama(dir, Llama100MConfig(), 1234);
    if (!s.ok()) return s;
  }
  return dir;
}

}  // namespace lorad::bench
