#include "telemetry/metrics.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"

namespace lorad::server {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

prometheus::Family<prometheus::Gauge>& Gauge(prometheus::Registry& r,
                                             const std::string& name,
                                             const std::string& help) {
  return BuildGauge().Name(name).Help(help).Register(r);
}

prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
          2.5,   5,    10,    20,   30,  60,   120, 300};
}

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      device_memory_used_(Gauge(*registry_, "lorad_device_memory_used_bytes",
                                "Memory in use on the device (GPU memory from "
                                "NVML; host memory in use on CPU)")),
      device_memory_total_(Gauge(*registry_, "lorad_device_memory_total_bytes",
                                 "Memory of the device (GPU memory from NVML; "
                                 "MemTotal on CPU)")),
      device_memory_reserved_(Gauge(*registry_,
                                    "lorad_device_memory_reserved_bytes",
                                    "GPU memory reserved by the driver")),
      device_utilization_(Gauge(*registry_, "lorad_device_utilization_ratio",
                                "GPU busy share (NVML), or busy share of all "
                                "CPUs on CPU, 0..1")),
      gpu_temperature_(Gauge(*registry_, "lorad_gpu_temperature_celsius",
                             "GPU temperature")),
      gpu_power_(Gauge(*registry_, "lorad_gpu_power_watts", "GPU power draw")),
      gpu_power_limit_(Gauge(*registry_, "lorad_gpu_power_limit_watts",
                             "GPU enforced power limit")),
      allocator_allocated_(Gauge(*registry_, "lorad_allocator_allocated_bytes",
                                 "Bytes allocated by LibTorch's device "
                                 "allocator in the worker (0 on CPU)")),
      allocator_reserved_(Gauge(*registry_, "lorad_allocator_reserved_bytes",
                                "Bytes reserved (cached) by LibTorch's device "
                                "allocator in the worker (0 on CPU)")),
      allocator_peak_(Gauge(*registry_, "lorad_allocator_peak_allocated_bytes",
                            "Peak bytes allocated by LibTorch's device "
                            "allocator in the worker")),
      process_rss_(Gauge(*registry_, "lorad_process_resident_memory_bytes",
                         "Resident set of the lorad processes")),
      process_device_memory_(
          Gauge(*registry_, "lorad_process_device_memory_used_bytes",
                "GPU memory NVML reports in use by the lorad processes")),
      lorad_memory_(Gauge(*registry_, "lorad_memory_estimate_bytes",
                          "The running job's memory estimate by part")),
      jobs_(Gauge(*registry_, "lorad_jobs", "Fine-tune jobs by state")),
      job_step_(Gauge(*registry_, "lorad_job_step",
                      "Optimizer steps done by the running job")),
      job_total_steps_(Gauge(*registry_, "lorad_job_total_steps",
                             "Optimizer steps the running job will make")),
      job_loss_(Gauge(*registry_, "lorad_job_loss",
                      "Training loss of the running job's latest step")),
      job_eval_loss_(Gauge(*registry_, "lorad_job_eval_loss",
                           "Latest evaluation loss of the running job")),
      job_tokens_per_second_(Gauge(*registry_, "lorad_job_tokens_per_second",
                                   "Training throughput of the running job")),
      job_dpo_reward_margin_(
          Gauge(*registry_, "lorad_job_dpo_reward_margin",
                "Mean DPO reward margin (chosen - rejected) of the running "
                "DPO job's latest step")),
      job_dpo_reward_accuracy_(
          Gauge(*registry_, "lorad_job_dpo_reward_accuracy_ratio",
                "Fraction of pairs whose chosen reward beats the rejected "
                "one in the running DPO job's latest step")),
      training_tokens_(BuildCounter()
                           .Name("lorad_training_tokens_total")
                           .Help("Tokens trained on")
                           .Register(*registry_)
                           .Add({})),
      generated_tokens_(BuildCounter()
                            .Name("lorad_generated_tokens_total")
                            .Help("Tokens generated, by adapter")
                            .Register(*registry_)),
      requests_(BuildCounter()
                    .Name("lorad_generate_requests_total")
                    .Help("Generate requests by adapter and result")
                    .Register(*registry_)),
      request_seconds_(BuildHistogram()
                           .Name("lorad_generate_request_duration_seconds")
                           .Help("Generate request latency, whole stream")
                           .Register(*registry_)
                           .Add({}, LatencyBuckets())),
      ttft_seconds_(BuildHistogram()
                        .Name("lorad_generate_time_to_first_token_seconds")
                        .Help("Generate time to first token")
                        .Register(*registry_)
                        .Add({}, LatencyBuckets())),
      queue_depth_(Gauge(*registry_, "lorad_queue_depth",
                         "Work waiting: queued fine-tune jobs, generate "
                         "requests admitted and not finished")),
      adapters_resident_(Gauge(*registry_, "lorad_adapters_resident",
                               "Adapters held by the worker, by where")),
      worker_up_(Gauge(*registry_, "lorad_worker_up",
                       "1 when the worker process answers")
                     .Add({})),
      worker_restarts_(BuildCounter()
                           .Name("lorad_worker_restarts_total")
                           .Help("Times the worker process was restarted")
                           .Register(*registry_)
                           .Add({})) {
  // Series that exist from the start, so dashboards and alerts see zeros
  // rather than nothing.
  for (int state = v1::VALIDATING; state <= v1::CANCELLED; ++state) {
    std::string name = v1::JobState_Name(static_cast<v1::JobState>(state));
    jobs_.Add({{"state", absl::AsciiStrToLower(name)}}).Set(0);
  }
  queue_depth_.Add({{"queue", "jobs"}}).Set(0);
  queue_depth_.Add({{"queue", "generate"}}).Set(0);
  adapters_resident_.Add({{"where", "device"}}).Set(0);
  adapters_resident_.Add({{"where", "host"}}).Set(0);
}

