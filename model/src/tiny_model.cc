#include "lorad/model/tiny_model.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lorad/common/files.h"
#include "lorad/common/status_macros.h"
#include "lorad/model/safetensors.h"
#include "lorad/model/tokenizer.h"

namespace lorad::model {
namespace {

constexpr uint64_t kTinySeed = 20240229;

// Holds an exclusive flock(2) on a file for its lifetime. flock locks belong
// to the open file, so two threads of one process exclude each other as two
// processes do.
class FileLock {
 public:
  static absl::StatusOr<FileLock> Take(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return absl::InternalError(absl::StrCat("cannot open lock file ", path,
                                              ": ", std::strerror(errno)));
    }
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      return absl::InternalError(
          absl::StrCat("cannot lock ", path, ": ", std::strerror(error)));
    }
    return FileLock(fd);
  }
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

struct OwnedTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

}  // namespace

ModelConfig TinyModelConfig() {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.model_type = "llama";
  c.vocab_size = 259;
  c.hidden_size = 64;
  c.intermediate_size = 176;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.max_position_embeddings = 1024;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.bos_token_id = 256;
  c.eos_token_ids = {257};
  c.pad_token_id = 258;
  return c;
}

absl::Status WriteRandomLlama(const std::string& dir, const ModelConfig& c,
                              uint64_t seed) {
  LORAD_RETURN_IF_ERROR(MakeDirs(dir));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<OwnedTensor> tensors;
  // Linears draw from N(0, 1/in) so the blocks do something; the output head
  // is wide enough (std 4/sqrt(hidden)) that a small model can reach low loss
  // once the adapter learns, which makes it a useful test subject.
  auto add_random = [&](std::string name, int64_t rows, int64_t cols,
                        float std) {
    std::normal_distribution<float> dist(0.0f, std);
    OwnedTensor t{std::move(name), {rows, cols}, {}};
    t.values.resize(rows * cols);
    for (float& v : t.values) v = dist(rng);
    tensors.push_back(std::move(t));
  };
  auto add_linear = [&](std::string name, int64_t rows, int64_t cols) {
    add_random(std::move(name), rows, cols,
               1.0f / std::sqrt(static_cast<float>(cols)));
  };
  auto add_ones = [&](std::string name, int64_t n) {
    tensors.push_back({std::move(name), {n}, std::vector<float>(n, 1.0f)});
  };
  auto add_bias = [&](std::string name, int64_t n) {
    OwnedTensor t{std::move(name), {n}, std::vector<float>(n)};
    for (float& v : t.values) v = normal(rng);
    tensors.push_back(std::move(t));
  };
  const int64_t h = c.hidden_size, q = c.num_attention_heads * c.head_dim,
                kv = c.num_key_value_heads * c.head_dim,
                inter = c.intermediate_size;
  add_random("model.embed_tokens.weight", c.vocab_size, h, 1.0f);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    std::string p = absl::StrCat("model.layers.", i, ".");
    add_linear(p + "self_attn.q_proj.weight", q, h);
    add_linear(p + "self_attn.k_proj.weight", kv, h);
    add_linear(p + "self_attn.v_proj.weight", kv, h);
    add_linear(p + "self_attn.o_proj.weight", h, q);
    if (c.qkv_bias) {
      add_bias(p + "self_attn.q_proj.bias", q);
      add_bias(p + "self_attn.k_proj.bias", kv);
      add_bias(p + "self_attn.v_proj.bias", kv);
    }
    if (c.o_bias) add_bias(p + "self_attn.o_proj.bias", h);
    add_linear(p + "mlp.gate_proj.weight", inter, h);
    add_linear(p + "mlp.up_proj.weight", inter, h);
    add_linear(p + "mlp.down_proj.weight", h, inter);
    add_ones(p + "input_layernorm.weight", h);
    add_ones(p + "post_attention_layernorm.weight", h);
  }
  add_ones("model.norm.weight", h);
  if (!c.tie_word_embeddings) {
    add_random("lm_head.weight", c.vocab_size, h,
               4.0f / std::sqrt(static_cast<float>(h)));
  }

  std::vector<TensorToWrite> out;
  out.reserve(tensors.size());
  for (const OwnedTensor& t : tensors) {
    out.push_back(
        {t.name, DType::kF32, t.shape,
         std::string_view(reinterpret_cast<const char*>(t.values.data()),
                          t.values.size() * sizeof(float))});
  }
  LORAD_RETURN_IF_ERROR(
      WriteSafetensors(absl::StrCat(dir, "/model.safetensors"), std::move(out),
                       {{"format", "pt"}}));
  LORAD_RETURN_IF_ERROR(WriteFileAtomic(absl::StrCat(dir, "/tokenizer.json"),
                                        MakeByteLevelTokenizerJson()));
  // config.json last: its presence marks a complete directory.
  return WriteFileAtomic(absl::StrCat(dir, "/config.json"), c.ToJson());
}

absl::StatusOr<std::string> ResolveModelDir(const std::string& model,
                                            const std::string& cache_dir) {
  if (!model.empty() && model != kTinyModelName) {
    if (!std::filesystem::exists(model)) {
      return absl::NotFoundError(
          absl::StrCat("model path ", model, " does not exist"));
    }
    return model;
  }
  std::string dir = absl::StrCat(cache_dir, "/", kTinyModelName);
  if (std::filesystem::exists(dir + "/config.json")) return dir;
  // One writer: whoever takes the lock writes; the others (threads or
  // processes) wait for it and then find the directory complete.
  LORAD_RETURN_IF_ERROR(MakeDirs(cache_dir));
  absl::StatusOr<FileLock> lock = FileLock::Take(absl::StrCat(dir, ".lock"));
  if (!lock.ok()) return lock.status();
  if (!std::filesystem::exists(dir + "/config.json")) {
    LORAD_RETURN_IF_ERROR(WriteRandomLlama(dir, TinyModelConfig(), kTinySeed));
  }
  return dir;
}

absl::StatusOr<ModelConfig> ModelConfigOf(const std::string& model) {
  if (model.empty() || model == kTinyModelName) return TinyModelConfig();
  return ModelConfig::FromDir(model);
}

}  // namespace lorad::model
