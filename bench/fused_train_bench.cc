// fused_train_bench: many fine-tune jobs on one base. Runs the same N jobs
// (different seeds, learning rates and ranks, one dataset) twice in one
// process: one after another, each alone, then all at once in a
// TrainingGroup, their micro-batches fused into one forward and backward
// per pass (what lorad-worker does with --max_concurrent_jobs > 1). Prints
// one JSON object: each way's wall time and tokens/s over all jobs, and
// their ratio (the goal: >= 1.5). OpenMP waits passively, as in
// lorad-worker.
//
//   fused_train_bench --model=tiny --jobs=4 --steps=20
//   fused_train_bench --model=llama-100m --device=cuda --compute_dtype=bfloat16
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "bench_models.h"
#include "lorad/common/files.h"
#include "lorad/worker/device_memory.h"
#include "lorad/worker/intra_op_threads.h"
#include "lorad/worker/llama_model.h"
#include "lorad/worker/trainer.h"
#include "lorad/worker/training_group.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, model, "tiny", "tiny, llama-100m or a HF directory.");
ABSL_FLAG(std::string, cache_dir, "/tmp/lorad-bench-models",
          "Where the built-in random models are written.");
ABSL_FLAG(std::string, data, "",
          "Training JSONL (empty: 64 generated prompt/completion lines).");
ABSL_FLAG(std::string, work_dir, "/tmp/lorad-fused-train-bench",
          "Checkpoints and adapters go here (wiped first).");
ABSL_FLAG(int, jobs, 4, "Jobs run one after another, then at once.");
ABSL_FLAG(int, steps, 20, "Optimizer steps per job.");
ABSL_FLAG(int, batch, 4, "Sequences per micro-batch per job.");
ABSL_FLAG(int, seq, 128, "Sequence length (examples are packed).");
ABSL_FLAG(bool, gradient_checkpointing, false, "Recompute blocks in backward.");
ABSL_FLAG(std::string, device, "cpu", "cpu or cuda[:N].");
ABSL_FLAG(std::string, compute_dtype, "float32", "float32 or bfloat16.");
ABSL_FLAG(bool, return_large_host_blocks, true,
          "Give large freed host blocks back at once, as lorad-worker does.");
ABSL_FLAG(int, threads, 0, "LibTorch intra-op threads (0: its default).");
ABSL_FLAG(int, rounds, 2,
          "Each round runs the jobs one after another, then at once; the "
          "totals over all rounds are compared (runs alternate, so drift "
          "in the machine's speed falls on both ways).");
ABSL_FLAG(int64_t, max_fused_bytes,
          lorad::worker::TrainingGroup::kDefaultMaxFusedBytes,
          "Bound on a fused pass's widest activation (training_group.h; -1: "
          "the worker's default, 0: none).");
ABSL_FLAG(int, lanes, lorad::worker::TrainingGroup::kDefaultLanes,
          "Most fused passes side by side (training_group.h; -1: the "
          "worker's default, 1: one lane).");
ABSL_FLAG(int64_t, parallel_gemm_macs, lorad::worker::kParallelGemmMacs,
          "Passes whose widest GEMM has fewer multiply-adds run on one "
          "thread (intra_op_threads.h; 0: every pass on all threads).");
ABSL_FLAG(std::string, only, "",
          "\"alone\" or \"fused\": run just that way (for profiling).");

namespace {

// As lorad-worker does (worker_main.cc): OpenMP's threads wait passively
// between parallel regions, or several job threads calling LibTorch at once
// spin against each other. libgomp reads the setting when it loads, so the
// bench re-executes itself once with it unless the caller chose a policy.
void EnsurePassiveOpenMpWait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  ::setenv("OMP_WAIT_POLICY", "passive", 1);
  ::execv("/proc/self/exe", argv);
}

int Fail(const absl::Status& status) {
  std::cerr << "fused_train_bench: " << status << "\n";
  return 1;
}