std::string Metrics::AdapterLabel(absl::string_view adapter) {
  if (adapter.empty()) return "base";
  std::string name(adapter);
  absl::MutexLock lock(&mu_);
  if (adapter_labels_.count(name) > 0) return name;
  if (adapter_labels_.size() < kMaxAdapterLabels) {
    adapter_labels_.insert(name);
    return name;
  }
  return "other";
}

void Metrics::RecordGenerate(absl::string_view adapter,
                             absl::string_view result, double ttft_seconds,
                             double total_seconds, int64_t tokens) {
  const std::string label = AdapterLabel(adapter);
  requests_.Add({{"adapter", label}, {"result", std::string(result)}})
      .Increment();
  prometheus::Counter& generated = generated_tokens_.Add({{"adapter", label}});
  if (tokens > 0) generated.Increment(static_cast<double>(tokens));
  if (ttft_seconds >= 0) ttft_seconds_.Observe(ttft_seconds);
  if (total_seconds >= 0) request_seconds_.Observe(total_seconds);
}

void Metrics::SetGenerateQueueDepth(int64_t requests) {
  queue_depth_.Add({{"queue", "generate"}}).Set(static_cast<double>(requests));
}

void Metrics::SetAdaptersResident(int64_t on_device, int64_t on_host) {
  adapters_resident_.Add({{"where", "device"}})
      .Set(static_cast<double>(on_device));
  adapters_resident_.Add({{"where", "host"}}).Set(static_cast<double>(on_host));
}

void Metrics::SetJobsByState(const std::map<v1::JobState, int64_t>& counts) {
  for (int state = v1::VALIDATING; state <= v1::CANCELLED; ++state) {
    auto it = counts.find(static_cast<v1::JobState>(state));
    const double n = it == counts.end() ? 0 : static_cast<double>(it->second);
    std::string name = v1::JobState_Name(static_cast<v1::JobState>(state));
    jobs_.Add({{"state", absl::AsciiStrToLower(name)}}).Set(n);
    if (state == v1::QUEUED) queue_depth_.Add({{"queue", "jobs"}}).Set(n);
  }
}

void Metrics::SetRunningJobs(const std::map<std::string, RunningJob>& jobs) {
  absl::MutexLock lock(&mu_);
  for (auto it = job_series_.begin(); it != job_series_.end();) {
    if (jobs.count(it->first) > 0) {
      ++it;
      continue;
    }
    job_step_.Remove(it->second["step"]);
    job_total_steps_.Remove(it->second["total"]);
    job_loss_.Remove(it->second["loss"]);
    job_eval_loss_.Remove(it->second["eval"]);
    job_tokens_per_second_.Remove(it->second["tps"]);
    RemoveDpoSeries(it->second);
    it = job_series_.erase(it);
  }
  for (const auto& [id, job] : jobs) {
    const prometheus::Labels labels = {{"job_id", id}};
    std::map<std::string, prometheus::Gauge*>& series = job_series_[id];
    series["step"] = &job_step_.Add(labels);
    series["total"] = &job_total_steps_.Add(labels);
    series["loss"] = &job_loss_.Add(labels);
    series["eval"] = &job_eval_loss_.Add(labels);
    series["tps"] = &job_tokens_per_second_.Add(labels);
    series["step"]->Set(static_cast<double>(job.step));
    series["total"]->Set(static_cast<double>(job.total_steps));
    series["loss"]->Set(job.loss);
    series["eval"]->Set(job.eval_loss);
    series["tps"]->Set(job.tokens_per_second);
    if (!job.dpo) {
      RemoveDpoSeries(series);
      continue;
    }
    series["dpo_margin"] = &job_dpo_reward_margin_.Add(labels);
    series["dpo_accuracy"] = &job_dpo_reward_accuracy_.Add(labels);
    series["dpo_margin"]->Set(job.dpo_reward_margin);
    series["dpo_accuracy"]->Set(job.dpo_reward_accuracy);
  }
}

