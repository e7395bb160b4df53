// load_bench: the real lorad daemon and worker under many concurrent
// streaming clients on loopback. For each mode it runs `--clients` client
// threads, each sending Generate requests back to back for `--seconds`, and
// prints one JSON object:
//   requests, failures (any non-OK status), latency and time-to-first-token
//   p50/p99, generated tokens/s, and the daemon's and worker's peak RSS and
//   thread count sampled from /proc while the load ran.
// Modes: `idle` (serving alone) and `training` (a fine-tune job on the same
// base runs throughout). A last object compares the two (p99 ratios).
//
//   load_bench [--clients=64] [--seconds=60] [--modes=idle,training]
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "bench_stats.h"
#include "client_util.h"
#include "daemon_process.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(int, clients, 64, "Concurrent streaming clients.");
ABSL_FLAG(int, seconds, 60, "How long each mode runs.");
ABSL_FLAG(std::string, modes, "idle,training", "idle and/or training.");
ABSL_FLAG(int, max_new_tokens, 16, "Tokens per Generate request.");
ABSL_FLAG(std::string, device, "cpu", "Passed to lorad --device.");

namespace {

using lorad::testing::Client;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

using lorad::bench::Percentile;

// VmRSS (bytes) and Threads of a process, from /proc/<pid>/status.
struct ProcSample {
  int64_t rss_bytes = 0;
  int64_t threads = 0;
};

ProcSample Sample(int64_t pid) {
  ProcSample s;
  if (pid <= 0) return s;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.size() < 2) continue;
    if (f[0] == "VmRSS:") {
      (void)absl::SimpleAtoi(f[1], &s.rss_bytes);
      s.rss_bytes *= 1024;
    } else if (f[0] == "Threads:") {
      (void)absl::SimpleAtoi(f[1], &s.threads);
    }
  }
  return s;
}

struct Result {
  std::vector<double> latency, ttft;
  int64_t requests = 0, failures = 0, tokens = 0;
  std::vector<std::string> errors;  // the first few, for the report
};

// One client: Generate requests back to back until `end`.
void RunClient(const std::string& address, int index, Clock::time_point end,
               Result* out, std::mutex* mu) {
  Client client(address);
  Result mine;
  int n = 0;
  while (Clock::now() < end) {
    lorad::v1::GenerateRequest request;
    request.set_prompt("Request " + std::to_string(index) + "." +
                       std::to_string(n++) + ": once upon a time");
    request.set_max_new_tokens(absl::GetFlag(FLAGS_max_new_tokens));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(120));
    Clock::time_point start = Clock::now();
    auto reader = client.inference->Generate(&context, request);
    lorad::v1::GenerateResponse response;
    bool first = true;
    int64_t tokens = 0;
    while (reader->Read(&response)) {
      if (first) {
        mine.ttft.push_back(Seconds(Clock::now() - start));
        first = false;
      }
      tokens += response.token_ids_size();
    }
    grpc::Status status = reader->Finish();
    ++mine.requests;
    if (!status.ok()) {
      ++mine.failures;
      if (mine.errors.size() < 3) {
        mine.errors.push_back(lorad::testing::Describe(status));
      }
      continue;
    }
    mine.latency.push_back(Seconds(Clock::now() - start));
    mine.tokens += tokens;
  }
  std::lock_guard<std::mutex> lock(*mu);
  out->requests += mine.requests;
  out->failures += mine.failures;
  out->tokens += mine.tokens;
  out->latency.insert(out->latency.end(), mine.latency.begin(),
                      mine.latency.end());
  out->ttft.insert(out->ttft.end(), mine.ttft.begin(), mine.ttft.end());
  for (std::string& e : mine.errors) {
    if (out->errors.size() < 5) out->errors.push_back(std::move(e));
  }
}

