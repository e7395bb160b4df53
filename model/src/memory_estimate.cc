#include "lorad/model/memory_estimate.h"

namespace lorad::model {
namespace {

// bitsandbytes' NF4 layout with double quantization: one absmax per 64
// weights, one fp32 scale per 256 absmax codes (8-bit).
constexpr int64_t kNf4BlockSize = 64;
constexpr int64_t kNf4AbsmaxBlockSize = 256;

}  // namespace

double Nf4BytesPerParam() {
  return 0.5 + 1.0 / kNf4BlockSize +
         4.0 / static_cast<double>(kNf4BlockSize * kNf4AbsmaxBlockSize);
}

int64_t NumLoraParameters(const ModelConfig& c, const TrainingShape& t) {
  const int64_t h = c.hidden_size, q = c.num_attention_heads * c.head_dim,
                kv = c.num_key_value_heads * c.head_dim,
                inter = c.intermediate_size, r = t.rank;
  int64_t per_layer = 0;
  if (t.q) per_layer += r * (h + q);
  if (t.k) per_layer += r * (h + kv);
  if (t.v) per_layer += r * (h + kv);
  if (t.o) per_layer += r * (q + h);
  if (t.gate) per_layer += r * (h + inter);
  if (t.up) per_layer += r * (h + inter);
  if (t.down) per_layer += r * (inter + h);
  return per_layer * c.num_hidden_layers;
}

MemoryEstimateBytes EstimateTrainingMemory(const ModelConfig& c,
                                           const TrainingShape& t) {
  MemoryEstimateBytes m;
  const int64_t embed = c.vocab_size * c.hidden_size;
  const int64_t norms = (2 * c.num_hidden_layers + 1) * c.hidden_size;
  m.base =
      static_cast<int64_t>(c.NumBlockLinearParameters() * Nf4BytesPerParam()) +
      (embed * (c.tie_word_embeddings ? 1 : 2) + norms) * t.compute_bytes;
  const int64_t lora = NumLoraParameters(c, t);
  m.adapter = lora * 4;
  m.gradients = lora * 4;
  m.optimizer = lora * 8;

  const int64_t tokens = t.batch_size * t.seq_len;
  const int64_t h = c.hidden_size, q = c.num_attention_heads * c.head_dim,
                kv = c.num_key_value_heads * c.head_dim,
                inter = c.intermediate_size;
  // Elements saved per token inside one block.
  const int64_t block_elems = 2 * h         // two RMSNorm inputs
                              + 2 * h       // normed inputs (qkv, mlp)
                              + q + 2 * kv  // q, k, v
                              + 2 * q       // rotated q, attention output
                              + 3 * inter   // gate, up, silu(gate)*up
                              + 7 * t.rank  // LoRA A outputs
                              + c.num_attention_heads * t.seq_len;  // probs
  const int64_t block_bytes = tokens * block_elems * t.compute_bytes;
  const int64_t logits_bytes = tokens * c.vocab_size * 4 * 2;
  const int64_t hidden_bytes = tokens * h * t.compute_bytes;
  m.activations_no_checkpoint =
      c.num_hidden_layers * block_bytes + logits_bytes + hidden_bytes;
  m.activations_checkpoint =
      c.num_hidden_layers * hidden_bytes + block_bytes + logits_bytes;
  m.activations = t.gradient_checkpointing ? m.activations_checkpoint
                                           : m.activations_no_checkpoint;
  m.total = m.base + m.adapter + m.gradients + m.optimizer + m.activations;
  return m;
}

}  // namespace lorad::model
