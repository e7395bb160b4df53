// A Llama-family decoder (Llama, Mistral, Qwen2, Qwen3: RMSNorm, RoPE with
// linear / llama3 scaling, GQA, SwiGLU, optional qkv bias, Qwen3's per-head
// q/k RMSNorm, tied embeddings; Gemma 2 and 3: (1 + w) norms around
// attention and MLP, scaled embeddings, GeGLU, soft-capping, sliding-window
// layers with their own RoPE base) loaded
// from a Hugging Face directory. The block linears are frozen NF4 or
// LLM.int8 (LoadOptions::quantization); LoRA adapters are passed per call,
// so one base serves many adapters.
//
// Thread-safety: after Load the model is read-only; concurrent Forward calls
// are safe.
#ifndef LORAD_WORKER_LLAMA_MODEL_H_
#define LORAD_WORKER_LLAMA_MODEL_H_

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lorad/model/base_quantization.h"
#include "lorad/model/chat_template.h"
#include "lorad/model/model_config.h"
#include "lorad/model/tokenizer.h"
#include "lorad/worker/batched_lora.h"
#include "lorad/worker/int8_weight.h"
#include "lorad/worker/lora.h"
#include "lorad/worker/nf4_weight.h"

namespace lorad::worker {

// Keys and values of past positions, per layer [batch, kv_heads, T, head_dim].
// A cache made by LlamaModel::ReserveCache instead holds one request with
// room for `capacity` positions, [kv_heads, capacity, head_dim] per layer,
// and is for ForwardRagged only.
struct KvCache {
  std::vector<torch::Tensor> k, v;
  int64_t length = 0;
  int64_t capacity = 0;
};

// A ragged batch for serving: segment i is the next lengths[i] tokens of
// one request, continuing caches[i] (its positions start at
// caches[i]->length). Segments lie one after another in `ids`.
struct RaggedBatch {
  torch::Tensor ids;  // long [sum of lengths]
  std::vector<int64_t> lengths;
  std::vector<KvCache*> caches;       // reserved, with room for the segment
  const BatchedLora* lora = nullptr;  // per-row adapters; nullptr: base
};

// One job's rows in a forward that trains several adapters at once (jobs
// fused on one base, as mLoRA does): the next `rows` rows of the batch go
// through `adapter` (null: the base alone), with LoRA dropout when the
// forward is training and `dropout` is set.
struct AdapterRows {
  const AdapterSet* adapter = nullptr;
  int64_t rows = 0;
  bool dropout = true;
  at::Generator generator;  // its dropout masks' (undefined: the default)
  int64_t length = -1;      // its own T when padded to a longer one
};

struct ForwardOptions {
  const AdapterSet* adapter = nullptr;  // nullptr: the base alone
  bool training = false;                // LoRA dropout on
  at::Generator dropout_generator;      // `adapter`'s (undefined: default)
  bool gradient_checkpointing = false;  // recompute each block in backward
  KvCache* cache = nullptr;             // appended to when set
  // When set (and `adapter` is null), the batch's rows are cut into these
  // segments, in order, each with its own adapter; they must cover every
  // row. With gradient checkpointing it must outlive backward.
  const std::vector<AdapterRows>* row_adapters = nullptr;
  // Forward returns the last block's output [batch, T, hidden] (before the
  // final norm, in the compute dtype) instead of the logits, for
  // NextTokenNll.
  bool hidden_out = false;
};

// Past this many bytes of fp32 logits (tokens x vocab x 4), NextTokenNll
// runs the head a chunk of rows at a time, each chunk's logits at most this
// size (model::kLogitsChunkBytes unless set; 0: never chunk). Process-wide,
// for tests and benchmarks.
void SetLogitsChunkBytes(int64_t bytes);
int64_t LogitsChunkBytes();

// -log p of each next token from logits [batch, T, vocab]: position t
// predicts labels[:, t + 1]; 0 where that label is model::kIgnoreLabel.
// `reduction` at::Reduction::None gives [batch, T - 1] (fp32),
// at::Reduction::Sum their sum.
torch::Tensor NextTokenNllOfLogits(const torch::Tensor& logits,
                                   const torch::Tensor& labels,
                                   at::Reduction::Reduction reduction);

struct LoadOptions {
  bool quantize = true;  // false keeps dense weights (parity tests)
  // How the block linears are quantized when `quantize` is set.
  model::BaseQuantization quantization = model::BaseQuantization::kNf4;
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;
};

class LlamaModel {
 public:
  // Reads config.json, tokenizer.json and the safetensors weights of `dir`.
  // NotFound for a missing file, InvalidArgument for an unsupported
  // architecture or a tensor with a wrong shape or missing (named).
  static absl::StatusOr<std::unique_ptr<LlamaModel>> Load(
      const std::string& dir, const LoadOptions& options);