// Starts a long fine-tune job on tiny and waits until it runs; its id.
std::string StartTraining(Client& client) {
  lorad::v1::Dataset dataset;
  grpc::Status s = lorad::testing::Upload(
      client, "load.jsonl", lorad::testing::PromptCompletionJsonl(64),
      &dataset);
  if (!s.ok()) {
    std::cerr << "upload: " << lorad::testing::Describe(s) << "\n";
    std::exit(1);
  }
  lorad::v1::FineTuneJob job;
  s = lorad::testing::CreateJob(
      client, lorad::testing::TinyJobRequest(dataset.id(), 1000000, 100000),
      &job);
  if (!s.ok()) {
    std::cerr << "create job: " << lorad::testing::Describe(s) << "\n";
    std::exit(1);
  }
  for (int i = 0; i < 600; ++i) {
    lorad::testing::GetJob(client, job.id(), &job);
    if (job.state() == lorad::v1::RUNNING) return job.id();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::cerr << "the training job did not start\n";
  std::exit(1);
}

json RunMode(const std::string& mode, const std::string& data_dir,
             const std::string& address, int64_t daemon_pid) {
  Client control(address);
  std::string job_id;
  if (mode == "training") job_id = StartTraining(control);

  const int clients = absl::GetFlag(FLAGS_clients);
  const int seconds = absl::GetFlag(FLAGS_seconds);
  int64_t worker_pid = lorad::testing::WorkerPid(data_dir);
  ProcSample daemon_peak, worker_peak;
  std::atomic<bool> done{false};
  std::thread sampler([&] {
    while (!done.load()) {
      ProcSample d = Sample(daemon_pid), w = Sample(worker_pid);
      daemon_peak.rss_bytes = std::max(daemon_peak.rss_bytes, d.rss_bytes);
      daemon_peak.threads = std::max(daemon_peak.threads, d.threads);
      worker_peak.rss_bytes = std::max(worker_peak.rss_bytes, w.rss_bytes);
      worker_peak.threads = std::max(worker_peak.threads, w.threads);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });

  Result result;
  std::mutex mu;
  Clock::time_point start = Clock::now();
  Clock::time_point end = start + std::chrono::seconds(seconds);
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back(RunClient, address, i, end, &result, &mu);
  }
  for (std::thread& t : threads) t.join();
  double wall = Seconds(Clock::now() - start);
  done = true;
  sampler.join();

  json out = {{"bench", "load"},
              {"mode", mode},
              {"clients", clients},
              {"seconds", wall},
              {"max_new_tokens", absl::GetFlag(FLAGS_max_new_tokens)},
              {"requests", result.requests},
              {"failures", result.failures},
              {"errors", result.errors},
              {"latency_p50_s", Percentile(result.latency, 0.5)},
              {"latency_p99_s", Percentile(result.latency, 0.99)},
              {"ttft_p50_s", Percentile(result.ttft, 0.5)},
              {"ttft_p99_s", Percentile(result.ttft, 0.99)},
              {"tokens_per_s", static_cast<double>(result.tokens) / wall},
              {"daemon_peak_rss_mib", daemon_peak.rss_bytes / 1048576.0},
              {"daemon_peak_threads", daemon_peak.threads},
              {"worker_peak_rss_mib", worker_peak.rss_bytes / 1048576.0},
              {"worker_peak_threads", worker_peak.threads}};
  if (!job_id.empty()) {
    lorad::v1::FineTuneJob job;
    lorad::testing::GetJob(control, job_id, &job);
    out["training_state_at_end"] = lorad::v1::JobState_Name(job.state());
    grpc::ClientContext context;
    lorad::v1::CancelFineTuneJobRequest cancel;
    cancel.set_job_id(job_id);
    control.fine_tuning->CancelJob(&context, cancel, &job);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("lorad under concurrent streaming clients");
  absl::ParseCommandLine(argc, argv);
  lorad::testing::TempDir dir;
  auto daemon = lorad::testing::DaemonProcess::Start(
      dir.path() + "/data",
      {"--device=" + absl::GetFlag(FLAGS_device), "--max_batch=64"});
  if (!daemon.ok()) {
    std::cerr << "lorad did not start: " << daemon.status() << "\n";
    return 1;
  }
  // Warm up: the first request loads the model.
  {
    Client client((*daemon)->address());
    lorad::v1::GenerateRequest request;
    request.set_prompt("warm up");
    request.set_max_new_tokens(2);
    grpc::ClientContext context;
    auto reader = client.inference->Generate(&context, request);
    lorad::v1::GenerateResponse response;
    while (reader->Read(&response)) {
    }
    grpc::Status s = reader->Finish();
    if (!s.ok()) {
      std::cerr << "warm-up: " << lorad::testing::Describe(s) << "\n";
      return 1;
    }
  }
  std::vector<json> results;
  std::vector<std::string> modes =
      absl::StrSplit(absl::GetFlag(FLAGS_modes), ',', absl::SkipEmpty());
  for (const std::string& mode : modes) {
    if (mode != "idle" && mode != "training") {
      std::cerr << "unknown mode " << mode << "\n";
      return 2;
    }
    results.push_back(RunMode(mode, dir.path() + "/data", (*daemon)->address(),
                              (*daemon)->pid()));
    std::cout << results.back().dump() << std::endl;
  }
  if (results.size() == 2) {
    auto ratio = [&](const char* key) {
      double a = results[0][key].get<double>();
      return a > 0 ? results[1][key].get<double>() / a : 0.0;
    };
    std::cout << json{{"bench", "load"},
                      {"mode", "training_vs_idle"},
                      {"latency_p99_ratio", ratio("latency_p99_s")},
                      {"ttft_p99_ratio", ratio("ttft_p99_s")},
                      {"tokens_per_s_ratio", ratio("tokens_per_s")}}
                     .dump()
              << std::endl;
  }
  int64_t failures = 0;
  for (const json& r : results) failures += r["failures"].get<int64_t>();
  return failures == 0 ? 0 : 3;
}
