// serving_bench: the worker's serving engine in process. Prints one JSON
// object per result:
//   decode        tokens/s of the decode phase with N concurrent requests,
//                 on the base alone, one shared adapter, or N distinct ones
//   decode_ratio  distinct/base and shared/base at each N (the figure)
//   adapter_load  reading + validating + placing an adapter, and from the
//                 load call to its first served token
//   latency       inter-token and first-token latency p50/p99 of a steady
//                 stream of requests, without and with a training job
//                 running on the same device
//
//   serving_bench [--model=tiny,llama-100m|DIR] [--batch=1,8,32]
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "bench_models.h"
#include "bench_stats.h"
#include "lorad/common/files.h"
#include "lorad/model/tiny_model.h"
#include "lorad/worker/adapter_pool.h"
#include "lorad/worker/engine.h"
#include "lorad/worker/trainer.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, model, "tiny,llama-100m",
          "Comma-separated: tiny, llama-100m or HF directories.");
ABSL_FLAG(std::string, cache_dir, "/tmp/lorad-bench-models",
          "Where the built-in random models are written.");
ABSL_FLAG(std::string, work_dir, "/tmp/lorad-serving-bench",
          "Adapters and the training job go here (wiped first).");
ABSL_FLAG(std::string, batch, "1,8,32", "Concurrent requests to measure.");
ABSL_FLAG(int, new_tokens, 32, "Tokens generated per request.");
ABSL_FLAG(int, prompt_tokens, 16, "Prompt length in bytes (tokens).");
ABSL_FLAG(int, rank, 8, "LoRA rank of the adapters.");
ABSL_FLAG(int, repeats, 2, "Decode runs per mode; the best is reported.");
ABSL_FLAG(std::string, phases, "decode,load,latency", "What to measure.");
ABSL_FLAG(std::string, device, "cpu", "cpu or cuda[:N].");
ABSL_FLAG(std::string, compute_dtype, "float32", "float32 or bfloat16.");
ABSL_FLAG(int, threads, 0, "LibTorch intra-op threads (0: its default).");

namespace {

using namespace lorad::worker;  // NOLINT: a benchmark's main file
using Clock = std::chrono::steady_clock;
using nlohmann::json;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

using lorad::bench::Percentile;

struct Timing {
  Clock::time_point first, end;
  std::vector<double> gaps;              // seconds between streamed tokens
  std::vector<Clock::time_point> times;  // arrival of each token message
  int64_t tokens = 0;
  double ttft = 0;
  bool ok = false;
};

// Drains one stream, time-stamping each token as it arrives.
Timing Drain(GenerationStream& s, Clock::time_point submitted) {
  Timing t;
  lorad::worker::v1::GenerateChunk m;
  Clock::time_point last = submitted;
  for (;;) {
    auto e = s.Next(&m, absl::Seconds(600));
    if (e != GenerationStream::Event::kMessage) break;
    const auto now = Clock::now();
    if (m.token_ids_size() > 0) {
      if (t.tokens == 0) {
        t.first = now;
        t.ttft = std::chrono::duration<double>(now - submitted).count();
      } else {
        t.gaps.push_back(std::chrono::duration<double>(now - last).count());
      }
      last = now;
      t.tokens += m.token_ids_size();
      t.times.push_back(now);
    }
  }
  t.end = Clock::now();
  t.ok = s.status().ok();
  return t;
}

lorad::worker::v1::Sampling Request(int i, int prompt_tokens, int new_tokens) {
  std::string prompt;
  for (int j = 0; j < prompt_tokens; ++j) {
    prompt.push_back(static_cast<char>('a' + (i * 7 + j * 3) % 26));
  }
  lorad::worker::v1::Sampling r;
  r.set_prompt(prompt);
  r.set_max_new_tokens(new_tokens);
  return r;
}

// Submits all requests at once; each is drained on its own thread.
std::vector<Timing> RunConcurrent(
    Engine& engine, const std::vector<std::shared_ptr<const AdapterSet>>& ad,
    int prompt_tokens, int new_tokens) {
  std::vector<Timing> out(ad.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ad.size(); ++i) {
    const auto submitted = Clock::now();
    auto s = engine.Submit(
        Request(static_cast<int>(i), prompt_tokens, new_tokens), ad[i]);
    if (!s.ok()) {
      std::cerr << "serving_bench: " << s.status() << "\n";
      continue;
    }
    threads.emplace_back(
        [&out, i, s = *s, submitted] { out[i] = Drain(*s, submitted); });
  }
  for (auto& t : threads) t.join();
  return out;
}

struct Bench {
  std::string model_name;
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<AdapterPool> pool;
  std::string work;
  std::string device;