  // Logits (fp32, [batch, T, vocab]) for input_ids [batch, T] (int64), or
  // with options.hidden_out the hidden states before the head.
  torch::Tensor Forward(const torch::Tensor& input_ids,
                        const ForwardOptions& options) const;

  // NextTokenNllOfLogits of the logits of `hidden` (Forward with
  // hidden_out), differentiable in `hidden`. When those logits would pass
  // LogitsChunkBytes(), only the labelled positions go through the head, a
  // chunk of rows at a time, each chunk's gradient made in forward
  // (next_token_loss.cc), so the whole logits never exist; otherwise it is
  // NextTokenNllOfLogits of Head(hidden) exactly.
  torch::Tensor NextTokenNll(const torch::Tensor& hidden,
                             const torch::Tensor& labels,
                             at::Reduction::Reduction reduction) const;
  // The rows NextTokenNll puts through the head at once for a batch of
  // `tokens` positions; 0 when it makes the whole logits
  // (model::LogitsChunkRows with LogitsChunkBytes()).
  int64_t LogitsChunkRows(int64_t tokens) const;

  // Inference on a ragged batch (no autograd): appends each segment's keys
  // and values to its cache and returns the fp32 logits of each segment's
  // last token, [segments, vocab]. Each row attends only to its own cache,
  // so its result does not depend on the other rows. Throws c10::Error
  // when a cache lacks room.
  torch::Tensor ForwardRagged(const RaggedBatch& batch) const;

  // An empty cache for ForwardRagged with room for `capacity` positions.
  KvCache ReserveCache(int64_t capacity) const;

  // Writes the base with `adapter` merged in (W + scale * B A, the NF4 or
  // int8 weights dequantized) as a Hugging Face checkpoint in `dtype`
  // (kBFloat16 or kHalf) to `out_dir`: config.json (torch_dtype updated),
  // model.safetensors (sharded with an index past `max_shard_bytes`) and
  // the tokenizer files of the base. `adapter` may be null (base only).
  // Returns the bytes of weights written.
  absl::StatusOr<int64_t> ExportMerged(const AdapterSet* adapter,
                                       const std::string& out_dir,
                                       torch::ScalarType dtype,
                                       int64_t max_shard_bytes = 4LL
                                                                 << 30) const;

  // One decoder block (public for gradient checkpointing's recompute).
  torch::Tensor Block(int64_t layer, const torch::Tensor& hidden,
                      const torch::Tensor& cos, const torch::Tensor& sin,
                      const ForwardOptions& options) const;

  const model::ModelConfig& config() const { return config_; }
  const model::Tokenizer& tokenizer() const { return *tokenizer_; }
  // The directory's chat template, parsed once at Load.
  const model::ChatTemplate& chat_template() const { return chat_template_; }
  const std::string& dir() const { return dir_; }
  torch::Device device() const { return device_; }
  torch::ScalarType dtype() const { return dtype_; }
  // How the block linears are held (kNf4 also for dense test models).
  model::BaseQuantization quantization() const { return quantization_; }

