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

// The same with Llama 3's vocabulary (128256 tokens): a head and logits
// that weigh as much as the blocks.
model::ModelConfig Llama100MV128kConfig() {
  model::ModelConfig c = Llama100MConfig();
  c.vocab_size = 128256;
  return c;
}

}  // namespace

absl::StatusOr<std::string> BenchModelDir(const std::string& model,
                                          const std::string& cache_dir) {
  model::ModelConfig config;
  if (model == "llama-100m") {
    config = Llama100MConfig();
  } else if (model == "llama-100m-v128k") {
    config = Llama100MV128kConfig();
  } else {
    return model::ResolveModelDir(model, cache_dir);
  }
  const std::string dir = cache_dir + "/" + model;
  if (!std::filesystem::exists(dir + "/model.safetensors")) {
    absl::Status s = model::WriteRandomLlama(dir, config, 1234);
    if (!s.ok()) return s;
  }
  return dir;
}

void SetBenchTraining(int steps, int batch, int seq_len,
                      bool gradient_checkpointing,
                      const std::string& compute_dtype,
                      lorad::worker::v1::TrainConfig* hp) {
  hp->set_dropout(0);
  for (const char* m : {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                        "up_proj", "down_proj"}) {
    hp->add_target_modules(m);
  }
  hp->set_max_steps(steps);
  hp->set_epochs(1000);
  hp->set_batch_size(batch);
  hp->set_gradient_accumulation(1);
  hp->set_max_grad_norm(1.0f);
  hp->set_lr_scheduler("constant");
  hp->set_max_seq_len(seq_len);
  hp->set_packing(true);
  hp->set_gradient_checkpointing(gradient_checkpointing);
  hp->set_checkpoint_every(1 << 30);
  hp->set_compute_dtype(compute_dtype);
}

}  // namespace lorad::bench