  std::string WriteAdapter(const std::string& name, uint64_t seed) {
    const std::string dir = work + "/adapters/" + name;
    LoraOptions lo;
    lo.rank = absl::GetFlag(FLAGS_rank);
    lo.alpha = 2.0 * lo.rank;
    lo.target_modules = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                         "gate_proj", "up_proj", "down_proj"};
    auto set =
        AdapterSet::CreateForTraining(model->config(), lo, seed, torch::kCPU);
    torch::NoGradGuard no_grad;
    for (const auto& [k, w] : set->weights()) w.b.normal_(0, 0.02);
    absl::Status s = set->SavePeft(dir, model->dir());
    if (!s.ok()) std::cerr << "serving_bench: " << s << "\n";
    return dir;
  }

  json Base() const {
    return {{"model", model_name},
            {"device", device},
            {"dtype", std::string(c10::toString(model->dtype()))},
            {"rank", absl::GetFlag(FLAGS_rank)},
            {"threads", torch::get_num_threads()}};
  }
};

void DecodePhase(Bench& b, const std::vector<int>& batches) {
  const int new_tokens = absl::GetFlag(FLAGS_new_tokens);
  const int prompt = absl::GetFlag(FLAGS_prompt_tokens);
  const int most = *std::max_element(batches.begin(), batches.end());
  for (int i = 0; i < most; ++i) {
    const std::string name = "d" + std::to_string(i);
    if (!b.pool->Contains(name)) {
      auto r = b.pool->Load(name, 1, b.WriteAdapter(name, 1000 + i), false);
      if (!r.ok()) std::cerr << "serving_bench: " << r.status() << "\n";
    }
  }
  EngineOptions eo;
  eo.max_batch = std::max(most, 1);
  Engine engine(b.model.get(), eo);
  // Warm-up: one short request.
  RunConcurrent(engine, {nullptr}, prompt, 2);
  const int repeats = std::max(1, absl::GetFlag(FLAGS_repeats));
  for (int n : batches) {
    std::map<std::string, double> tps;
    std::map<std::string, json> best;
    // Modes take turns, `repeats` times, and each keeps its best run: on a
    // shared machine that filters out the moments others took the cores.
    for (int rep = 0; rep < repeats; ++rep) {
      for (const std::string mode : {"base", "shared", "distinct"}) {
        std::vector<std::shared_ptr<const AdapterSet>> ad;
        for (int i = 0; i < n; ++i) {
          if (mode == "base") {
            ad.push_back(nullptr);
          } else {
            ad.push_back(*b.pool->Acquire(
                mode == "shared" ? "d0" : "d" + std::to_string(i)));
          }
        }
        const auto start = Clock::now();
        std::vector<Timing> t = RunConcurrent(engine, ad, prompt, new_tokens);
        const double wall = Since(start);
        Clock::time_point all_first = start, end = start;
        int64_t decode_tokens = 0, tokens = 0;
        bool ok = true;
        for (const Timing& x : t) {
          all_first = std::max(all_first, x.first);
          end = std::max(end, x.end);
          tokens += x.tokens;
          ok &= x.ok;
        }
        // The decode phase: from the moment every request has its first
        // token (all have joined the batch) to the last token.
        for (const Timing& x : t) {
          for (const auto& when : x.times) decode_tokens += when > all_first;
        }
        const double decode_s =
            std::chrono::duration<double>(end - all_first).count();
        const double rate = decode_s > 0 ? decode_tokens / decode_s : 0;
        if (rate < tps[mode]) continue;
        tps[mode] = rate;
        json j = b.Base();
        j.update(
            {{"bench", "decode"},
             {"mode", mode},
             {"batch", n},
             {"new_tokens", new_tokens},
             {"prompt_tokens", prompt},
             {"tokens", tokens},
             {"wall_seconds", wall},
             {"decode_seconds", decode_s},
             {"decode_tokens_per_second", rate},
             {"end_to_end_tokens_per_second", wall > 0 ? tokens / wall : 0},
             {"repeats", repeats},
             {"ok", ok}});
        best[mode] = j;
      }
    }
    for (const char* mode : {"base", "shared", "distinct"}) {
      std::cout << best[mode].dump() << std::endl;
    }
    json r = b.Base();
    r.update({{"bench", "decode_ratio"},
              {"batch", n},
              {"distinct_over_base",
               tps["base"] > 0 ? tps["distinct"] / tps["base"] : 0},
              {"shared_over_base",
               tps["base"] > 0 ? tps["shared"] / tps["base"] : 0}});
    std::cout << r.dump() << std::endl;
  }
}