  // Bytes of the quantized block linears and their bytes per parameter
  // (about 0.52 for NF4, about 1.0 for int8: CB plus an fp32 SCB per row).
  int64_t QuantizedBytes() const;
  double QuantizedBytesPerParam() const;
  // All bytes the base holds on its device.
  int64_t BaseBytes() const;

 private:
  struct Linear {
    std::string key;
    std::optional<Nf4Weight> nf4;  // at most one of nf4, int8, dense
    std::optional<Int8Weight> int8;
    torch::Tensor dense;  // [out, in] when not quantized
    torch::Tensor bias;   // may be undefined
  };
  struct Layer {
    Linear q, k, v, o, gate, up, down;
    // post_norm is post_attention_layernorm: the MLP's input norm in Llama,
    // the attention output's norm in Gemma, which adds the MLP's own two.
    torch::Tensor input_norm, post_norm;
    torch::Tensor pre_mlp_norm, post_mlp_norm;  // Gemma only
    torch::Tensor q_norm, k_norm;               // [head_dim]; Qwen3, Gemma 3
  };

  LlamaModel() = default;
  // x @ W^T through whichever form `l` holds its weight in (no bias, no
  // LoRA); the [out, in] weight itself in `dtype`; its bytes on the device.
  static torch::Tensor BaseMatMul(const Linear& l, const torch::Tensor& x);
  static torch::Tensor WeightOf(const Linear& l, torch::ScalarType dtype);
  static int64_t StorageBytes(const Linear& l);
  torch::Tensor ApplyLinear(const Linear& l, const torch::Tensor& x,
                            const ForwardOptions& options) const;
  // The LoRA update of options.row_adapters' segments for x [rows, ...]
  // (y is the base's output, for the shape of segments without weights).
  static torch::Tensor RowSegmentDelta(const Linear& l, const torch::Tensor& x,
                                       const torch::Tensor& y,
                                       const ForwardOptions& options);
  torch::Tensor ApplyLinearRagged(const Linear& l, const torch::Tensor& x,
                                  const BatchedLora* lora) const;
  torch::Tensor RaggedBlock(int64_t layer, const torch::Tensor& hidden,
                            const torch::Tensor& cos, const torch::Tensor& sin,
                            const RaggedBatch& batch) const;
  // The rest of a block once attention's output projection gave
  // `attn_out`: the residual adds, the norms and the MLP, with `linear`
  // applying one of the layer's linears (per call or ragged LoRA).
  torch::Tensor AfterAttention(
      const Layer& layer, const torch::Tensor& hidden,
      const torch::Tensor& attn_out,
      const std::function<torch::Tensor(const Linear&, const torch::Tensor&)>&
          linear) const;
  torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& w) const;
  // The gate activation of the MLP (SiLU or Gemma's GELU).
  torch::Tensor Activate(const torch::Tensor& x) const;
  // Embedding lookup (scaled for Gemma) and the final norm + head
  // (soft-capped for Gemma 2), fp32 logits.
  torch::Tensor Embed(const torch::Tensor& ids) const;
  torch::Tensor Head(const torch::Tensor& hidden) const;
  // cos and sin, [positions, head_dim], of `positions` (float, on the
  // device) under the global RoPE or, with `local`, Gemma 3's local one.
  std::pair<torch::Tensor, torch::Tensor> Rope(const torch::Tensor& positions,
                                               bool local) const;
  bool LocalRope(int64_t layer) const;
  bool Sliding(int64_t layer) const;

  model::ModelConfig config_;
  std::string dir_;
  std::unique_ptr<model::Tokenizer> tokenizer_;
  torch::Device device_ = torch::kCPU;
  torch::ScalarType dtype_ = torch::kFloat32;
  model::BaseQuantization quantization_ = model::BaseQuantization::kNf4;
  model::ChatTemplate chat_template_;
  torch::Tensor embed_, final_norm_, lm_head_, inv_freq_;
  torch::Tensor local_inv_freq_;  // Gemma 3's sliding layers; else undefined
  std::vector<Layer> layers_;
};

}  // namespace lorad::worker

#endif  // LORAD_WORKER_LLAMA_MODEL_H_
