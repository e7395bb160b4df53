// lorad's Prometheus metrics: one registry, families registered once at
// construction, handles kept. Names follow Prometheus conventions: `lorad_`
// prefix, base units (bytes, seconds, ratios), counters end in `_total`.
// Label sets are bounded: device, job state, the running job's id, gRPC
// result codes, and adapter names capped at kMaxAdapterLabels (later names
// are counted under "other").
//
// This class is thread-safe.
#ifndef LORAD_SERVER_TELEMETRY_METRICS_H_
#define LORAD_SERVER_TELEMETRY_METRICS_H_

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "lorad/v1/lorad.pb.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace lorad::server {

class Metrics {
 public:
  static constexpr int kMaxAdapterLabels = 20;

  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // What an exposer serves.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // ---- inference (the Inference service and the batcher call these)

  // One finished Generate request. `adapter` empty means the base model;
  // `result` is "ok" or a lower-case gRPC code name ("cancelled"). Times
  // below zero are not observed (a request that failed before its first
  // token has no TTFT).
  void RecordGenerate(absl::string_view adapter, absl::string_view result,
                      double ttft_seconds, double total_seconds,
                      int64_t tokens);
  // Generate requests admitted and not yet finished.
  void SetGenerateQueueDepth(int64_t requests);
  // Adapters held by the worker, by where they are.
  void SetAdaptersResident(int64_t on_device, int64_t on_host);

  // ---- jobs and devices (the metrics sampler calls these)

  // Fine-tune jobs now QUEUED also set lorad_queue_depth{queue="jobs"}.
  void SetJobsByState(const std::map<v1::JobState, int64_t>& counts);
  // The running job's latest numbers. Series of jobs not named in a later
  // call are removed (only running jobs have them).
  struct RunningJob {
    std::string id;
    int64_t step = 0;
    int64_t total_steps = 0;
    double loss = 0;
    // NaN until the job's first evaluation (a gap on a graph, not a zero).
    double eval_loss = std::numeric_limits<double>::quiet_NaN();
    double tokens_per_second = 0;
    // Method dpo only (other jobs have no DPO series): the latest step's
    // mean reward margin (chosen - rejected) and reward accuracy, NaN until
    // the job's first step.
    bool dpo = false;
    double dpo_reward_margin = std::numeric_limits<double>::quiet_NaN();
    double dpo_reward_accuracy = std::numeric_limits<double>::quiet_NaN();
  };
  void SetRunningJobs(const std::map<std::string, RunningJob>& jobs);
  void AddTrainingTokens(int64_t tokens);
  // Device memory, utilisation, temperature, power, allocator bytes, RSS and
  // the GPU memory NVML sees lorad's processes use, from a telemetry
  // snapshot.
  void UpdateFromSnapshot(const v1::TelemetrySnapshot& snapshot);
  // The worker answers (1) or not (0); `restarts` is how many times it has
  // been restarted since lorad started (counts only go up).
  void SetWorker(bool up, int64_t restarts);

  // The label an adapter's series use: "base" for empty, its own name for the
  // first kMaxAdapterLabels names seen, "other" after.
  std::string AdapterLabel(absl::string_view adapter);

 private:
  // Removes a job's DPO series, if it has them.
  void RemoveDpoSeries(std::map<std::string, prometheus::Gauge*>& series)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::shared_ptr<prometheus::Registry> registry_;
  absl::Mutex mu_;
  std::set<std::string> adapter_labels_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::map<std::string, prometheus::Gauge*>> job_series_
      ABSL_GUARDED_BY(mu_);
  int64_t restarts_seen_ ABSL_GUARDED_BY(mu_) = 0;

  prometheus::Family<prometheus::Gauge>& device_memory_used_;
  prometheus::Family<prometheus::Gauge>& device_memory_total_;
  prometheus::Family<prometheus::Gauge>& device_memory_reserved_;
  prometheus::Family<prometheus::Gauge>& device_utilization_;
  prometheus::Family<prometheus::Gauge>& gpu_temperature_;
  prometheus::Family<prometheus::Gauge>& gpu_power_;
  prometheus::Family<prometheus::Gauge>& gpu_power_limit_;
  prometheus::Family<prometheus::Gauge>& allocator_allocated_;
  prometheus::Family<prometheus::Gauge>& allocator_reserved_;
  prometheus::Family<prometheus::Gauge>& allocator_peak_;
  prometheus::Family<prometheus::Gauge>& process_rss_;
  prometheus::Family<prometheus::Gauge>& process_device_memory_;
  prometheus::Family<prometheus::Gauge>& lorad_memory_;
  prometheus::Family<prometheus::Gauge>& jobs_;
  prometheus::Family<prometheus::Gauge>& job_step_;
  prometheus::Family<prometheus::Gauge>& job_total_steps_;
  prometheus::Family<prometheus::Gauge>& job_loss_;
  prometheus::Family<prometheus::Gauge>& job_eval_loss_;
  prometheus::Family<prometheus::Gauge>& job_tokens_per_second_;
  prometheus::Family<prometheus::Gauge>& job_dpo_reward_margin_;
  prometheus::Family<prometheus::Gauge>& job_dpo_reward_accuracy_;
  prometheus::Counter& training_tokens_;
  prometheus::Family<prometheus::Counter>& generated_tokens_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Histogram& request_seconds_;
  prometheus::Histogram& ttft_seconds_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Gauge>& adapters_resident_;
  prometheus::Gauge& worker_up_;
  prometheus::Counter& worker_restarts_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_TELEMETRY_METRICS_H_