void LoadPhase(Bench& b) {
  EngineOptions eo;
  Engine engine(b.model.get(), eo);
  std::vector<double> load_s, first_s;
  for (int i = 0; i < 5; ++i) {
    const std::string name = "fresh" + std::to_string(i);
    const std::string dir = b.WriteAdapter(name, 5000 + i);
    const auto start = Clock::now();
    auto info = b.pool->Load(name, 1, dir, false);
    const double loaded = Since(start);
    auto adapter = b.pool->Acquire(name);
    if (!info.ok() || !adapter.ok()) {
      std::cerr << "serving_bench: load failed\n";
      return;
    }
    auto s = engine.Submit(Request(i, absl::GetFlag(FLAGS_prompt_tokens), 1),
                           *adapter);
    Timing t = Drain(**s, start);
    load_s.push_back(loaded);
    first_s.push_back(t.ttft);
  }
  json j = b.Base();
  j.update({{"bench", "adapter_load"},
            {"load_seconds_p50", Percentile(load_s, 0.5)},
            {"load_to_first_token_seconds_p50", Percentile(first_s, 0.5)},
            {"load_to_first_token_seconds_max", Percentile(first_s, 1.0)},
            {"samples", static_cast<int>(load_s.size())}});
  std::cout << j.dump() << std::endl;
}

