// The whole lorad daemon: job store, scheduler, worker supervisor and the
// client every part reaches the worker through, and the gRPC server with the
// public services.
#ifndef LORAD_SERVER_DAEMON_H_
#define LORAD_SERVER_DAEMON_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "api/adapters_service.h"
#include "api/batch_service.h"
#include "api/datasets_service.h"
#include "api/fine_tuning_service.h"
#include "api/inference_service.h"
#include "api/telemetry_service.h"
#include "auth/gatekeeper.h"
#include "auth/ownership.h"
#include "grpcpp/server.h"
#include "http/http_server.h"
#include "jobs/admission.h"
#include "jobs/batch_journal.h"
#include "jobs/batch_runner.h"
#include "jobs/event_hub.h"
#include "jobs/job_journal.h"
#include "jobs/scheduler.h"
#include "jobs/timer_queue.h"
#include "lorad/common/work_queue.h"
#include "openai/api.h"
#include "options.h"
#include "serving/adapter_registry.h"
#include "store/adapter_store.h"
#include "store/batch_job_store.h"
#include "store/data_dir_lock.h"
#include "store/dataset_store.h"
#include "store/db.h"
#include "store/job_store.h"
#include "store/owner_store.h"
#include "telemetry/metrics.h"
#include "telemetry/metrics_https.h"
#include "telemetry/metrics_sampler.h"
#include "telemetry/telemetry_collector.h"
#include "worker_link/worker_client.h"
#include "worker_link/worker_supervisor.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace lorad::server {

// Health services (grpc.health.v1) for Kubernetes probes, when the process
// enabled the default health service: kLivenessService is SERVING while the
// daemon serves; kReadinessService and the whole server ("") are SERVING
// only while a worker is ready. All go NOT_SERVING at shutdown.
inline constexpr char kLivenessService[] = "lorad.liveness";
inline constexpr char kReadinessService[] = "lorad.readiness";

class Daemon {
 public:
  // Locks options.data_dir (FailedPrecondition naming the holder's pid when
  // another daemon has it), removes the temp files an interrupted run left
  // there, opens the database under it (one Db shared by the
  // stores; files go through options.env), recovers jobs a previous run
  // left unfinished, starts the worker and begins serving. The health and
  // reflection services are added when the process enabled them before.
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(
      const DaemonOptions& options);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // The address actually listened on (port 0 replaced by the chosen port).
  const std::string& address() const { return address_; }
  // Where /metrics is served (port 0 replaced), or "" when disabled.
  const std::string& metrics_address() const { return metrics_address_; }
  // Where the OpenAI-compatible HTTP API listens (port 0 replaced), or "".
  const std::string& http_address() const { return http_address_; }

  // Stops the scheduler (the running job stays RUNNING and resumes from its
  // last checkpoint at the next start), then drains the server: no new
  // calls are accepted, calls still open may finish within
  // options.shutdown_grace and are cancelled after it; then stops the
  // worker. Idempotent; the destructor calls it.
  void Shutdown();

  // Re-reads --auth_tokens_file (SIGHUP); on error the old tokens stay.
  absl::Status ReloadAuth();

 private:
  explicit Daemon(const DaemonOptions& options);
  // Keeps the health services' status as described above.
  void WatchHealth();
  // Serves /metrics on options_.metrics_address and starts the sampler.
  absl::Status StartMetrics();
  absl::Status StartMetricsOverTls();
  void StartMetricsSampler();
  // Serves the OpenAI-compatible API on options_.http_address.
  absl::Status StartHttp();

  const DaemonOptions options_;
  std::string address_;
  // Declared first, so it is released last, once nothing writes any more.
  std::unique_ptr<DataDirLock> lock_;
  // Declared before the stores that use it, so it is closed after them.
  std::unique_ptr<Db> db_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<DatasetStore> dataset_store_;
  std::unique_ptr<AdapterStore> adapter_store_;
  std::unique_ptr<BatchJobStore> batch_store_;
  std::unique_ptr<OwnerStore> owner_store_;
  std::unique_ptr<auth::Ownership> ownership_;
  EventHub hub_;
  std::unique_ptr<JobJournal> journal_;
  std::unique_ptr<WorkerSupervisor> supervisor_;
  // Shared by the worker client's waits and the telemetry streams.
  std::unique_ptr<TimerQueue> timers_;
  std::unique_ptr<WorkerClient> worker_;
  // Before the services that use them, so that they outlive those.
  std::unique_ptr<TelemetryCollector> telemetry_collector_;
  std::unique_ptr<Admission> admission_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<WorkQueue> work_;
  std::unique_ptr<DatasetsService> datasets_;
  std::unique_ptr<FineTuningService> fine_tuning_;
  std::unique_ptr<InferenceService> inference_;
  std::unique_ptr<AdapterRegistry> registry_;
  std::unique_ptr<AdaptersService> adapters_;
  std::unique_ptr<BatchJournal> batch_journal_;
  std::unique_ptr<BatchRunner> batch_runner_;
  std::unique_ptr<BatchService> batch_;
  // Before the server, whose calls it admits, so that it outlives them.
  std::unique_ptr<auth::Gatekeeper> gate_;
  std::unique_ptr<grpc::Server> server_;
  std::string metrics_address_;
  // The HTTP API calls the server in-process: destroyed before it.
  std::unique_ptr<openai::OpenAiApi> openai_;
  std::unique_ptr<http::HttpServer> http_;
  std::string http_address_;
  std::atomic<bool> worker_ready_{false};
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<MetricsSampler> metrics_sampler_;
  std::unique_ptr<TelemetryService> telemetry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::unique_ptr<MetricsHttps> metrics_https_;  // instead, with TLS
  bool shut_down_ = false;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_DAEMON_H_
