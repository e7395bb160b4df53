// train_bench: lorad's side of the training benchmark. Runs a QLoRA job
// through the same RunTraining the worker uses, on the NF4 base (or the
// LLM.int8 one: --quantization=int8), and prints
// one JSON object: tokens/s over the steps after the first, the process's
// peak RSS, the memory estimate, and the losses. bench/train_bench.py runs
// it beside HF transformers + PEFT on the same weights and data.
//
//   train_bench --model=tiny|llama-100m|DIR --data=FILE.jsonl --steps=10
//   train_bench --model=llama-100m --write_model_only   # just write weights
#include <sys/resource.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "bench_models.h"
#include "lorad/model/base_quantization.h"
#include "lorad/model/memory_estimate.h"
#include "lorad/model/tiny_model.h"
#include "lorad/worker/device_memory.h"
#include "lorad/worker/intra_op_threads.h"
#include "lorad/worker/llama_model.h"
#include "lorad/worker/trainer.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, model, "tiny",
          "tiny, llama-100m, llama-100m-v128k or a HF directory.");
ABSL_FLAG(std::string, cache_dir, "/tmp/lorad-bench-models",
          "Where the built-in random models are written.");
ABSL_FLAG(std::string, data, "", "Training JSONL.");
ABSL_FLAG(std::string, work_dir, "/tmp/lorad-train-bench",
          "Checkpoints and the adapter go here (wiped first).");
ABSL_FLAG(int, steps, 10, "Optimizer steps.");
ABSL_FLAG(int, batch, 4, "Sequences per step.");
ABSL_FLAG(int, seq, 128, "Sequence length (examples are packed).");
ABSL_FLAG(int, rank, 8, "LoRA rank.");
ABSL_FLAG(double, alpha, 16, "LoRA alpha.");
ABSL_FLAG(double, lr, 1e-4, "Learning rate.");
ABSL_FLAG(bool, gradient_checkpointing, true, "Recompute blocks in backward.");
ABSL_FLAG(int, threads, 0, "LibTorch intra-op threads (0: default).");
ABSL_FLAG(std::string, device, "cpu", "cpu or cuda[:N].");
ABSL_FLAG(std::string, compute_dtype, "float32", "float32 or bfloat16.");
ABSL_FLAG(std::string, quantization, "nf4",
          "The base's block linears: nf4 (double quantized) or int8 "
          "(LLM.int8).");
ABSL_FLAG(int64_t, logits_chunk_bytes, lorad::model::kLogitsChunkBytes,
          "Past this many bytes of fp32 logits the head and its loss run a "
          "chunk of rows at a time (0: the whole logits at once).");
ABSL_FLAG(bool, write_model_only, false, "Write the model directory, exit.");
ABSL_FLAG(bool, return_large_host_blocks, true,
          "Give large freed host blocks back at once, as lorad-worker does "
          "(false: glibc's growing mmap threshold).");

namespace {

using lorad::model::ModelConfig;

int64_t PeakRssBytes() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;
}

int Fail(const absl::Status& status) {
  std::cerr << "train_bench: " << status << "\n";
  return 1;
}

}  // namespace

int Run();

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "train_bench --model=tiny|llama-100m|DIR --data=FILE.jsonl");
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_return_large_host_blocks)) {
    lorad::worker::ReturnLargeHostBlocks();
  }
  try {
    return Run();
  } catch (const c10::Error& e) {
    // E.g. --device=cuda where there is none: an error, not an abort.
    std::cerr << "train_bench: " << e.what_without_backtrace() << "\n";
    return 1;
  }
}

