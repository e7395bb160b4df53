#include "lorad/worker/llama_model.h"

#include <array>
#include <cmath>
#include <numbers>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "attention.h"
#include "lorad/common/status_macros.h"
#include "lorad/model/block_linears.h"
#include "lorad/model/chat_template.h"
#include "lorad/model/safetensors.h"
#include "lorad/worker/checkpointing.h"

namespace lorad::worker {
namespace {

absl::StatusOr<torch::Tensor> LoadTensor(const model::SafetensorsModel& weights,
                                         const std::string& name,
                                         std::vector<int64_t> shape,
                                         const std::string& dir) {
  const model::TensorInfo* t = weights.Find(name);
  if (t == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, ": tensor ", name, " missing"));
  }
  if (t->shape != shape) {
    std::string want, got;
    for (int64_t d : shape) absl::StrAppend(&want, want.empty() ? "" : "x", d);
    for (int64_t d : t->shape) absl::StrAppend(&got, got.empty() ? "" : "x", d);
    return absl::InvalidArgumentError(absl::StrCat(
        dir, ": tensor ", name, " has shape ", got, ", expected ", want));
  }
  torch::Tensor out = torch::empty(shape, torch::kFloat32);
  LORAD_RETURN_IF_ERROR(model::ToFloat32Into(*t, out.data_ptr<float>()));
  model::ReleasePages(*t);
  return out;
}

torch::Tensor RotateHalf(const torch::Tensor& x) {
  auto halves = x.chunk(2, -1);
  return torch::cat({-halves[1], halves[0]}, -1);
}

torch::Tensor InvFreq(const model::ModelConfig& c, double theta,
                      const model::RopeScaling& rs) {
  torch::Tensor inv =
      1.0 / torch::pow(theta, torch::arange(0, c.head_dim, 2, torch::kFloat64) /
                                  static_cast<double>(c.head_dim));
  if (rs.type == "linear") {
    inv = inv / rs.factor;
  } else if (rs.type == "llama3") {
    const double old_len =
        static_cast<double>(rs.original_max_position_embeddings);
    const double low_wavelen = old_len / rs.low_freq_factor;
    const double high_wavelen = old_len / rs.high_freq_factor;
    torch::Tensor wavelen = 2 * std::numbers::pi / inv;
    torch::Tensor scaled =
        torch::where(wavelen > low_wavelen, inv / rs.factor, inv);
    torch::Tensor smooth = (old_len / wavelen - rs.low_freq_factor) /
                           (rs.high_freq_factor - rs.low_freq_factor);
    torch::Tensor smoothed =
        (1 - smooth) * scaled / rs.factor + smooth * scaled;
    torch::Tensor medium =
        torch::logical_not(wavelen < high_wavelen)
            .logical_and(torch::logical_not(wavelen > low_wavelen));
    inv = torch::where(medium, smoothed, scaled);
  }
  return inv.to(torch::kFloat32);
}

}  // namespace

