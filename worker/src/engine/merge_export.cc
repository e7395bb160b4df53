// LlamaModel::ExportMerged: the served base (NF4 or int8 dequantized) with an
// adapter folded in, written as a 16-bit Hugging Face checkpoint.
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lorad/common/files.h"
#include "lorad/common/status_macros.h"
#include "lorad/model/safetensors.h"
#include "lorad/worker/llama_model.h"
#include "nlohmann/json.hpp"

namespace lorad::worker {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCopiedFiles[] = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "generation_config.json", "tokenizer.model"};

// Collects tensors into shards of at most `max_bytes` and writes each one
// as it fills, under a temporary name until the count is known.
class ShardWriter {
 public:
  ShardWriter(std::string dir, torch::ScalarType dtype, int64_t max_bytes)
      : dir_(std::move(dir)), dtype_(dtype), max_bytes_(max_bytes) {}

  absl::Status Add(const std::string& name, const torch::Tensor& t) {
    torch::Tensor c = t.detach().to(torch::kCPU, dtype_).contiguous();
    const int64_t bytes = c.numel() * c.element_size();
    if (!held_.empty() && held_bytes_ + bytes > max_bytes_) {
      LORAD_RETURN_IF_ERROR(Flush());
    }
    held_.push_back(c);
    pending_.push_back(
        {name,
         dtype_ == torch::kBFloat16 ? model::DType::kBF16 : model::DType::kF16,
         std::vector<int64_t>(c.sizes().begin(), c.sizes().end()),
         std::string_view(static_cast<const char*>(c.data_ptr()), bytes)});
    held_bytes_ += bytes;
    total_bytes_ += bytes;
    return absl::OkStatus();
  }

  // Flushes and gives the shards their final names (plus the index when
  // there is more than one).
  absl::Status Finish() {
    if (!held_.empty()) LORAD_RETURN_IF_ERROR(Flush());
    const size_t n = shards_.size();
    if (n == 1) {
      fs::rename(TempName(0), dir_ + "/model.safetensors");
      return absl::OkStatus();
    }
    nlohmann::json index;
    index["metadata"]["total_size"] = total_bytes_;
    for (size_t i = 0; i < n; ++i) {
      std::string file =
          absl::StrFormat("model-%05d-of-%05d.safetensors", i + 1, n);
      fs::rename(TempName(i), dir_ + "/" + file);
      for (const std::string& name : shards_[i]) {
        index["weight_map"][name] = file;
      }
    }
    return WriteFileAtomic(dir_ + "/model.safetensors.index.json",
                           index.dump(2));
  }

  int64_t total_bytes() const { return total_bytes_; }

 private:
  std::string TempName(size_t i) const {
    return absl::StrCat(dir_, "/.shard-", i, ".safetensors.tmp");
  }

  absl::Status Flush() {
    std::vector<std::string> names;
    for (const model::TensorToWrite& t : pending_) names.push_back(t.name);
    LORAD_RETURN_IF_ERROR(model::WriteSafetensors(
        TempName(shards_.size()), std::move(pending_), {{"format", "pt"}}));
    shards_.push_back(std::move(names));
    pending_.clear();
    held_.clear();
    held_bytes_ = 0;
    return absl::OkStatus();
  }

  std::string dir_;
  torch::ScalarType dtype_;
  int64_t max_bytes_;
  std::vector<torch::Tensor> held_;
  std::vector<model::TensorToWrite> pending_;
  int64_t held_bytes_ = 0, total_bytes_ = 0;
  std::vector<std::vector<std::string>> shards_;
};

}  // namespace

