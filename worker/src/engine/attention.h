// Causal attention shared by LlamaModel's training/forward path and its
// ragged serving path: plain, over a sliding window, and with Gemma 2's
// soft-capped scores.
#ifndef LORAD_WORKER_SRC_ENGINE_ATTENTION_H_
#define LORAD_WORKER_SRC_ENGINE_ATTENTION_H_

#include <torch/torch.h>

#include <cstdint>

#include "lorad/model/model_config.h"

namespace lorad::worker {

struct AttentionShape {
  int64_t past = 0;    // cached positions before the new ones
  int64_t window = 0;  // > 0: attend to the last `window` positions only
  double scale = 0;    // score scale; 0: head_dim^-0.5
  double softcap = 0;  // > 0: scores = softcap * tanh(scores / softcap)
};

// The attention of `config`'s layers after `past` cached positions: the
// window when the layer slides, Gemma's query scale and soft-cap.
AttentionShape LayerAttention(const model::ModelConfig& config, bool sliding,
                              int64_t past);

// q [b, heads, t, d] holds the queries of positions past .. past+t-1; k and
// v [b, kv_heads, past+t, d] the keys and values of positions 0 .. past+t-1
// (heads a multiple of kv_heads). Position p sees key j when j <= p and,
// with a window, j > p - window (transformers' sliding-window mask).
// Returns [b, heads, t, d]; differentiable.
torch::Tensor CausalAttention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v,
                              const AttentionShape& shape);

}  // namespace lorad::worker

#endif  // LORAD_WORKER_SRC_ENGINE_ATTENTION_H_