absl::StatusOr<std::unique_ptr<LlamaModel>> LlamaModel::Load(
    const std::string& dir, const LoadOptions& options) {
  std::unique_ptr<LlamaModel> m(new LlamaModel());
  LORAD_ASSIGN_OR_RETURN(m->config_, model::ModelConfig::FromDir(dir));
  // As transformers' AutoTokenizer loads it (tokenizer_config.json too).
  LORAD_ASSIGN_OR_RETURN(m->tokenizer_, model::Tokenizer::FromModelDir(dir));
  // A chat template that does not parse is refused at load, not at the
  // first chat request.
  LORAD_ASSIGN_OR_RETURN(m->chat_template_, model::ChatTemplate::Load(dir));
  LORAD_ASSIGN_OR_RETURN(auto weights, model::SafetensorsModel::Open(dir));
  m->dir_ = dir;
  m->device_ = options.device;
  m->dtype_ = options.dtype;
  if (options.quantize) m->quantization_ = options.quantization;
  const model::ModelConfig& c = m->config_;
  auto to_dev = [&](torch::Tensor t) {
    return t.to(options.device, options.dtype);
  };
  LORAD_ASSIGN_OR_RETURN(torch::Tensor embed,
                         LoadTensor(*weights, "model.embed_tokens.weight",
                                    {c.vocab_size, c.hidden_size}, dir));
  m->embed_ = to_dev(embed);
  if (c.tie_word_embeddings) {
    m->lm_head_ = m->embed_;
  } else {
    LORAD_ASSIGN_OR_RETURN(torch::Tensor head,
                           LoadTensor(*weights, "lm_head.weight",
                                      {c.vocab_size, c.hidden_size}, dir));
    m->lm_head_ = to_dev(head);
  }
  LORAD_ASSIGN_OR_RETURN(
      torch::Tensor norm,
      LoadTensor(*weights, "model.norm.weight", {c.hidden_size}, dir));
  m->final_norm_ = to_dev(norm);

  const std::array<model::BlockLinear, model::kNumBlockLinears> shapes =
      model::BlockLinears(c);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    Layer layer;
    Linear* slots[] = {&layer.q,    &layer.k,  &layer.v,   &layer.o,
                       &layer.gate, &layer.up, &layer.down};
    for (size_t s = 0; s < shapes.size(); ++s) {
      Linear& l = *slots[s];
      l.key = model::BlockLinearKey(i, shapes[s].path);
      LORAD_ASSIGN_OR_RETURN(torch::Tensor w,
                             LoadTensor(*weights, l.key + ".weight",
                                        {shapes[s].out, shapes[s].in}, dir));
      if (options.quantize &&
          options.quantization == model::BaseQuantization::kInt8) {
        l.int8 = Int8Weight::Quantize(w.data_ptr<float>(), shapes[s].out,
                                      shapes[s].in, options.device);
      } else if (options.quantize) {
        l.nf4 = Nf4Weight::Quantize(w.data_ptr<float>(), shapes[s].out,
                                    shapes[s].in, options.device);
      } else {
        l.dense = to_dev(w);
      }
      const bool has_bias = (s < 3 && c.qkv_bias) || (s == 3 && c.o_bias) ||
                            (s >= 4 && c.mlp_bias);
      if (has_bias) {
        LORAD_ASSIGN_OR_RETURN(
            torch::Tensor b,
            LoadTensor(*weights, l.key + ".bias", {shapes[s].out}, dir));
        l.bias = to_dev(b);
      }
    }
    std::string p = absl::StrCat("model.layers.", i, ".");
    LORAD_ASSIGN_OR_RETURN(torch::Tensor n1,
                           LoadTensor(*weights, p + "input_layernorm.weight",
                                      {c.hidden_size}, dir));
    LORAD_ASSIGN_OR_RETURN(
        torch::Tensor n2,
        LoadTensor(*weights, p + "post_attention_layernorm.weight",
                   {c.hidden_size}, dir));
    layer.input_norm = to_dev(n1);
    layer.post_norm = to_dev(n2);
    if (c.gemma) {
      LORAD_ASSIGN_OR_RETURN(
          torch::Tensor n3,
          LoadTensor(*weights, p + "pre_feedforward_layernorm.weight",
                     {c.hidden_size}, dir));
      LORAD_ASSIGN_OR_RETURN(
          torch::Tensor n4,
          LoadTensor(*weights, p + "post_feedforward_layernorm.weight",
                     {c.hidden_size}, dir));
      layer.pre_mlp_norm = to_dev(n3);
      layer.post_mlp_norm = to_dev(n4);
    }
    if (c.qk_norm) {
      LORAD_ASSIGN_OR_RETURN(torch::Tensor qn,
                             LoadTensor(*weights, p + "self_attn.q_norm.weight",
                                        {c.head_dim}, dir));
      LORAD_ASSIGN_OR_RETURN(torch::Tensor kn,
                             LoadTensor(*weights, p + "self_attn.k_norm.weight",
                                        {c.head_dim}, dir));
      layer.q_norm = to_dev(qn);
      layer.k_norm = to_dev(kn);
    }
    m->layers_.push_back(std::move(layer));
  }
  m->inv_freq_ = InvFreq(c, c.rope_theta, c.rope_scaling).to(options.device);
  if (c.local_rope_theta > 0) {
    m->local_inv_freq_ =
        InvFreq(c, c.local_rope_theta, model::RopeScaling()).to(options.device);
  }
  return m;
}