// Prompt/completion lines of random words, from a fixed seed.
std::string GeneratedData() {
  static const char* kWords[] = {"red",   "green", "blue",  "apple", "river",
                                 "stone", "cloud", "quick", "brown", "fox",
                                 "jumps", "over",  "lazy",  "dog",   "light"};
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> word(0, 14), len(8, 24);
  std::string out;
  for (int i = 0; i < 64; ++i) {
    std::string prompt, completion;
    for (int w = len(rng); w > 0; --w)
      absl::StrAppend(&prompt, kWords[word(rng)], " ");
    for (int w = len(rng); w > 0; --w)
      absl::StrAppend(&completion, " ", kWords[word(rng)]);
    nlohmann::json line = {{"prompt", prompt}, {"completion", completion}};
    out += line.dump() + "\n";
  }
  return out;
}

lorad::worker::TrainJob MakeJob(int i, const std::string& data,
                                const std::string& work,
                                const std::string& tag) {
  lorad::worker::TrainJob job;
  job.job_id = absl::StrCat(tag, "-", i);
  job.base_model_name = absl::GetFlag(FLAGS_model);
  job.training_path = data;
  job.job_dir = absl::StrCat(work, "/", tag, "/job", i);
  job.adapter_dir = absl::StrCat(work, "/", tag, "/adapter", i);
  auto& hp = job.hp;
  hp.set_rank(i % 2 == 0 ? 8 : 16);
  hp.set_alpha(16);
  lorad::bench::SetBenchTraining(
      absl::GetFlag(FLAGS_steps), absl::GetFlag(FLAGS_batch),
      absl::GetFlag(FLAGS_seq), absl::GetFlag(FLAGS_gradient_checkpointing),
      absl::GetFlag(FLAGS_compute_dtype), &hp);
  hp.set_learning_rate(1e-4f * static_cast<float>(1 + i));
  hp.set_seed(100 + i);
  return job;
}

struct Outcome {
  double seconds = 0;
  int64_t tokens = 0;
  absl::Status status;
};

// Runs `jobs` (alone, in order, when group is null; else all at once).
Outcome RunJobs(const lorad::worker::LlamaModel& model,
                const std::vector<lorad::worker::TrainJob>& jobs,
                lorad::worker::TrainingGroup* group) {
  std::vector<int64_t> tokens(jobs.size(), 0);
  std::vector<absl::Status> status(jobs.size());
  auto run = [&](size_t i) {
    lorad::worker::TrainCallbacks cb;
    cb.group = group;
    cb.on_event = [&, i](const lorad::worker::v1::TrainEvent& e) {
      if (e.has_step()) tokens[i] = e.step().tokens_seen();
    };
    status[i] = lorad::worker::RunTraining(model, jobs[i], cb);
  };
  const auto start = std::chrono::steady_clock::now();
  if (group == nullptr) {
    // On a thread of its own, as lorad-worker runs every job (the main
    // thread's allocator arena behaves differently from a thread's).
    std::thread t([&] {
      for (size_t i = 0; i < jobs.size(); ++i) run(i);
    });
    t.join();
  } else {
    group->ExpectJoins(static_cast<int>(jobs.size()));
    std::vector<std::thread> threads;
    for (size_t i = 0; i < jobs.size(); ++i) threads.emplace_back(run, i);
    for (std::thread& t : threads) t.join();
  }
  if (model.device().is_cuda()) torch::cuda::synchronize();
  Outcome out;
  out.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  for (size_t i = 0; i < jobs.size(); ++i) {
    out.tokens += tokens[i];
    if (!status[i].ok() && out.status.ok()) out.status = status[i];
  }
  return out;
}

nlohmann::json Report(const Outcome& o) {
  return {{"seconds", o.seconds},
          {"tokens", o.tokens},
          {"tokens_per_second", o.seconds > 0 ? o.tokens / o.seconds : 0}};
}

}  // namespace