// A steady stream: `clients` loops each submit, drain, repeat, for `rounds`.
void LatencyRun(Bench& b, bool training) {
  DeviceTurns turns(4);
  EngineOptions eo;
  eo.turns = &turns;
  Engine engine(b.model.get(), eo);
  std::atomic<bool> stop{false};
  std::atomic<int> steps{0};
  std::thread trainer;
  absl::Status train_status;
  if (training) {
    std::string data;
    for (int i = 0; i < 64; ++i) {
      data += "{\"prompt\": \"question " + std::to_string(i) +
              " about a topic\", \"completion\": \" a long enough answer " +
              std::to_string(i * 13) + "\"}\n";
    }
    const std::string path = b.work + "/train.jsonl";
    (void)lorad::WriteFileAtomic(path, data);
    TrainJob job;
    job.job_id = "bench";
    job.base_model_name = b.model->dir();
    job.training_path = path;
    job.job_dir = b.work + "/job";
    job.adapter_dir = b.work + "/job/adapter";
    auto& hp = job.hp;
    hp.set_rank(8);
    hp.set_alpha(16);
    for (const char* m : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
      hp.add_target_modules(m);
    }
    hp.set_learning_rate(1e-4f);
    hp.set_batch_size(4);
    hp.set_gradient_accumulation(1);
    hp.set_lr_scheduler("linear");
    hp.set_max_seq_len(64);
    hp.set_max_steps(1000000);
    hp.set_seed(1);
    trainer = std::thread([&b, job, &turns, &stop, &steps, &train_status] {
      TrainCallbacks cb;
      cb.on_event = [&](const lorad::worker::v1::TrainEvent& e) {
        if (e.has_step()) ++steps;
      };
      cb.cancelled = [&] { return stop.load(); };
      cb.device_turns = &turns;
      train_status = RunTraining(*b.model, job, cb);
    });
    while (steps < 1) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto adapter = *b.pool->Acquire("d0");
  const int clients = 4, rounds = 3, new_tokens = 16;
  std::vector<Timing> all(clients * rounds);
  const int steps_before = steps;
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      for (int r = 0; r < rounds; ++r) {
        const auto submitted = Clock::now();
        auto s = engine.Submit(
            Request(c * rounds + r, absl::GetFlag(FLAGS_prompt_tokens),
                    new_tokens),
            c % 2 ? adapter : nullptr);
        if (s.ok()) all[c * rounds + r] = Drain(**s, submitted);
      }
    });
  }
  for (auto& t : threads) t.join();
  const double wall = Since(start);
  const int train_steps = steps - steps_before;
  stop = true;
  if (trainer.joinable()) trainer.join();
  std::vector<double> gaps, ttft;
  bool ok = true;
  for (const Timing& t : all) {
    gaps.insert(gaps.end(), t.gaps.begin(), t.gaps.end());
    ttft.push_back(t.ttft);
    ok &= t.ok;
  }
  json j = b.Base();
  j.update({{"bench", "latency"},
            {"training", training},
            {"clients", clients},
            {"requests", clients * rounds},
            {"inter_token_seconds_p50", Percentile(gaps, 0.5)},
            {"inter_token_seconds_p99", Percentile(gaps, 0.99)},
            {"ttft_seconds_p50", Percentile(ttft, 0.5)},
            {"ttft_seconds_p99", Percentile(ttft, 0.99)},
            {"wall_seconds", wall},
            {"train_steps_during", train_steps},
            {"train_steps_per_second", wall > 0 ? train_steps / wall : 0},
            {"ok", ok}});
  std::cout << j.dump() << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  // As lorad-worker does: OpenMP threads must not spin against the threads
  // that stream tokens (libgomp reads this before main, hence the re-exec).
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
    ::setenv("OMP_WAIT_POLICY", "passive", 1);
    ::execv("/proc/self/exe", argv);
  }
  absl::SetProgramUsageMessage(
      "serving_bench [--model=tiny,llama-100m] [--batch=1,8,32]");
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_threads) > 0) {
    torch::set_num_threads(absl::GetFlag(FLAGS_threads));
  }
  std::vector<int> batches;
  for (absl::string_view s : absl::StrSplit(absl::GetFlag(FLAGS_batch), ',')) {
    int n = 0;
    if (!absl::SimpleAtoi(s, &n) || n < 1) {
      std::cerr << "serving_bench: bad --batch entry \"" << s << "\"\n";
      return 2;
    }
    batches.push_back(n);
  }
  const std::string phases = absl::GetFlag(FLAGS_phases);
  for (absl::string_view m : absl::StrSplit(absl::GetFlag(FLAGS_model), ',')) {
    Bench b;
    b.model_name = std::string(m);
    b.device = absl::GetFlag(FLAGS_device);
    b.work = absl::GetFlag(FLAGS_work_dir) + "/" +
             std::filesystem::path(b.model_name).filename().string();
    std::error_code ec;
    std::filesystem::remove_all(b.work, ec);
    auto dir = lorad::bench::BenchModelDir(b.model_name,
                                           absl::GetFlag(FLAGS_cache_dir));
    if (!dir.ok()) {
      std::cerr << "serving_bench: " << dir.status() << "\n";
      return 1;
    }
    LoadOptions lo;
    lo.device = torch::Device(b.device);
    lo.dtype = absl::GetFlag(FLAGS_compute_dtype) == "bfloat16"
                   ? torch::kBFloat16
                   : torch::kFloat32;
    auto model = LlamaModel::Load(*dir, lo);
    if (!model.ok()) {
      std::cerr << "serving_bench: " << model.status() << "\n";
      return 1;
    }
    b.model = std::move(*model);
    AdapterPoolOptions po;
    po.max_device_adapters = 0;
    b.pool = std::make_unique<AdapterPool>(b.model.get(), po);
    if (phases.find("decode") != std::string::npos) DecodePhase(b, batches);
    if (phases.find("load") != std::string::npos) LoadPhase(b);
    if (phases.find("latency") != std::string::npos) {
      if (!b.pool->Contains("d0")) {
        (void)b.pool->Load("d0", 1, b.WriteAdapter("d0", 1000), false);
      }
      LatencyRun(b, false);
      LatencyRun(b, true);
    }
  }
  return 0;
}