torch::Tensor LlamaModel::BaseMatMul(const Linear& l, const torch::Tensor& x) {
  if (l.nf4) return Nf4MatMul(x, *l.nf4);
  if (l.int8) return Int8MatMul(x, *l.int8);
  return torch::matmul(x, l.dense.t());
}

torch::Tensor LlamaModel::WeightOf(const Linear& l, torch::ScalarType dtype) {
  if (l.nf4) return l.nf4->Dequantize(dtype);
  if (l.int8) return l.int8->Dequantize(dtype);
  return l.dense.to(dtype);
}

int64_t LlamaModel::StorageBytes(const Linear& l) {
  if (l.nf4) return l.nf4->StorageBytes();
  if (l.int8) return l.int8->StorageBytes();
  return l.dense.numel() * l.dense.element_size();
}

torch::Tensor LlamaModel::ApplyLinear(const Linear& l, const torch::Tensor& x,
                                      const ForwardOptions& options) const {
  torch::Tensor y = BaseMatMul(l, x);
  if (l.bias.defined()) y = y + l.bias;
  if (options.adapter != nullptr) {
    if (const LoraWeights* w = options.adapter->Find(l.key)) {
      y = y + LoraDelta(x, *w, options.adapter->scale(),
                        options.adapter->options().dropout, options.training,
                        options.dropout_generator);
    }
  } else if (options.row_adapters != nullptr) {
    y = y + RowSegmentDelta(l, x, y, options);
  }
  return y;
}

torch::Tensor LlamaModel::RowSegmentDelta(const Linear& l,
                                          const torch::Tensor& x,
                                          const torch::Tensor& y,
                                          const ForwardOptions& options) {
  // Each segment's rows through its own A and B; rows of an adapter that
  // does not target this linear add zeros. One split (its backward is one
  // cat, where a narrow per segment would each make a full-size zero
  // gradient) and one cat keep autograd simple.
  std::vector<int64_t> sizes;
  sizes.reserve(options.row_adapters->size());
  for (const AdapterRows& r : *options.row_adapters) sizes.push_back(r.rows);
  std::vector<torch::Tensor> xs = x.split_with_sizes(sizes, 0);
  std::vector<torch::Tensor> parts;
  parts.reserve(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) {
    const AdapterRows& r = (*options.row_adapters)[i];
    const LoraWeights* w =
        r.adapter != nullptr ? r.adapter->Find(l.key) : nullptr;
    if (w != nullptr) {
      parts.push_back(
          LoraDelta(xs[i], *w, r.adapter->scale(), r.adapter->options().dropout,
                    options.training && r.dropout, r.generator, r.length));
    } else {
      std::vector<int64_t> shape = y.sizes().vec();
      shape[0] = r.rows;
      parts.push_back(torch::zeros(shape, y.options()));
    }
  }
  return torch::cat(parts, 0);
}

torch::Tensor LlamaModel::RmsNorm(const torch::Tensor& x,
                                  const torch::Tensor& w) const {
  torch::Tensor xf = x.to(torch::kFloat32);
  torch::Tensor var = xf.pow(2).mean(-1, /*keepdim=*/true);
  xf = xf * torch::rsqrt(var + config_.rms_norm_eps);
  // Gemma scales in fp32 by (1 + w) and casts after; Llama casts first.
  if (config_.gemma) return (xf * (1 + w.to(torch::kFloat32))).to(x.dtype());
  return w * xf.to(x.scalar_type());
}

