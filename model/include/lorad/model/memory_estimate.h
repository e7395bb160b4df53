// Estimates a fine-tune job's peak memory before it runs, from the model
// config and the job's hyper-parameters, so a job that cannot fit is refused
// up front and the measured peak can be shown beside the estimate; and the
// KV cache a generation reserves. Pure functions of their arguments.
#ifndef LORAD_MODEL_MEMORY_ESTIMATE_H_
#define LORAD_MODEL_MEMORY_ESTIMATE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lorad/model/base_quantization.h"
#include "lorad/model/block_linears.h"
#include "lorad/model/model_config.h"

namespace lorad::model {

// Past this many bytes of fp32 logits (tokens x vocab x 4), training runs
// the head and its loss a chunk of rows at a time, never holding more than
// this much of logits (LlamaModel::NextTokenNll).
inline constexpr int64_t kLogitsChunkBytes = 32 << 20;

// The rows of logits training makes at once for a micro-batch of `tokens`
// positions over `vocab_size`, with chunks of at most `chunk_bytes` of fp32
// logits; 0 when the whole logits fit in one (or chunk_bytes <= 0): the
// worker's rule (LlamaModel::LogitsChunkRows) and the estimate's.
int64_t LogitsChunkRows(int64_t tokens, int64_t vocab_size,
                        int64_t chunk_bytes);

struct TrainingShape {
  int64_t rank = 8;
  // The block linears that carry LoRA, by short name (names that are none
  // count for nothing).
  std::vector<std::string> target_modules{kBlockLinearNames.begin(),
                                          kBlockLinearNames.end()};
  int64_t batch_size = 4;
  int64_t seq_len = 512;
  bool gradient_checkpointing = false;
  int64_t compute_bytes = 4;  // 4 for fp32, 2 for bf16
  // adamw_8bit: tensors of at least kMin8BitStateElements keep their two
  // moments in 8 bits with an fp32 absmax per 256 (bitsandbytes' layout).
  bool optimizer_8bit = false;
  // paged_adamw / paged_adamw_8bit: the optimizer state may move to host
  // memory under device-memory pressure.
  bool optimizer_paged = false;
  // DPO: each of batch_size examples is a pair, two sequences of up to
  // seq_len in one forward. Its reference forward (the base alone, no
  // gradient) runs and is freed before the policy's, so it adds nothing to
  // the peak.
  bool preference = false;
  // How the frozen block linears are held (NF4, or int8 with an fp32 SCB
  // per output row).
  BaseQuantization base_quantization = BaseQuantization::kNf4;
  // The worker's LogitsChunkBytes() (0: the whole logits at once).
  int64_t logits_chunk_bytes = kLogitsChunkBytes;
};

// optimizer_8bit and optimizer_paged of `shape` from an optimizer's name:
// adamw, adamw_8bit, paged_adamw or paged_adamw_8bit (the job option).
void SetOptimizer(std::string_view optimizer, TrainingShape* shape);

inline constexpr int64_t kMin8BitStateElements = 4096;

struct MemoryEstimateBytes {
  int64_t base = 0;     // NF4/int8 block linears + 16/32-bit embeddings, norms
  int64_t adapter = 0;  // LoRA A and B (fp32)
  int64_t gradients = 0;  // one fp32 gradient per adapter parameter
  int64_t optimizer = 0;  // AdamW's two moments per adapter parameter
  // Of `optimizer`, what a paged optimizer may move to host memory. `total`
  // counts it (the peak with everything on the device); the device needs
  // at least total - pageable.
  int64_t pageable = 0;
  int64_t activations_no_checkpoint = 0;
  int64_t activations_checkpoint = 0;
  int64_t activations = 0;  // the one that applies to this job
  int64_t total = 0;
};

// Bytes the NF4 double-quantized state takes per parameter (codes plus
// statistics): 0.5 + 1/64 + 4/(64*256).
double Nf4BytesPerParam();

int64_t NumLoraParameters(const ModelConfig& config, const TrainingShape& t);

// Activation model (per token, per block, elements): the saved inputs of the
// 7 linears and their LoRA paths, RMSNorm inputs, q/k/v after RoPE, the
// attention output, SwiGLU intermediates (3 x intermediate), plus the
// attention probabilities (heads x seq); logits and their gradient
// (2 x vocab, fp32) once. With checkpointing only each block's input is kept
// and one block is live again during its recompute.
MemoryEstimateBytes EstimateTrainingMemory(const ModelConfig& config,
                                           const TrainingShape& t);

// Bytes the block linears take held as LLM.int8 (bitsandbytes'
// Int8Params): one int8 per weight plus an fp32 absmax per output row.
int64_t Int8BlockLinearBytes(const ModelConfig& config);

// Bytes of the frozen base as the worker holds it: the block linears in
// NF4 (or int8) plus embeddings (and an untied head) and norms in
// `compute_bytes` per element.
int64_t BaseModelBytes(const ModelConfig& config, int64_t compute_bytes,
                       BaseQuantization quantization = BaseQuantization::kNf4);

// Bytes of a KV cache for `tokens` positions: keys and values of every
// layer, 2 x layers x kv_heads x head_dim x compute_bytes x tokens.
int64_t KvCacheBytes(const ModelConfig& config, int64_t tokens,
                     int64_t compute_bytes);

}  // namespace lorad::model

#endif  // LORAD_MODEL_MEMORY_ESTIMATE_H_
