#include "lorad/worker/lora.h"

#include <cmath>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "lorad/common/files.h"
#include "lorad/common/status_macros.h"
#include "lorad/model/safetensors.h"
#include "nlohmann/json.hpp"

namespace lorad::worker {
namespace {

constexpr char kPeftPrefix[] = "base_model.model.";

torch::Tensor FromFloats(const std::vector<float>& v,
                         std::vector<int64_t> shape, torch::Device device) {
  torch::Tensor t = torch::empty(shape, torch::kFloat32);
  std::memcpy(t.data_ptr(), v.data(), v.size() * sizeof(float));
  return t.to(device);
}

}  // namespace

torch::Tensor LoraDelta(const torch::Tensor& x, const LoraWeights& w,
                        double scale, double dropout, bool training) {
  torch::Tensor in =
      training && dropout > 0 ? torch::dropout(x, dropout, true) : x;
  return torch::matmul(torch::matmul(in, w.a.to(x.scalar_type()).t()),
                       w.b.to(x.scalar_type()).t()) *
         scale;
}

std::vector<LinearShape> BlockLinears(const model::ModelConfig& c) {
  const int64_t h = c.hidden_size, q = c.num_attention_heads * c.head_dim,
                kv = c.num_key_value_heads * c.head_dim,
                inter = c.intermediate_size;
  return {{"q_proj", "self_attn.q_proj", h, q},
          {"k_proj", "self_attn.k_proj", h, kv},
          {"v_proj", "self_attn.v_proj", h, kv},
          {"o_proj", "self_attn.o_proj", q, h},
          {"gate_proj", "mlp.gate_proj", h, inter},
          {"up_proj", "mlp.up_proj", h, inter},
          {"down_proj", "mlp.down_proj", inter, h}};
}

std::string ModuleKey(int64_t layer, const std::string& path) {
  return absl::StrCat("model.layers.", layer, ".", path);
}

absl::StatusOr<AdapterSet> AdapterSet::CreateForTraining(
    const model::ModelConfig& config, const LoraOptions& options, uint64_t seed,
    torch::Device device) {
  if (options.rank < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("LoRA rank must be >= 1, got ", options.rank));
  }
  std::vector<LinearShape> linears = BlockLinears(config);
  std::set<std::string> targets(options.target_modules.begin(),
                                options.target_modules.end());
  for (const std::string& t : targets) {
    bool known = false;
    for (const LinearShape& l : linears) known |= l.name == t;
    if (!known) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown LoRA target module \"", t, "\""));
    }
  }
  AdapterSet set;
  set.options_ = options;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    for (const LinearShape& l : linears) {
      if (!targets.count(l.name)) continue;
      // Kaiming-uniform with a = sqrt(5): bound = 1 / sqrt(fan_in).
      const double bound = 1.0 / std::sqrt(static_cast<double>(l.in));
      torch::Tensor a = torch::empty({options.rank, l.in}, torch::kFloat32);
      a.uniform_(-bound, bound, gen);
      torch::Tensor b = torch::zeros({l.out, options.rank}, torch::kFloat32);
      a = a.to(device).set_requires_grad(true);
      b = b.to(device).set_requires_grad(true);
      set.weights_[ModuleKey(layer, l.path)] = {a, b};
      set.by_layer_[layer].push_back(a);
      set.by_layer_[layer].push_back(b);
    }
  }
  return set;
}