torch::Tensor LlamaModel::Activate(const torch::Tensor& x) const {
  if (config_.activation == "gelu_pytorch_tanh") return torch::gelu(x, "tanh");
  if (config_.activation == "gelu") return torch::gelu(x);
  return torch::silu(x);
}

torch::Tensor LlamaModel::Embed(const torch::Tensor& ids) const {
  torch::Tensor hidden = torch::embedding(embed_, ids.to(device_));
  if (!config_.gemma) return hidden;
  // sqrt(hidden_size), rounded to the weights' dtype as transformers does.
  return hidden *
         torch::scalar_tensor(std::sqrt(double(config_.hidden_size)), dtype_);
}

torch::Tensor LlamaModel::Head(const torch::Tensor& hidden) const {
  torch::Tensor logits =
      torch::matmul(RmsNorm(hidden, final_norm_), lm_head_.t());
  if (const double cap = config_.final_logit_softcapping; cap > 0) {
    logits = torch::tanh(logits / cap) * cap;
  }
  return logits.to(torch::kFloat32);
}

bool LlamaModel::Sliding(int64_t layer) const {
  return !config_.sliding_layers.empty() && config_.sliding_layers[layer];
}

bool LlamaModel::LocalRope(int64_t layer) const {
  return local_inv_freq_.defined() && Sliding(layer);
}

std::pair<torch::Tensor, torch::Tensor> LlamaModel::Rope(
    const torch::Tensor& positions, bool local) const {
  torch::Tensor freqs =
      torch::outer(positions, local ? local_inv_freq_ : inv_freq_);
  torch::Tensor emb = torch::cat({freqs, freqs}, -1);
  return {emb.cos().to(dtype_), emb.sin().to(dtype_)};
}

torch::Tensor LlamaModel::Block(int64_t index, const torch::Tensor& hidden,
                                const torch::Tensor& cos,
                                const torch::Tensor& sin,
                                const ForwardOptions& options) const {
  const Layer& layer = layers_[index];
  const model::ModelConfig& c = config_;
  const int64_t b = hidden.size(0), t = hidden.size(1);
  torch::Tensor x = RmsNorm(hidden, layer.input_norm);
  torch::Tensor q = ApplyLinear(layer.q, x, options)
                        .view({b, t, c.num_attention_heads, c.head_dim});
  torch::Tensor k = ApplyLinear(layer.k, x, options)
                        .view({b, t, c.num_key_value_heads, c.head_dim});
  if (c.qk_norm) {
    q = RmsNorm(q, layer.q_norm);
    k = RmsNorm(k, layer.k_norm);
  }
  q = q.transpose(1, 2);
  k = k.transpose(1, 2);
  torch::Tensor v = ApplyLinear(layer.v, x, options)
                        .view({b, t, c.num_key_value_heads, c.head_dim})
                        .transpose(1, 2);
  q = q * cos + RotateHalf(q) * sin;
  k = k * cos + RotateHalf(k) * sin;
  int64_t past = 0;
  if (options.cache != nullptr) {
    KvCache& cache = *options.cache;
    past = cache.length;
    if (past > 0) {
      k = torch::cat({cache.k[index], k}, 2);
      v = torch::cat({cache.v[index], v}, 2);
    }
    cache.k[index] = k;
    cache.v[index] = v;
  }
  const int64_t groups = c.num_attention_heads / c.num_key_value_heads;
  if (groups > 1) {
    k = k.repeat_interleave(groups, 1);
    v = v.repeat_interleave(groups, 1);
  }
  torch::Tensor attn =
      CausalAttention(q, k, v, LayerAttention(c, Sliding(index), past));
  attn =
      attn.transpose(1, 2).reshape({b, t, c.num_attention_heads * c.head_dim});
  return AfterAttention(layer, hidden, ApplyLinear(layer.o, attn, options),
                        [&](const Linear& l, const torch::Tensor& x) {
                          return ApplyLinear(l, x, options);
                        });
}