int main(int argc, char** argv) {
  EnsurePassiveOpenMpWait(argv);
  absl::SetProgramUsageMessage("fused_train_bench --model=tiny --jobs=4");
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_return_large_host_blocks)) {
    lorad::worker::ReturnLargeHostBlocks();
  }
  lorad::worker::SetParallelGemmMacs(absl::GetFlag(FLAGS_parallel_gemm_macs));
  if (absl::GetFlag(FLAGS_threads) > 0) {
    torch::set_num_threads(absl::GetFlag(FLAGS_threads));
    lorad::worker::SetMaxIntraOpThreads(absl::GetFlag(FLAGS_threads));
  }
  try {
    auto dir = lorad::bench::BenchModelDir(absl::GetFlag(FLAGS_model),
                                           absl::GetFlag(FLAGS_cache_dir));
    if (!dir.ok()) return Fail(dir.status());
    const std::string work = absl::GetFlag(FLAGS_work_dir);
    std::error_code ec;
    std::filesystem::remove_all(work, ec);
    if (absl::Status s = lorad::MakeDirs(work); !s.ok()) return Fail(s);
    std::string data = absl::GetFlag(FLAGS_data);
    if (data.empty()) {
      data = work + "/data.jsonl";
      if (absl::Status s = lorad::WriteFileAtomic(data, GeneratedData());
          !s.ok()) {
        return Fail(s);
      }
    }
    lorad::worker::LoadOptions load;
    load.device = torch::Device(absl::GetFlag(FLAGS_device));
    load.dtype = absl::GetFlag(FLAGS_compute_dtype) == "bfloat16"
                     ? torch::kBFloat16
                     : torch::kFloat32;
    auto model = lorad::worker::LlamaModel::Load(*dir, load);
    if (!model.ok()) return Fail(model.status());

    const int n = absl::GetFlag(FLAGS_jobs);
    std::vector<lorad::worker::TrainJob> alone, fused;
    for (int i = 0; i < n; ++i) {
      alone.push_back(MakeJob(i, data, work, "alone"));
      fused.push_back(MakeJob(i, data, work, "fused"));
    }
    // One short job first pays for lazy initialisation, for both ways.
    lorad::worker::TrainJob warm = MakeJob(0, data, work, "warmup");
    warm.hp.set_max_steps(2);
    Outcome warmup = RunJobs(**model, {warm}, nullptr);
    if (!warmup.status.ok()) return Fail(warmup.status);

    const std::string only = absl::GetFlag(FLAGS_only);
    Outcome one_by_one, together;
    lorad::worker::TrainingGroup group(model->get(), nullptr,
                                       absl::GetFlag(FLAGS_max_fused_bytes),
                                       absl::GetFlag(FLAGS_lanes));
    for (int round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
      if (only != "fused") {
        Outcome o = RunJobs(**model, alone, nullptr);
        if (!o.status.ok()) return Fail(o.status);
        one_by_one.seconds += o.seconds;
        one_by_one.tokens += o.tokens;
      }
      if (only != "alone") {
        Outcome o = RunJobs(**model, fused, &group);
        if (!o.status.ok()) return Fail(o.status);
        together.seconds += o.seconds;
        together.tokens += o.tokens;
      }
    }

    const double seq_tps = one_by_one.tokens / one_by_one.seconds;
    const double fused_tps = together.tokens / together.seconds;
    nlohmann::json fused_report = Report(together);
    fused_report["passes"] = group.passes();
    fused_report["fused_passes"] = group.fused_passes();
    fused_report["widest_round"] = group.widest_round();
    nlohmann::json out = {
        {"bench", "fused_train"},
        {"model", absl::GetFlag(FLAGS_model)},
        {"device", load.device.str()},
        {"compute_dtype", absl::GetFlag(FLAGS_compute_dtype)},
        {"jobs", n},
        {"steps_per_job", absl::GetFlag(FLAGS_steps)},
        {"batch_per_job", absl::GetFlag(FLAGS_batch)},
        {"seq", absl::GetFlag(FLAGS_seq)},
        {"gradient_checkpointing", absl::GetFlag(FLAGS_gradient_checkpointing)},
        {"torch_threads", lorad::worker::MaxIntraOpThreads()},
        {"parallel_gemm_macs", lorad::worker::ParallelGemmMacs()},
        {"omp_wait_policy", std::getenv("OMP_WAIT_POLICY")},
        {"rounds", absl::GetFlag(FLAGS_rounds)},
        {"max_fused_bytes", absl::GetFlag(FLAGS_max_fused_bytes)},
        {"lanes", group.lanes()},
        {"one_after_another", Report(one_by_one)},
        {"at_once_fused", fused_report},
        {"ratio_tokens_per_second", fused_tps / seq_tps},
        {"goal_ratio", 1.5}};
    std::cout << out.dump(2) << std::endl;
    return 0;
  } catch (const c10::Error& e) {
    std::cerr << "fused_train_bench: " << e.what_without_backtrace() << "\n";
    return 1;
  }
}
