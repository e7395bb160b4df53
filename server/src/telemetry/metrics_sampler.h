// Keeps the Prometheus metrics current: every interval it takes a telemetry
// snapshot, counts jobs by state, follows the running jobs' events (step,
// loss, tokens/s, tokens trained) and asks the worker which adapters it
// holds.
#ifndef LORAD_SERVER_TELEMETRY_METRICS_SAMPLER_H_
#define LORAD_SERVER_TELEMETRY_METRICS_SAMPLER_H_

#include <cstdint>
#include <map>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "telemetry/metrics.h"
#include "telemetry/telemetry_collector.h"

namespace lorad::server {

// This class is thread-safe.
class MetricsSampler {
 public:
  // Neither pointer is owned; both must outlive the sampler.
  MetricsSampler(TelemetryCollector* collector, Metrics* metrics,
                 absl::Duration interval);
  // Stop()s.
  ~MetricsSampler();
  MetricsSampler(const MetricsSampler&) = delete;
  MetricsSampler& operator=(const MetricsSampler&) = delete;

  void Start();
  // Joins the thread. Idempotent.
  void Stop();
  // One round, on the caller's thread.
  void SampleOnce();

 private:
  // What has been read of one job's events.
  struct Followed {
    int64_t last_seq = 0;
    int64_t tokens_seen = 0;
    Metrics::RunningJob latest;
  };

  void Loop();
  void SampleJobs();
  void SampleAdapters();

  TelemetryCollector* const collector_;
  Metrics* const metrics_;
  const absl::Duration interval_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Followed> followed_ ABSL_GUARDED_BY(mu_);
  absl::Mutex sample_mu_;  // one round at a time
  std::thread thread_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_TELEMETRY_METRICS_SAMPLER_H_