torch::Tensor LlamaModel::AfterAttention(
    const Layer& layer, const torch::Tensor& hidden,
    const torch::Tensor& attn_out,
    const std::function<torch::Tensor(const Linear&, const torch::Tensor&)>&
        linear) const {
  torch::Tensor h, y;
  if (config_.gemma) {
    h = hidden + RmsNorm(attn_out, layer.post_norm);
    y = RmsNorm(h, layer.pre_mlp_norm);
  } else {
    h = hidden + attn_out;
    y = RmsNorm(h, layer.post_norm);
  }
  torch::Tensor mlp = Activate(linear(layer.gate, y)) * linear(layer.up, y);
  torch::Tensor down = linear(layer.down, mlp);
  if (config_.gemma) down = RmsNorm(down, layer.post_mlp_norm);
  return h + down;
}

torch::Tensor LlamaModel::Forward(const torch::Tensor& input_ids,
                                  const ForwardOptions& options) const {
  const int64_t t = input_ids.size(1);
  const int64_t offset = options.cache ? options.cache->length : 0;
  if (options.cache != nullptr && options.cache->k.empty()) {
    options.cache->k.resize(layers_.size());
    options.cache->v.resize(layers_.size());
  }
  torch::Tensor pos = torch::arange(
      offset, offset + t,
      torch::TensorOptions().dtype(torch::kFloat32).device(device_));
  auto [cos, sin] = Rope(pos, /*local=*/false);
  torch::Tensor local_cos, local_sin;
  if (local_inv_freq_.defined()) {
    std::tie(local_cos, local_sin) = Rope(pos, /*local=*/true);
  }
  torch::Tensor hidden = Embed(input_ids);
  const int64_t n = static_cast<int64_t>(layers_.size());
  for (int64_t i = 0; i < n; ++i) {
    const bool local = LocalRope(i);
    const torch::Tensor& lc = local ? local_cos : cos;
    const torch::Tensor& ls = local ? local_sin : sin;
    // The last block is not checkpointed: backward would recompute it at
    // once, while its activations are still the newest thing in memory.
    if (options.gradient_checkpointing && options.cache == nullptr &&
        torch::GradMode::is_enabled() && i + 1 < n) {
      hidden = CheckpointedBlock(*this, i, hidden, lc, ls, options);
    } else {
      hidden = Block(i, hidden, lc, ls, options);
    }
  }
  if (options.cache != nullptr) options.cache->length += t;
  return options.hidden_out ? hidden : Head(hidden);
}

int64_t LlamaModel::QuantizedBytes() const {
  int64_t n = 0;
  for (const Layer& l : layers_) {
    for (const Linear* x : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) {
      n += StorageBytes(*x);
    }
  }
  return n;
}

double LlamaModel::QuantizedBytesPerParam() const {
  return static_cast<double>(QuantizedBytes()) /
         static_cast<double>(config_.NumBlockLinearParameters());
}

int64_t LlamaModel::BaseBytes() const {
  int64_t n = QuantizedBytes() + embed_.numel() * embed_.element_size() +
              final_norm_.numel() * final_norm_.element_size();
  if (!config_.tie_word_embeddings) {
    n += lm_head_.numel() * lm_head_.element_size();
  }
  for (const Layer& l : layers_) {
    for (const torch::Tensor* norm :
         {&l.input_norm, &l.post_norm, &l.pre_mlp_norm, &l.post_mlp_norm}) {
      if (norm->defined()) n += norm->numel() * norm->element_size();
    }
    if (l.q_norm.defined()) {
      n += (l.q_norm.numel() + l.k_norm.numel()) * l.q_norm.element_size();
    }
    for (const Linear* x : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) {
      if (x->bias.defined()) n += x->bias.numel() * x->bias.element_size();
    }
  }
  return n;
}

}  // namespace lorad::worker
