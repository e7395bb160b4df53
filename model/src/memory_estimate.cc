#include "lorad/model/memory_estimate.h"

#include <algorithm>

namespace lorad::model {
namespace {

// bitsandbytes' NF4 layout with double quantization: one absmax per 64
// weights, one fp32 scale per 256 absmax codes (8-bit).
constexpr int64_t kNf4BlockSize = 64;
constexpr int64_t kNf4AbsmaxBlockSize = 256;

}  // namespace

void SetOptimizer(std::string_view optimizer, TrainingShape* shape) {
  shape->optimizer_paged = optimizer.starts_with("paged_");
  shape->optimizer_8bit = optimizer.ends_with("_8bit");
}

double Nf4BytesPerParam() {
  return 0.5 + 1.0 / kNf4BlockSize +
         4.0 / static_cast<double>(kNf4BlockSize * kNf4AbsmaxBlockSize);
}

int64_t NumLoraParameters(const ModelConfig& c, const TrainingShape& t) {
  int64_t per_layer = 0;
  for (const BlockLinear& l : BlockLinears(c)) {
    if (std::find(t.target_modules.begin(), t.target_modules.end(), l.name) !=
        t.target_modules.end()) {
      per_layer += t.rank * (l.in + l.out);
    }
  }
  return per_layer * c.num_hidden_layers;
}

namespace {

// AdamW's state for the adapter: two fp32 moments per parameter, or with
// the 8-bit optimizer two bytes plus two fp32 absmax per 256-element block
// for each tensor (A is rank x in, B out x rank) big enough to be quantized.
int64_t OptimizerBytes(const ModelConfig& c, const TrainingShape& t) {
  auto tensor = [&t](int64_t n) -> int64_t {
    if (!t.optimizer_8bit || n < kMin8BitStateElements) return n * 8;
    return n * 2 + (n + 255) / 256 * 8;
  };
  int64_t per_layer = 0;
  for (const BlockLinear& l : BlockLinears(c)) {
    if (std::find(t.target_modules.begin(), t.target_modules.end(), l.name) !=
        t.target_modules.end()) {
      per_layer += tensor(t.rank * l.in) + tensor(l.out * t.rank);
    }
  }
  return per_layer * c.num_hidden_layers;
}

}  // namespace

int64_t Int8BlockLinearBytes(const ModelConfig& c) {
  int64_t per_layer = 0;
  for (const BlockLinear& l : BlockLinears(c)) per_layer += l.out * (l.in + 4);
  return per_layer * c.num_hidden_layers;
}

int64_t BaseModelBytes(const ModelConfig& c, int64_t compute_bytes,
                       BaseQuantization quantization) {
  const int64_t embed = c.vocab_size * c.hidden_size;
  const int64_t norms = (2 * c.num_hidden_layers + 1) * c.hidden_size;
  const int64_t linears =
      quantization == BaseQuantization::kInt8
          ? Int8BlockLinearBytes(c)
          : static_cast<int64_t>(c.NumBlockLinearParameters() *
                                 Nf4BytesPerParam());
  return linears +
         (embed * (c.tie_word_embeddings ? 1 : 2) + norms) * compute_bytes;
}

int64_t KvCacheBytes(const ModelConfig& c, int64_t tokens,
                     int64_t compute_bytes) {
  return 2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim *
         compute_bytes * tokens;
}

int64_t LogitsChunkRows(int64_t tokens, int64_t vocab_size,
                        int64_t chunk_bytes) {
  const int64_t row_bytes = vocab_size * 4;
  if (chunk_bytes <= 0 || tokens * row_bytes <= chunk_bytes) return 0;
  return std::max<int64_t>(1, chunk_bytes / row_bytes);
}

MemoryEstimateBytes EstimateTrainingMemory(const ModelConfig& c,
                                           const TrainingShape& t) {
  MemoryEstimateBytes m;
  m.base = BaseModelBytes(c, t.compute_bytes, t.base_quantization);
  const int64_t lora = NumLoraParameters(c, t);
  m.adapter = lora * 4;
  m.gradients = lora * 4;
  m.optimizer = OptimizerBytes(c, t);
  m.pageable = t.optimizer_paged ? m.optimizer : 0;

  const int64_t tokens = t.batch_size * (t.preference ? 2 : 1) * t.seq_len;
  const int64_t h = c.hidden_size, q = c.num_attention_heads * c.head_dim,
                kv = c.num_key_value_heads * c.head_dim,
                inter = c.intermediate_size;
  // Elements saved per token inside one block.
  const int64_t block_elems = 2 * h         // two RMSNorm inputs
                              + 2 * h       // normed inputs (qkv, mlp)
                              + q + 2 * kv  // q, k, v
                              + 2 * q       // rotated q, attention output
                              + 3 * inter   // gate, up, silu(gate)*up
                              + kNumBlockLinears * t.rank  // LoRA A outputs
                              + c.num_attention_heads * t.seq_len;  // probs
  const int64_t block_bytes = tokens * block_elems * t.compute_bytes;
  const int64_t hidden_bytes = tokens * h * t.compute_bytes;
  // The fp32 logits and their log-softmax; chunked (past
  // logits_chunk_bytes), three chunks' worth of logits (a chunk, its
  // exponent and its gradient's copy) and three of the labelled rows'
  // hidden states (picked, normed, and the rows' gradient kept for
  // backward).
  const int64_t row_bytes = c.vocab_size * 4;
  const int64_t chunk_rows =
      LogitsChunkRows(tokens, c.vocab_size, t.logits_chunk_bytes);
  const int64_t logits_bytes =
      chunk_rows == 0 ? tokens * row_bytes * 2
                      : 3 * chunk_rows * row_bytes + 3 * hidden_bytes;
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
