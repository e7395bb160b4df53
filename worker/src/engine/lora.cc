#include "lorad/worker/lora.h"

#include <cmath>
#include <cstring>
#include <mutex>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lorad/common/files.h"
#include "lorad/common/status_macros.h"
#include "lorad/model/block_linears.h"
#include "lorad/model/peft_adapter.h"
#include "lorad/model/safetensors.h"

namespace lorad::worker {
namespace {

torch::Tensor FromFloats(const std::vector<float>& v,
                         std::vector<int64_t> shape, torch::Device device) {
  torch::Tensor t = torch::empty(shape, torch::kFloat32);
  std::memcpy(t.data_ptr(), v.data(), v.size() * sizeof(float));
  return t.to(device);
}

}  // namespace

torch::Tensor LoraDelta(const torch::Tensor& x, const LoraWeights& w,
                        double scale, double dropout, bool training,
                        const at::Generator& generator, int64_t length) {
  torch::Tensor in = x;
  if (training && dropout > 0 && !generator.defined()) {
    in = torch::dropout(x, dropout, true);
  } else if (training && dropout > 0) {
    // As torch::dropout: keep each value with probability 1 - p, scaled by
    // 1 / (1 - p).
    std::vector<int64_t> shape = x.sizes().vec();
    const bool part = length >= 0 && x.dim() == 3 && length < x.size(1);
    if (part) shape[1] = length;
    torch::Tensor keep =
        torch::empty(shape, x.options()).bernoulli_(1 - dropout, generator);
    keep.div_(1 - dropout);
    if (part) {
      keep = torch::constant_pad_nd(keep, {0, 0, 0, x.size(1) - length}, 1.0);
    }
    in = x * keep;
  }
  return torch::matmul(torch::matmul(in, w.a.to(x.scalar_type()).t()),
                       w.b.to(x.scalar_type()).t()) *
         scale;
}

at::Generator NewGenerator(torch::Device device, uint64_t seed) {
  if (device.is_cpu()) return at::make_generator<at::CPUGeneratorImpl>(seed);
  // A copy of the device's default generator is one of its kind without
  // naming the backend's generator class here; reseeding sets it apart.
  at::Generator source = at::globalContext().defaultGenerator(device);
  at::Generator gen;
  {
    std::lock_guard<std::mutex> lock(source.mutex());
    gen = source.clone();
  }
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_current_seed(seed);
  return gen;
}

absl::StatusOr<AdapterSet> AdapterSet::CreateForTraining(
    const model::ModelConfig& config, const LoraOptions& options, uint64_t seed,
    torch::Device device) {
  if (options.rank < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("LoRA rank must be >= 1, got ", options.rank));
  }
  std::set<std::string, std::less<>> targets(options.target_modules.begin(),
                                             options.target_modules.end());
  for (const std::string& t : targets) {
    if (!model::BlockLinearIndex(t).has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown LoRA target module \"", t, "\""));
    }
  }
  AdapterSet set;
  set.options_ = options;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    for (const model::BlockLinear& l : model::BlockLinears(config)) {
      if (!targets.count(l.name)) continue;
      // Kaiming-uniform with a = sqrt(5): bound = 1 / sqrt(fan_in).
      const double bound = 1.0 / std::sqrt(static_cast<double>(l.in));
      torch::Tensor a = torch::empty({options.rank, l.in}, torch::kFloat32);
      a.uniform_(-bound, bound, gen);
      torch::Tensor b = torch::zeros({l.out, options.rank}, torch::kFloat32);
      a = a.to(device).set_requires_grad(true);
      b = b.to(device).set_requires_grad(true);
      set.weights_[model::BlockLinearKey(layer, l.path)] = {a, b};
      set.by_layer_[layer].push_back(a);
      set.by_layer_[layer].push_back(b);
    }
  }
  return set;
}

