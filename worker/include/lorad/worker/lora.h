// LoRA adapters kept apart from the frozen base: an AdapterSet maps module
// keys ("model.layers.3.self_attn.q_proj", model::BlockLinearKey) to their
// A [r, in] and B [out, r] matrices, and reads and writes the PEFT layout
// (adapter_config.json + adapter_model.safetensors) by the one rule set of
// lorad/model/peft_adapter.h, so adapters move freely between lorad and PEFT.
#ifndef LORAD_WORKER_LORA_H_
#define LORAD_WORKER_LORA_H_

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lorad/model/model_config.h"

namespace lorad::worker {

struct LoraOptions {
  int64_t rank = 8;
  double alpha = 16.0;
  double dropout = 0.0;
  // Short module names (model::kBlockLinearNames).
  std::vector<std::string> target_modules;
};

struct LoraWeights {
  torch::Tensor a;  // [r, in]
  torch::Tensor b;  // [out, r]
};

// The LoRA update for input x [..., in]: (dropout(x) A^T) B^T * scale.
// Dropout applies only when `training` and dropout > 0. Its mask comes from
// `generator` when that is defined (a job's own, so that its masks depend
// on its seed alone, whoever else trains beside it), else from LibTorch's
// default generator. With x [rows, T, in], `length` >= 0 draws the mask for
// the first `length` positions only (those of a shorter batch padded on
// the right to T; the padding's positions are kept undropped), so a padded
// batch draws what it draws unpadded.
torch::Tensor LoraDelta(const torch::Tensor& x, const LoraWeights& w,
                        double scale, double dropout, bool training,
                        const at::Generator& generator = {},
                        int64_t length = -1);

// A generator for one job's random draws on `device`, seeded with `seed`
// (of the device's kind: a CPU or CUDA generator).
at::Generator NewGenerator(torch::Device device, uint64_t seed);

class AdapterSet {
 public:
  // A new adapter for training: A from PEFT's default (Kaiming-uniform with
  // a = sqrt(5)), B zero, drawn from a generator seeded with `seed`.
  // InvalidArgument for an unknown target name or rank < 1.
  static absl::StatusOr<AdapterSet> CreateForTraining(
      const model::ModelConfig& config, const LoraOptions& options,
      uint64_t seed, torch::Device device);

  // Reads a PEFT adapter directory and checks it against `config` by
  // model::OpenPeftAdapter's rules. NotFound (a file missing) /
  // InvalidArgument, the message "<dir>: " + what OpenPeftAdapter says.
  // options().target_modules are the modules that carry weights.
  static absl::StatusOr<AdapterSet> LoadPeft(const std::string& dir,
                                             const model::ModelConfig& config,
                                             torch::Device device);

  // Writes adapter_config.json and adapter_model.safetensors (fp32) into
  // `dir`, each file atomically.
  absl::Status SavePeft(const std::string& dir,
                        const std::string& base_model_name) const;

  // nullptr when `key` carries no adapter.
  const LoraWeights* Find(const std::string& key) const;
  const std::map<std::string, LoraWeights>& weights() const { return weights_; }
  std::vector<torch::Tensor> Parameters() const;
  // Parameters of one block (for checkpointed recompute).
  std::vector<torch::Tensor> LayerParameters(int64_t layer) const;
  int64_t NumParameters() const;

  const LoraOptions& options() const { return options_; }
  double scale() const { return options_.alpha / options_.rank; }

  // adapter_config.json's base_model_name_or_path ("" when absent or for an
  // adapter created here).
  const std::string& base_model_name() const { return base_model_name_; }

  // A copy whose tensors live on `device` in `dtype` (no autograd). When
  // the tensors already are there, the copy shares their storage.
  AdapterSet CopyTo(torch::Device device, torch::ScalarType dtype) const;

  // Bytes held by all A and B tensors.
  int64_t SizeBytes() const;

 private:
  // Rebuilds by_layer_ from weights_.
  void IndexLayers();

  LoraOptions options_;
  std::string base_model_name_;
  std::map<std::string, LoraWeights> weights_;
  std::map<int64_t, std::vector<torch::Tensor>> by_layer_;
};

}  // namespace lorad::worker

#endif  // LORAD_WORKER_LORA_H_