int Run() {
  lorad::worker::SetLogitsChunkBytes(absl::GetFlag(FLAGS_logits_chunk_bytes));
  if (absl::GetFlag(FLAGS_threads) > 0) {
    torch::set_num_threads(absl::GetFlag(FLAGS_threads));
    lorad::worker::SetMaxIntraOpThreads(absl::GetFlag(FLAGS_threads));
  }
  auto dir = lorad::bench::BenchModelDir(absl::GetFlag(FLAGS_model),
                                         absl::GetFlag(FLAGS_cache_dir));
  if (!dir.ok()) return Fail(dir.status());
  if (absl::GetFlag(FLAGS_write_model_only)) {
    std::cout << nlohmann::json({{"model_dir", *dir}}).dump() << std::endl;
    return 0;
  }
  if (absl::GetFlag(FLAGS_data).empty()) {
    std::cerr << "train_bench: --data is required\n";
    return 2;
  }

  auto quantization =
      lorad::model::ParseBaseQuantization(absl::GetFlag(FLAGS_quantization));
  if (!quantization.ok()) return Fail(quantization.status());
  lorad::worker::LoadOptions load;
  load.quantization = *quantization;
  load.device = torch::Device(absl::GetFlag(FLAGS_device));
  load.dtype = absl::GetFlag(FLAGS_compute_dtype) == "bfloat16"
                   ? torch::kBFloat16
                   : torch::kFloat32;
  const auto load_start = std::chrono::steady_clock::now();
  auto model = lorad::worker::LlamaModel::Load(*dir, load);
  if (!model.ok()) return Fail(model.status());
  const double load_seconds = std::chrono::duration<double>(
                                  std::chrono::steady_clock::now() - load_start)
                                  .count();

  const std::string work = absl::GetFlag(FLAGS_work_dir);
  std::error_code ec;
  std::filesystem::remove_all(work, ec);
  lorad::worker::TrainJob job;
  job.job_id = "bench";
  job.base_model_name = absl::GetFlag(FLAGS_model);
  job.training_path = absl::GetFlag(FLAGS_data);
  job.job_dir = work + "/job";
  job.adapter_dir = work + "/adapter";
  auto& hp = job.hp;
  hp.set_rank(absl::GetFlag(FLAGS_rank));
  hp.set_alpha(static_cast<float>(absl::GetFlag(FLAGS_alpha)));
  lorad::bench::SetBenchTraining(
      absl::GetFlag(FLAGS_steps), absl::GetFlag(FLAGS_batch),
      absl::GetFlag(FLAGS_seq), absl::GetFlag(FLAGS_gradient_checkpointing),
      absl::GetFlag(FLAGS_compute_dtype), &hp);
  hp.set_learning_rate(static_cast<float>(absl::GetFlag(FLAGS_lr)));
  hp.set_seed(42);
  hp.set_quantization(absl::GetFlag(FLAGS_quantization));

  // Wall time of each step, measured between step events.
  std::vector<double> step_seconds;
  std::vector<int64_t> step_tokens;
  std::vector<float> losses;
  nlohmann::json estimate;
  double bytes_per_param = 0;
  int64_t reported_peak = 0;
  auto last = std::chrono::steady_clock::now();
  int64_t last_tokens = 0;
  lorad::worker::TrainCallbacks callbacks;
  callbacks.cancelled = [] { return false; };
  callbacks.on_event = [&](const lorad::worker::v1::TrainEvent& e) {
    const auto now = std::chrono::steady_clock::now();
    if (e.has_started()) {
      const auto& m = e.started().memory_estimate();
      estimate = {{"resident_bytes", m.resident_bytes()},
                  {"base_bytes", m.base_bytes()},
                  {"adapter_bytes", m.adapter_bytes()},
                  {"optimizer_bytes", m.optimizer_bytes()},
                  {"activation_bytes", m.activation_bytes()},
                  {"total_bytes", m.total_bytes()}};
      bytes_per_param = e.started().base_bytes_per_param();
      last = now;
    } else if (e.has_step()) {
      step_seconds.push_back(std::chrono::duration<double>(now - last).count());
      step_tokens.push_back(e.step().tokens_seen() - last_tokens);
      losses.push_back(e.step().loss());
      last_tokens = e.step().tokens_seen();
      last = now;
    } else if (e.has_finished()) {
      reported_peak = e.finished().peak_memory_bytes();
    }
  };
  absl::Status status = lorad::worker::RunTraining(**model, job, callbacks);
  if (!status.ok()) return Fail(status);

  // The first step pays for allocations and lazy initialisation.
  double seconds = 0;
  int64_t tokens = 0;
  for (size_t i = step_seconds.size() > 1 ? 1 : 0; i < step_seconds.size();
       ++i) {
    seconds += step_seconds[i];
    tokens += step_tokens[i];
  }
  const ModelConfig& config = (*model)->config();
  nlohmann::json out = {
      {"bench", "train"},
      {"impl", "lorad"},
      {"model", absl::GetFlag(FLAGS_model)},
      {"params", config.NumParameters()},
      {"device", load.device.str()},
      {"compute_dtype", absl::GetFlag(FLAGS_compute_dtype)},
      {"base", *quantization == lorad::model::BaseQuantization::kNf4
                   ? "nf4-double-quant"
                   : "llm-int8"},
      {"base_bytes_per_param", bytes_per_param},
      {"steps", step_seconds.size()},
      {"batch", absl::GetFlag(FLAGS_batch)},
      {"seq", absl::GetFlag(FLAGS_seq)},
      {"rank", absl::GetFlag(FLAGS_rank)},
      {"gradient_checkpointing", absl::GetFlag(FLAGS_gradient_checkpointing)},
      {"logits_chunk_bytes", lorad::worker::LogitsChunkBytes()},
      {"logits_chunk_rows",
       (*model)->LogitsChunkRows(int64_t{absl::GetFlag(FLAGS_batch)} *
                                 absl::GetFlag(FLAGS_seq))},
      {"threads", torch::get_num_threads()},
      {"return_large_host_blocks",
       absl::GetFlag(FLAGS_return_large_host_blocks)},
      {"load_seconds", load_seconds},
      {"tokens_per_second", seconds > 0 ? tokens / seconds : 0.0},
      {"first_loss", losses.empty() ? 0.0f : losses.front()},
      {"last_loss", losses.empty() ? 0.0f : losses.back()},
      {"peak_rss_bytes", PeakRssBytes()},
      {"reported_peak_bytes", reported_peak},
      {"memory_estimate", estimate},
  };
  std::cout << out.dump() << std::endl;
  return 0;
}
