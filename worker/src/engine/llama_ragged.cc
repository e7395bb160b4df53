// LlamaModel's serving path: ragged batches over per-request KV caches.
#include <tuple>
#include <vector>

#include "attention.h"
#include "lorad/worker/llama_model.h"

namespace lorad::worker {
namespace {

torch::Tensor RotateHalf(const torch::Tensor& x) {
  auto halves = x.chunk(2, -1);
  return torch::cat({-halves[1], halves[0]}, -1);
}

}  // namespace

KvCache LlamaModel::ReserveCache(int64_t capacity) const {
  KvCache cache;
  cache.capacity = capacity;
  auto opts = torch::TensorOptions().dtype(dtype_).device(device_);
  for (size_t i = 0; i < layers_.size(); ++i) {
    cache.k.push_back(torch::empty(
        {config_.num_key_value_heads, capacity, config_.head_dim}, opts));
    cache.v.push_back(torch::empty(
        {config_.num_key_value_heads, capacity, config_.head_dim}, opts));
  }
  return cache;
}

torch::Tensor LlamaModel::ApplyLinearRagged(const Linear& l,
                                            const torch::Tensor& x,
                                            const BatchedLora* lora) const {
  torch::Tensor y = BaseMatMul(l, x);
  if (l.bias.defined()) y = y + l.bias;
  if (lora != nullptr) {
    auto it = lora->modules.find(l.key);
    if (it != lora->modules.end()) lora->backend->AddDelta(x, it->second, y);
  }
  return y;
}

torch::Tensor LlamaModel::RaggedBlock(int64_t index,
                                      const torch::Tensor& hidden,
                                      const torch::Tensor& cos,
                                      const torch::Tensor& sin,
                                      const RaggedBatch& batch) const {
  const Layer& layer = layers_[index];
  const model::ModelConfig& c = config_;
  const int64_t n = hidden.size(0);
  torch::Tensor x = RmsNorm(hidden, layer.input_norm);
  torch::Tensor q = ApplyLinearRagged(layer.q, x, batch.lora)
                        .view({n, c.num_attention_heads, c.head_dim});
  torch::Tensor k = ApplyLinearRagged(layer.k, x, batch.lora)
                        .view({n, c.num_key_value_heads, c.head_dim});
  if (c.qk_norm) {
    q = RmsNorm(q, layer.q_norm);
    k = RmsNorm(k, layer.k_norm);
  }
  torch::Tensor v = ApplyLinearRagged(layer.v, x, batch.lora)
                        .view({n, c.num_key_value_heads, c.head_dim});
  q = q * cos + RotateHalf(q) * sin;
  k = k * cos + RotateHalf(k) * sin;
  std::vector<torch::Tensor> outs;
  outs.reserve(batch.lengths.size());
  int64_t start = 0;
  for (size_t s = 0; s < batch.lengths.size(); ++s) {
    const int64_t t = batch.lengths[s];
    KvCache& cache = *batch.caches[s];
    const int64_t past = cache.length;
    cache.k[index]
        .narrow(1, past, t)
        .copy_(k.narrow(0, start, t).transpose(0, 1));
    cache.v[index]
        .narrow(1, past, t)
        .copy_(v.narrow(0, start, t).transpose(0, 1));
    torch::Tensor qs = q.narrow(0, start, t).transpose(0, 1).unsqueeze(0);
    torch::Tensor ks = cache.k[index].narrow(1, 0, past + t).unsqueeze(0);
    torch::Tensor vs = cache.v[index].narrow(1, 0, past + t).unsqueeze(0);
    torch::Tensor o =
        CausalAttention(qs, ks, vs, LayerAttention(c, Sliding(index), past));
    outs.push_back(o[0].transpose(0, 1));  // [t, heads, head_dim]
    start += t;
  }
  torch::Tensor attn =
      torch::cat(outs, 0).reshape({n, c.num_attention_heads * c.head_dim});
  return AfterAttention(layer, hidden,
                        ApplyLinearRagged(layer.o, attn, batch.lora),
                        [&](const Linear& l, const torch::Tensor& x) {
                          return ApplyLinearRagged(l, x, batch.lora);
                        });
}

torch::Tensor LlamaModel::ForwardRagged(const RaggedBatch& batch) const {
  torch::NoGradGuard no_grad;
  TORCH_CHECK(batch.lengths.size() == batch.caches.size(),
              "ragged batch: one cache per segment");
  std::vector<int64_t> positions, last;
  for (size_t s = 0; s < batch.lengths.size(); ++s) {
    const KvCache& cache = *batch.caches[s];
    TORCH_CHECK(cache.length + batch.lengths[s] <= cache.capacity,
                "KV cache full: ", cache.length, " + ", batch.lengths[s], " > ",
                cache.capacity);
    for (int64_t j = 0; j < batch.lengths[s]; ++j) {
      positions.push_back(cache.length + j);
    }
    last.push_back(static_cast<int64_t>(positions.size()) - 1);
  }
  TORCH_CHECK(static_cast<int64_t>(positions.size()) == batch.ids.size(0),
              "ragged batch: lengths do not add up to the ids");
  torch::Tensor pos =
      torch::tensor(positions, torch::kLong).to(device_, torch::kFloat32);
  auto [cos, sin] = Rope(pos, /*local=*/false);
  cos = cos.unsqueeze(1);
  sin = sin.unsqueeze(1);
  torch::Tensor local_cos, local_sin;
  if (local_inv_freq_.defined()) {
    std::tie(local_cos, local_sin) = Rope(pos, /*local=*/true);
    local_cos = local_cos.unsqueeze(1);
    local_sin = local_sin.unsqueeze(1);
  }
  torch::Tensor hidden = Embed(batch.ids);
  for (int64_t i = 0; i < static_cast<int64_t>(layers_.size()); ++i) {
    const bool local = LocalRope(i);
    hidden = RaggedBlock(i, hidden, local ? local_cos : cos,
                         local ? local_sin : sin, batch);
  }
  for (size_t s = 0; s < batch.lengths.size(); ++s) {
    batch.caches[s]->length += batch.lengths[s];
  }
  hidden =
      hidden.index_select(0, torch::tensor(last, torch::kLong).to(device_));
  return Head(hidden);
}

}  // namespace lorad::worker