void Metrics::RemoveDpoSeries(
    std::map<std::string, prometheus::Gauge*>& series) {
  auto margin = series.find("dpo_margin");
  if (margin != series.end()) {
    job_dpo_reward_margin_.Remove(margin->second);
    series.erase(margin);
  }
  auto accuracy = series.find("dpo_accuracy");
  if (accuracy != series.end()) {
    job_dpo_reward_accuracy_.Remove(accuracy->second);
    series.erase(accuracy);
  }
}

void Metrics::AddTrainingTokens(int64_t tokens) {
  if (tokens > 0) training_tokens_.Increment(static_cast<double>(tokens));
}

void Metrics::UpdateFromSnapshot(const v1::TelemetrySnapshot& snapshot) {
  const v1::DeviceStatus& devices = snapshot.devices();
  auto set = [](prometheus::Family<prometheus::Gauge>& family,
                const std::string& device, double value) {
    family.Add({{"device", device}}).Set(value);
  };
  if (devices.gpus_size() == 0) {
    const v1::HostMemory& host = devices.host();
    set(device_memory_total_, "cpu", static_cast<double>(host.total_bytes()));
    set(device_memory_used_, "cpu",
        static_cast<double>(host.total_bytes() - host.available_bytes()));
    set(device_utilization_, "cpu", host.cpu_utilization_percent() / 100.0);
  }
  for (const v1::GpuDevice& gpu : devices.gpus()) {
    const std::string device = "cuda:" + std::to_string(gpu.index());
    set(device_memory_total_, device,
        static_cast<double>(gpu.memory_total_bytes()));
    set(device_memory_used_, device,
        static_cast<double>(gpu.memory_used_bytes()));
    set(device_memory_reserved_, device,
        static_cast<double>(gpu.memory_reserved_bytes()));
    set(device_utilization_, device, gpu.utilization_gpu_percent() / 100.0);
    set(gpu_temperature_, device, gpu.temperature_celsius());
    set(gpu_power_, device, gpu.power_draw_watts());
    set(gpu_power_limit_, device, gpu.power_limit_watts());
  }
  if (snapshot.worker_status() == "ok") {
    const v1::MemoryUsage& m = snapshot.worker_memory();
    const std::string device = m.device().empty() ? "cpu" : m.device();
    set(allocator_allocated_, device,
        static_cast<double>(m.allocator_allocated_bytes()));
    set(allocator_reserved_, device,
        static_cast<double>(m.allocator_reserved_bytes()));
    set(allocator_peak_, device,
        static_cast<double>(m.allocator_peak_allocated_bytes()));
  }
  for (const v1::ProcessMemory& process : snapshot.processes()) {
    process_rss_.Add({{"process", process.role()}})
        .Set(static_cast<double>(process.rss_bytes()));
    for (const v1::GpuDevice& gpu : devices.gpus()) {
      int64_t used = 0;
      for (const v1::GpuProcess& p : gpu.processes()) {
        if (p.pid() == process.pid()) used += p.used_bytes();
      }
      process_device_memory_
          .Add({{"device", "cuda:" + std::to_string(gpu.index())},
                {"process", process.role()}})
          .Set(static_cast<double>(used));
    }
  }
  const v1::MemoryBreakdown& b = snapshot.breakdown();
  const std::pair<const char*, int64_t> parts[] = {
      {"base", b.base_bytes()},
      {"adapter", b.adapter_bytes()},
      {"optimizer", b.optimizer_bytes()},
      {"gradients", b.gradient_bytes()},
      {"activations", b.activation_bytes()},
      {"kv_cache", b.kv_cache_bytes()}};
  for (const auto& [part, bytes] : parts) {
    lorad_memory_.Add({{"part", part}}).Set(static_cast<double>(bytes));
  }
}

void Metrics::SetWorker(bool up, int64_t restarts) {
  worker_up_.Set(up ? 1 : 0);
  absl::MutexLock lock(&mu_);
  if (restarts > restarts_seen_) {
    worker_restarts_.Increment(static_cast<double>(restarts - restarts_seen_));
    restarts_seen_ = restarts;
  }
}

}  // namespace lorad::server
