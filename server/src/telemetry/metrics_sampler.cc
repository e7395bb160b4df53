#include "telemetry/metrics_sampler.h"

#include <vector>

namespace lorad::server {

MetricsSampler::MetricsSampler(TelemetryCollector* collector, Metrics* metrics,
                               absl::Duration interval)
    : collector_(collector), metrics_(metrics), interval_(interval) {}

MetricsSampler::~MetricsSampler() { Stop(); }

void MetricsSampler::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void MetricsSampler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void MetricsSampler::Loop() {
  while (true) {
    SampleOnce();
    absl::MutexLock lock(&mu_);
    auto stopping = [this]()
                        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping), interval_)) return;
  }
}

void MetricsSampler::SampleOnce() {
  absl::MutexLock round(&sample_mu_);
  TelemetryCollector::WorkerInfo worker;
  v1::TelemetrySnapshot snapshot = collector_->Collect(&worker);
  metrics_->UpdateFromSnapshot(snapshot);
  metrics_->SetWorker(worker.up,
                      worker.generation > 0 ? worker.generation - 1 : 0);
  SampleJobs();
  if (worker.up) SampleAdapters();
}

void MetricsSampler::SampleJobs() {
  JobStore* store = collector_->store();
  absl::StatusOr<std::vector<v1::FineTuneJob>> jobs =
      store->JobsInStates({v1::VALIDATING, v1::QUEUED, v1::RUNNING,
                           v1::SUCCEEDED, v1::FAILED, v1::CANCELLED});
  if (!jobs.ok()) return;
  std::map<v1::JobState, int64_t> counts;
  std::map<std::string, bool> running;  // job id -> method dpo
  for (const v1::FineTuneJob& job : *jobs) {
    ++counts[job.state()];
    if (job.state() == v1::RUNNING) {
      running[job.id()] = job.hyperparameters().method() == "dpo";
    }
  }
  metrics_->SetJobsByState(counts);

  std::map<std::string, Metrics::RunningJob> series;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, dpo] : running) followed_[id].latest.dpo = dpo;
  for (auto it = followed_.begin(); it != followed_.end();) {
    Followed& f = it->second;
    f.latest.id = it->first;
    absl::StatusOr<std::vector<v1::JobEvent>> events =
        store->EventsAfter(it->first, f.last_seq, 0);
    if (events.ok()) {
      for (const v1::JobEvent& event : *events) {
        f.last_seq = event.seq();
        if (event.has_step()) {
          const v1::TrainStep& step = event.step();
          f.latest.step = step.step();
          f.latest.total_steps = step.total_steps();
          f.latest.loss = step.loss();
          f.latest.tokens_per_second = step.tokens_per_second();
          if (step.tokens_seen() > f.tokens_seen) {
            metrics_->AddTrainingTokens(step.tokens_seen() - f.tokens_seen);
          }
          f.tokens_seen = step.tokens_seen();
          if (step.has_dpo()) {
            f.latest.dpo_reward_margin = step.dpo().reward_margin();
            f.latest.dpo_reward_accuracy = step.dpo().reward_accuracy();
          }
        } else if (event.has_eval()) {
          f.latest.eval_loss = event.eval().eval_loss();
        }
      }
    }
    if (running.count(it->first) > 0) {
      series[it->first] = f.latest;
      ++it;
    } else {
      it = followed_.erase(it);
    }
  }
  metrics_->SetRunningJobs(series);
}

void MetricsSampler::SampleAdapters() {
  CallOptions call;
  call.ready_wait = absl::ZeroDuration();
  call.deadline = absl::Seconds(2);
  absl::StatusOr<worker::v1::ListWorkerAdaptersResponse> response =
      collector_->worker()->ListAdapters(call);
  if (!response.ok()) return;  // an older worker without an adapter pool
  int64_t on_device = 0, on_host = 0;
  for (const worker::v1::WorkerAdapterInfo& adapter : response->adapters()) {
    (adapter.residency() == "device" ? on_device : on_host) += 1;
  }
  metrics_->SetAdaptersResident(on_device, on_host);
}

}  // namespace lorad::server
