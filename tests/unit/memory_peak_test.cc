// The training memory estimate against the measured peak, one job per
// choice, each in a fresh process (the test binary run again as a child),
// so the peak is that job's and nothing earlier's. On the CPU the peak is
// the process's peak RSS and the estimate includes what the worker held at
// the job's start (MemoryEstimate.resident_bytes); the model is sized so
// the job's own memory (activations, adapter, optimizer) dominates it.
// LORAD_PEAK_DEVICE=cuda (and LORAD_PEAK_DTYPE=bfloat16) runs the same jobs
// on the GPU, where the peak is the caching allocator's peak allocation
// (bench/gpu/run_all.sh tests-train does this on a GPU host).
#include <spawn.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lorad/common/files.h"
#include "lorad/model/base_quantization.h"
#include "lorad/model/tiny_model.h"
#include "lorad/worker/device_memory.h"
#include "lorad/worker/trainer.h"

extern char** environ;

namespace lorad::worker {
namespace {

constexpr double kTolerance = 0.15;

model::ModelConfig PeakModelConfig() {
  model::ModelConfig c = model::TinyModelConfig();
  c.hidden_size = 512;
  c.intermediate_size = 1408;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 4;
  c.head_dim = 64;
  return c;
}

std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

std::string Root() { return ::testing::TempDir() + "/memory_peak_test"; }

struct Choice {
  std::string name;
  std::string optimizer;
  bool gradient_checkpointing;
  std::string method = "sft";  // dpo trains on the preference file
  model::BaseQuantization base = model::BaseQuantization::kNf4;
  // A model like the others with this vocabulary (0: PeakModelConfig's),
  // whose logits pass kLogitsChunkBytes, so the head runs in chunks.
  int64_t vocab_size = 0;
};

std::string ModelDir(const Choice& c) {
  return c.vocab_size == 0 ? Root() + "/model"
                           : absl::StrCat(Root(), "/model_v", c.vocab_size);
}

const std::vector<Choice>& Choices() {
  static const auto* choices = new std::vector<Choice>{
      {"adamw", "adamw", false},
      {"adamw_checkpointed", "adamw", true},
      {"adamw_8bit", "adamw_8bit", false},
      {"paged_adamw", "paged_adamw", false},
      {"paged_adamw_8bit", "paged_adamw_8bit", false},
      {"dpo", "adamw", false, "dpo"},
      {"int8_base", "adamw", false, "sft", model::BaseQuantization::kInt8},
      {"chunked_head", "adamw", false, "sft", model::BaseQuantization::kNf4,
       32000},
  };
  return *choices;
}

// The child: one job, then "estimate peak" into $LORAD_PEAK_OUT.
TEST(MemoryPeak, Child) {
  const char* which = std::getenv("LORAD_PEAK_CHOICE");
  const char* out = std::getenv("LORAD_PEAK_OUT");
  if (which == nullptr || out == nullptr) {
    GTEST_SKIP() << "run by MemoryPeak.EstimateWithinFifteenPercent";
  }
  const Choice* choice = nullptr;
  for (const Choice& c : Choices()) {
    if (c.name == which) choice = &c;
  }
  ASSERT_NE(choice, nullptr) << which;
  ReturnLargeHostBlocks();  // as lorad-worker's main does
  LoadOptions load;
  load.quantization = choice->base;
  const std::string device = EnvOr("LORAD_PEAK_DEVICE", "cpu");
  const std::string dtype = EnvOr("LORAD_PEAK_DTYPE", "float32");
  load.device = torch::Device(device);
  load.dtype = dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32;
  auto model = LlamaModel::Load(ModelDir(*choice), load);
  ASSERT_TRUE(model.ok()) << model.status();
  TrainJob job;
  job.job_id = choice->name;
  job.base_model_name = "peak";
  job.training_path =
      Root() + (choice->method == "dpo" ? "/pairs.jsonl" : "/train.jsonl");
  job.job_dir = Root() + "/jobs/" + choice->name;
  job.adapter_dir = Root() + "/adapters/" + choice->name;
  auto& hp = job.hp;
  hp.set_rank(64);
  hp.set_alpha(16);
  for (const char* t : {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                        "up_proj", "down_proj"}) {
    hp.add_target_modules(t);
  }
  hp.set_learning_rate(1e-3f);
  hp.set_batch_size(16);
  hp.set_gradient_accumulation(1);
  hp.set_max_grad_norm(1.0f);
  hp.set_lr_scheduler("constant");
  hp.set_max_seq_len(256);
  hp.set_seed(5);
  hp.set_max_steps(1);  // the peak is the first backward
  hp.set_optimizer(choice->optimizer);
  hp.set_gradient_checkpointing(choice->gradient_checkpointing);
  hp.set_compute_dtype(dtype);
  hp.set_method(choice->method);
  if (choice->method == "dpo") {
    hp.set_batch_size(8);  // 8 pairs: 16 sequences, as the others
    hp.set_dpo_beta(0.1f);
    hp.set_dpo_loss_type("sigmoid");
  }
  hp.set_quantization(std::string(model::BaseQuantizationName(choice->base)));
  int64_t peak = 0;
  lorad::worker::v1::MemoryEstimate est;
  TrainCallbacks cb;
  cb.on_event = [&](const lorad::worker::v1::TrainEvent& e) {
    if (e.has_started()) est = e.started().memory_estimate();
    if (e.has_finished()) peak = e.finished().peak_memory_bytes();
  };
  absl::Status status = RunTraining(**model, job, cb);
  ASSERT_TRUE(status.ok()) << status;
  std::ofstream(out) << est.total_bytes() << " " << peak << " "
                     << est.resident_bytes() << " " << est.activation_bytes()
                     << "\n";
}

TEST(MemoryPeak, EstimateWithinFifteenPercent) {
  if (std::getenv("LORAD_PEAK_CHOICE") != nullptr) GTEST_SKIP();
  std::filesystem::remove_all(Root());
  ASSERT_TRUE(MakeDirs(Root()).ok());
  for (const Choice& choice : Choices()) {
    if (std::filesystem::exists(ModelDir(choice))) continue;
    model::ModelConfig config = PeakModelConfig();
    if (choice.vocab_size > 0) config.vocab_size = choice.vocab_size;
    ASSERT_TRUE(model::WriteRandomLlama(ModelDir(choice), config, 11).ok());
  }
  // Sequences of 256 bytes, so every row of a batch is full length.
  std::string data;
  for (int i = 0; i < 16; ++i) {
    data += absl::StrCat("{\"text\": \"", std::string(300, 'a' + i), "\"}\n");
  }
  ASSERT_TRUE(WriteFileAtomic(Root() + "/train.jsonl", data).ok());
  // Pairs of a short prompt and two 240-byte completions.
  std::string pairs;
  for (int i = 0; i < 8; ++i) {
    pairs += absl::StrCat("{\"prompt\": \"p", i, "\", \"chosen\": \"",
                          std::string(240, 'a' + i), "\", \"rejected\": \"",
                          std::string(240, 'k' + i), "\"}\n");
  }
  ASSERT_TRUE(WriteFileAtomic(Root() + "/pairs.jsonl", pairs).ok());
  const char* only = std::getenv("LORAD_PEAK_ONLY");
  for (const Choice& choice : Choices()) {
    if (only != nullptr && choice.name != only) continue;
    const std::string out = Root() + "/" + choice.name + ".txt";
    std::vector<std::string> env_text;
    for (char** e = environ; *e != nullptr; ++e) env_text.push_back(*e);
    env_text.push_back("LORAD_PEAK_CHOICE=" + choice.name);
    env_text.push_back("LORAD_PEAK_OUT=" + out);
    std::vector<char*> envp;
    for (std::string& e : env_text) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string self = std::filesystem::read_symlink("/proc/self/exe");
    std::string filter = "--gtest_filter=MemoryPeak.Child";
    char* argv[] = {self.data(), filter.data(), nullptr};
    pid_t pid = 0;
    ASSERT_EQ(
        posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv, envp.data()),
        0);
    int wstatus = 0;
    ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
    ASSERT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)
        << choice.name << ": the child job failed";
    int64_t estimate = 0, peak = 0, resident = 0, activations = 0;
    std::ifstream in(out);
    ASSERT_TRUE(in >> estimate >> peak >> resident >> activations)
        << choice.name;
    ASSERT_GT(peak, 0) << choice.name;
    const double ratio =
        static_cast<double>(estimate) / static_cast<double>(peak);
    std::printf(
        "%-20s estimate %8.1f MiB  peak %8.1f MiB  ratio %.3f  (resident "
        "%.1f MiB, activations %.1f MiB)\n",
        choice.name.c_str(), estimate / 1048576.0, peak / 1048576.0, ratio,
        resident / 1048576.0, activations / 1048576.0);
    EXPECT_NEAR(ratio, 1.0, kTolerance)
        << choice.name << ": estimate " << estimate << " vs peak " << peak;
  }
}

}  // namespace
}  // namespace lorad::worker