absl::StatusOr<int64_t> LlamaModel::ExportMerged(
    const AdapterSet* adapter, const std::string& out_dir,
    torch::ScalarType dtype, int64_t max_shard_bytes) const {
  if (dtype != torch::kBFloat16 && dtype != torch::kHalf) {
    return absl::InvalidArgumentError(
        "merged export dtype must be bfloat16 or float16");
  }
  if (out_dir.empty()) return absl::InvalidArgumentError("out_dir is empty");
  std::error_code ec;
  if (fs::exists(out_dir) && fs::equivalent(out_dir, dir_, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "out_dir ", out_dir, " is the base model's directory; choose another"));
  }
  LORAD_RETURN_IF_ERROR(MakeDirs(out_dir));
  for (const auto& entry : fs::directory_iterator(out_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("model", 0) == 0 &&
        name.find(".safetensors") != std::string::npos) {
      fs::remove(entry.path(), ec);
    }
  }
  torch::NoGradGuard no_grad;
  ShardWriter writer(out_dir, dtype, max_shard_bytes);
  LORAD_RETURN_IF_ERROR(writer.Add("model.embed_tokens.weight", embed_));
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& layer = layers_[i];
    const Linear* slots[] = {&layer.q,    &layer.k,  &layer.v,   &layer.o,
                             &layer.gate, &layer.up, &layer.down};
    for (const Linear* l : slots) {
      torch::Tensor w = WeightOf(*l, torch::kFloat32);
      if (adapter != nullptr) {
        if (const LoraWeights* lw = adapter->Find(l->key)) {
          torch::Tensor a = lw->a.detach().to(w.device(), torch::kFloat32);
          torch::Tensor b = lw->b.detach().to(w.device(), torch::kFloat32);
          w = w + torch::matmul(b, a) * adapter->scale();
        }
      }
      LORAD_RETURN_IF_ERROR(writer.Add(l->key + ".weight", w));
      if (l->bias.defined()) {
        LORAD_RETURN_IF_ERROR(writer.Add(l->key + ".bias", l->bias));
      }
    }
    const std::string p = absl::StrCat("model.layers.", i, ".");
    LORAD_RETURN_IF_ERROR(
        writer.Add(p + "input_layernorm.weight", layer.input_norm));
    LORAD_RETURN_IF_ERROR(
        writer.Add(p + "post_attention_layernorm.weight", layer.post_norm));
    if (layer.pre_mlp_norm.defined()) {
      LORAD_RETURN_IF_ERROR(writer.Add(p + "pre_feedforward_layernorm.weight",
                                       layer.pre_mlp_norm));
      LORAD_RETURN_IF_ERROR(writer.Add(p + "post_feedforward_layernorm.weight",
                                       layer.post_mlp_norm));
    }
    if (layer.q_norm.defined()) {
      LORAD_RETURN_IF_ERROR(
          writer.Add(p + "self_attn.q_norm.weight", layer.q_norm));
      LORAD_RETURN_IF_ERROR(
          writer.Add(p + "self_attn.k_norm.weight", layer.k_norm));
    }
  }
  LORAD_RETURN_IF_ERROR(writer.Add("model.norm.weight", final_norm_));
  if (!config_.tie_word_embeddings) {
    LORAD_RETURN_IF_ERROR(writer.Add("lm_head.weight", lm_head_));
  }
  LORAD_RETURN_IF_ERROR(writer.Finish());

  LORAD_ASSIGN_OR_RETURN(std::string config_text,
                         ReadFile(dir_ + "/config.json"));
  nlohmann::json config = nlohmann::json::parse(config_text, nullptr, false);
  if (config.is_discarded() || !config.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir_, "/config.json: not a valid JSON object"));
  }
  const char* dtype_name = dtype == torch::kBFloat16 ? "bfloat16" : "float16";
  config["torch_dtype"] = dtype_name;
  if (config.contains("dtype")) config["dtype"] = dtype_name;
  config.erase("quantization_config");
  LORAD_RETURN_IF_ERROR(
      WriteFileAtomic(out_dir + "/config.json", config.dump(2)));
  for (const char* f : kCopiedFiles) {
    const std::string from = absl::StrCat(dir_, "/", f);
    if (!fs::exists(from)) continue;
    LORAD_ASSIGN_OR_RETURN(std::string bytes, ReadFile(from));
    LORAD_RETURN_IF_ERROR(
        WriteFileAtomic(absl::StrCat(out_dir, "/", f), bytes));
  }
  return writer.total_bytes();
}

}  // namespace lorad::worker