absl::StatusOr<AdapterSet> AdapterSet::LoadPeft(
    const std::string& dir, const model::ModelConfig& config,
    torch::Device device) {
  absl::StatusOr<model::PeftAdapter> peft = model::OpenPeftAdapter(dir, config);
  if (!peft.ok()) {
    return absl::Status(peft.status().code(),
                        absl::StrCat(dir, ": ", peft.status().message()));
  }
  AdapterSet set;
  std::set<std::string> targets;
  for (const model::TensorInfo& t : peft->weights->tensors()) {
    LORAD_ASSIGN_OR_RETURN(model::PeftTensorKey key,
                           model::ParsePeftTensorName(t.name, config));
    LORAD_ASSIGN_OR_RETURN(std::vector<float> values, model::ToFloat32(t));
    LoraWeights& w =
        set.weights_[model::BlockLinearKey(key.layer, key.linear.path)];
    (key.half == model::LoraHalf::kA ? w.a : w.b) =
        FromFloats(values, t.shape, device);
    targets.insert(std::string(key.linear.name));
  }
  set.IndexLayers();
  set.options_.rank = peft->spec.rank;
  set.options_.alpha = peft->spec.alpha;
  set.options_.dropout = peft->spec.dropout;
  set.options_.target_modules.assign(targets.begin(), targets.end());
  set.base_model_name_ = peft->spec.base_model_name_or_path;
  return set;
}

absl::Status AdapterSet::SavePeft(const std::string& dir,
                                  const std::string& base_model_name) const {
  LORAD_RETURN_IF_ERROR(MakeDirs(dir));
  std::vector<torch::Tensor> host;  // keeps the bytes alive while writing
  std::vector<model::TensorToWrite> tensors;
  for (const auto& [key, w] : weights_) {
    for (const auto& [half, t] :
         {std::pair<model::LoraHalf, torch::Tensor>{model::LoraHalf::kA, w.a},
          {model::LoraHalf::kB, w.b}}) {
      torch::Tensor c =
          t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
      host.push_back(c);
      tensors.push_back(
          {model::PeftTensorName(key, half), model::DType::kF32,
           std::vector<int64_t>(c.sizes().begin(), c.sizes().end()),
           std::string_view(static_cast<const char*>(c.data_ptr()),
                            c.numel() * sizeof(float))});
    }
  }
  LORAD_RETURN_IF_ERROR(model::WriteSafetensors(
      absl::StrCat(dir, "/", model::kAdapterWeightsFile), std::move(tensors),
      {{"format", "pt"}}));
  model::PeftAdapterSpec spec;
  spec.rank = options_.rank;
  spec.alpha = options_.alpha;
  spec.dropout = options_.dropout;
  spec.target_modules = options_.target_modules;
  spec.base_model_name_or_path = base_model_name;
  return WriteFileAtomic(absl::StrCat(dir, "/", model::kAdapterConfigFile),
                         spec.ToJson());
}

const LoraWeights* AdapterSet::Find(const std::string& key) const {
  auto it = weights_.find(key);
  return it == weights_.end() ? nullptr : &it->second;
}

std::vector<torch::Tensor> AdapterSet::Parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& [key, w] : weights_) {
    out.push_back(w.a);
    out.push_back(w.b);
  }
  return out;
}

std::vector<torch::Tensor> AdapterSet::LayerParameters(int64_t layer) const {
  auto it = by_layer_.find(layer);
  return it == by_layer_.end() ? std::vector<torch::Tensor>{} : it->second;
}

AdapterSet AdapterSet::CopyTo(torch::Device device,
                              torch::ScalarType dtype) const {
  AdapterSet out;
  out.options_ = options_;
  out.base_model_name_ = base_model_name_;
  for (const auto& [key, w] : weights_) {
    out.weights_[key] = {w.a.detach().to(device, dtype),
                         w.b.detach().to(device, dtype)};
  }
  out.IndexLayers();
  return out;
}

void AdapterSet::IndexLayers() {
  by_layer_.clear();
  for (const auto& [key, w] : weights_) {
    const int64_t layer = std::stoll(key.substr(sizeof("model.layers.") - 1));
    by_layer_[layer].push_back(w.a);
    by_layer_[layer].push_back(w.b);
  }
}

int64_t AdapterSet::SizeBytes() const {
  int64_t n = 0;
  for (const auto& [key, w] : weights_) {
    n += w.a.numel() * w.a.element_size() + w.b.numel() * w.b.element_size();
  }
  return n;
}

int64_t AdapterSet::NumParameters() const {
  int64_t n = 0;
  for (const auto& [key, w] : weights_) n += w.a.numel() + w.b.numel();
  return n;
}

}  // namespace lorad::worker