absl::StatusOr<AdapterSet> AdapterSet::LoadPeft(
    const std::string& dir, const model::ModelConfig& config,
    torch::Device device) {
  std::string config_path = absl::StrCat(dir, "/adapter_config.json");
  auto text = ReadFile(config_path);
  if (!text.ok()) {
    return absl::NotFoundError(
        absl::StrCat("adapter directory ", dir, " has no adapter_config.json"));
  }
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(config_path, ": not a valid JSON object"));
  }
  if (j.value("peft_type", std::string("LORA")) != "LORA") {
    return absl::InvalidArgumentError(absl::StrCat(
        config_path, ": peft_type must be LORA, got ", j["peft_type"].dump()));
  }
  if (!j.contains("r") || !j["r"].is_number_integer()) {
    return absl::InvalidArgumentError(
        absl::StrCat(config_path, ": field \"r\" missing or not an integer"));
  }
  LoraOptions options;
  options.rank = j["r"].get<int64_t>();
  options.alpha = j.value("lora_alpha", static_cast<double>(options.rank));
  options.dropout = j.value("lora_dropout", 0.0);
  if (options.rank < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(config_path, ": r must be >= 1"));
  }
  LORAD_ASSIGN_OR_RETURN(auto file, model::SafetensorsFile::Open(absl::StrCat(
                                        dir, "/adapter_model.safetensors")));
  AdapterSet set;
  std::set<std::string> targets;
  std::vector<LinearShape> linears = BlockLinears(config);
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    for (const LinearShape& l : linears) {
      std::string key = ModuleKey(layer, l.path);
      std::string a_key = absl::StrCat(kPeftPrefix, key, ".lora_A.weight");
      std::string b_key = absl::StrCat(kPeftPrefix, key, ".lora_B.weight");
      const model::TensorInfo* a = file->Find(a_key);
      const model::TensorInfo* b = file->Find(b_key);
      if (a == nullptr && b == nullptr) continue;
      if (a == nullptr || b == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(dir, ": ", a ? b_key : a_key, " missing"));
      }
      std::vector<int64_t> want_a = {options.rank, l.in};
      std::vector<int64_t> want_b = {l.out, options.rank};
      if (a->shape != want_a || b->shape != want_b) {
        return absl::InvalidArgumentError(absl::StrCat(
            dir, ": ", key,
            " has LoRA shapes that do not fit the base model"
            " (A must be ",
            options.rank, "x", l.in, ", B ", l.out, "x", options.rank, ")"));
      }
      LORAD_ASSIGN_OR_RETURN(std::vector<float> av, model::ToFloat32(*a));
      LORAD_ASSIGN_OR_RETURN(std::vector<float> bv, model::ToFloat32(*b));
      torch::Tensor at = FromFloats(av, want_a, device);
      torch::Tensor bt = FromFloats(bv, want_b, device);
      set.weights_[key] = {at, bt};
      set.by_layer_[layer].push_back(at);
      set.by_layer_[layer].push_back(bt);
      targets.insert(l.name);
    }
  }
  size_t lora_keys = 0;
  for (const model::TensorInfo& t : file->tensors()) {
    if (t.name.find(".lora_") != std::string::npos) ++lora_keys;
  }
  if (lora_keys != 2 * set.weights_.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir, ": adapter has LoRA tensors for modules the base model lacks (",
        lora_keys, " LoRA tensors, ", 2 * set.weights_.size(), " match)"));
  }
  if (set.weights_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, ": adapter_model.safetensors holds no LoRA weights"));
  }
  options.target_modules.assign(targets.begin(), targets.end());
  set.options_ = options;
  if (j.contains("base_model_name_or_path") &&
      j["base_model_name_or_path"].is_string()) {
    set.base_model_name_ = j["base_model_name_or_path"].get<std::string>();
  }
  return set;
}

absl::Status AdapterSet::SavePeft(const std::string& dir,
                                  const std::string& base_model_name) const {
  LORAD_RETURN_IF_ERROR(MakeDirs(dir));
  std::vector<torch::Tensor> host;  // keeps the bytes alive while writing
  std::vector<model::TensorToWrite> tensors;
  for (const auto& [key, w] : weights_) {
    for (const auto& [suffix, t] :
         {std::pair<const char*, torch::Tensor>{".lora_A.weight", w.a},
          {".lora_B.weight", w.b}}) {
      torch::Tensor c =
          t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
      host.push_back(c);
      tensors.push_back(
          {absl::StrCat(kPeftPrefix, key, suffix), model::DType::kF32,
           std::vector<int64_t>(c.sizes().begin(), c.sizes().end()),
           std::string_view(static_cast<const char*>(c.data_ptr()),
                            c.numel() * sizeof(float))});
    }
  }
  LORAD_RETURN_IF_ERROR(
      model::WriteSafetensors(absl::StrCat(dir, "/adapter_model.safetensors"),
                              std::move(tensors), {{"format", "pt"}}));
  nlohmann::json j;
  j["peft_type"] = "LORA";
  j["task_type"] = "CAUSAL_LM";
  j["r"] = options_.rank;
  j["lora_alpha"] = options_.alpha;
  j["lora_dropout"] = options_.dropout;
  j["target_modules"] = options_.target_modules;
  j["base_model_name_or_path"] = base_model_name;
  j["bias"] = "none";
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  j["init_lora_weights"] = true;
  j["modules_to_save"] = nullptr;
  j["use_rslora"] = false;
  j["use_dora"] = false;
  j["revision"] = nullptr;
  return WriteFileAtomic(absl::StrCat(dir, "/adapter_config.json"), j.dump(2));
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
  for (const auto& [key, w] : out.weights_) {
    const int64_t layer = std::stoll(key.substr(sizeof("model.layers.") - 1));
    out.by_layer_[layer].push_back(w.a);
    out.by_layer_[layer].push_back(w.b);
  }
  return out;
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
