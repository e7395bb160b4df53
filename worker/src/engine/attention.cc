#include "attention.h"

#include <cmath>
#include <limits>
#include <optional>

namespace lorad::worker {

AttentionShape LayerAttention(const model::ModelConfig& config, bool sliding,
                              int64_t past) {
  AttentionShape shape;
  shape.past = past;
  shape.window = sliding ? config.sliding_window : 0;
  if (config.query_pre_attn_scalar > 0) {
    shape.scale = 1.0 / std::sqrt(config.query_pre_attn_scalar);
  }
  shape.softcap = config.attn_logit_softcapping;
  return shape;
}

torch::Tensor CausalAttention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v,
                              const AttentionShape& shape) {
  const int64_t t = q.size(2), past = shape.past, total = k.size(2);
  // Within the window, a sliding layer attends like a global one.
  const bool windowed = shape.window > 0 && total > shape.window;
  std::optional<torch::Tensor> mask;  // true where a query sees a key
  if (windowed || (past > 0 && t > 1) || (shape.softcap > 0 && t > 1)) {
    torch::Tensor rows = torch::arange(t, torch::kLong).unsqueeze(1) + past;
    torch::Tensor cols = torch::arange(total, torch::kLong).unsqueeze(0);
    torch::Tensor m = cols <= rows;
    if (windowed) m = m.logical_and(cols > rows - shape.window);
    mask = m.to(q.device());
  }
  std::optional<double> scale;
  if (shape.scale > 0) scale = shape.scale;
  if (shape.softcap <= 0) {
    // Only a prefill without a cache needs the causal flag; a single new
    // token sees every cached one.
    const bool causal = !mask.has_value() && past == 0 && t > 1;
    return torch::scaled_dot_product_attention(q, k, v, mask, 0.0, causal,
                                               scale, /*enable_gqa=*/true);
  }
  // Soft-capped scores need the explicit form (as transformers' eager
  // attention: scores in the input dtype, softmax in fp32).
  torch::Tensor kk = k, vv = v;
  const int64_t groups = q.size(1) / k.size(1);
  if (groups > 1) {
    kk = k.repeat_interleave(groups, 1);
    vv = v.repeat_interleave(groups, 1);
  }
  const double s = scale.value_or(1.0 / std::sqrt(double(q.size(-1))));
  torch::Tensor scores = torch::matmul(q, kk.transpose(-2, -1)) * s;
  scores = torch::tanh(scores / shape.softcap) * shape.softcap;
  if (mask.has_value()) {
    scores = scores.masked_fill(mask->logical_not(),
                                -std::numeric_limits<float>::infinity());
  }
  torch::Tensor probs =
      torch::softmax(scores, -1, torch::kFloat32).to(q.scalar_type());
  return torch::matmul(probs, vv);
}

}  // namespace lorad::worker
