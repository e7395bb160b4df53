#include "daemon.h"

#include <chrono>
#include <cstdio>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "auth/call_gate.h"
#include "auth/exposure.h"
#include "auth/ownership.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "lorad/common/status_macros.h"
#include "prometheus/exposer.h"
#include "store/data_dir_cleanup.h"
#include "store/owner_store.h"

namespace lorad::server {
namespace {

// Datasets arrive in chunks; allow chunks well above gRPC's 4 MiB default.
constexpr int kMaxMessageBytes = 64 << 20;

std::string WithPort(const std::string& address, int port) {
  size_t colon = address.rfind(':');
  std::string host =
      colon == std::string::npos ? address : address.substr(0, colon);
  return absl::StrCat(host, ":", port);
}

}  // namespace

Daemon::Daemon(const DaemonOptions& options) : options_(options) {}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(
    const DaemonOptions& options) {
  LORAD_RETURN_IF_ERROR(auth::CheckExposure(options));
  LORAD_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                         auth::ServerCredentials(options));
  std::unique_ptr<Daemon> daemon(new Daemon(options));
  auth::Gatekeeper::Options gate;
  gate.tokens_file = options.auth_tokens_file;
  gate.max_concurrent_per_token = options.max_concurrent_calls_per_token;
  gate.max_concurrent_total = options.max_concurrent_calls;
  gate.rate_per_token = options.rate_limit_per_token;
  gate.burst_per_token = options.rate_burst_per_token;
  LORAD_ASSIGN_OR_RETURN(daemon->gate_, auth::Gatekeeper::Create(gate));
  const DataLayout layout(options.data_dir);
  for (const std::string& dir :
       {layout.root(), layout.DatasetsDir(), layout.ModelsDir(),
        layout.RunDir(), layout.root() + "/jobs",
        layout.root() + "/adapters"}) {
    LORAD_RETURN_IF_ERROR(options.env->CreateDirs(dir));
  }
  LORAD_ASSIGN_OR_RETURN(daemon->lock_,
                         DataDirLock::Acquire(layout.LockPath()));
  LORAD_ASSIGN_OR_RETURN(const int64_t leftovers,
                         RemoveLeftovers(layout.root()));
  if (leftovers > 0) {
    std::fprintf(stderr, "lorad: removed %lld leftover temp files in %s\n",
                 static_cast<long long>(leftovers), layout.root().c_str());
  }
  LORAD_ASSIGN_OR_RETURN(daemon->db_, Db::Open(layout.DatabasePath()));
  Db* const db = daemon->db_.get();
  LORAD_ASSIGN_OR_RETURN(daemon->store_, JobStore::Open(db, options.env));
  LORAD_ASSIGN_OR_RETURN(daemon->dataset_store_, DatasetStore::Open(db));
  LORAD_ASSIGN_OR_RETURN(daemon->adapter_store_, AdapterStore::Open(db));
  LORAD_ASSIGN_OR_RETURN(daemon->batch_store_,
                         BatchJobStore::Open(db, options.env));
  daemon->journal_ =
      std::make_unique<JobJournal>(daemon->store_.get(), &daemon->hub_);

  WorkerSupervisor::Options worker;
  worker.binary = options.worker_binary;
  worker.device = options.device;
  worker.socket_path = layout.WorkerSocketPath();
  worker.start_timeout = options.worker_start_timeout;
  worker.hang_timeout = options.worker_hang_timeout;
  worker.extra_args = {
      absl::StrCat("--max_device_adapters=", options.max_device_adapters),
      absl::StrCat("--max_batch=", options.max_batch),
      absl::StrCat("--max_concurrent_jobs=", options.max_concurrent_jobs),
      absl::StrCat("--threads=", options.worker_threads)};
  daemon->supervisor_ = std::make_unique<WorkerSupervisor>(worker);
  daemon->timers_ = std::make_unique<TimerQueue>();
  daemon->worker_ = std::make_unique<WorkerClient>(daemon->supervisor_.get(),
                                                   daemon->timers_.get(),
                                                   WorkerClient::Options());
  daemon->supervisor_->Start();

  daemon->registry_ = std::make_unique<AdapterRegistry>(
      options, daemon->adapter_store_.get(), daemon->store_.get(),
      daemon->worker_.get());
  if (daemon->adapter_store_->created_registry()) {
    daemon->registry_->RegisterFinishedJobs();
  }

  daemon->scheduler_ = std::make_unique<Scheduler>(
      options, daemon->store_.get(), daemon->dataset_store_.get(),
      daemon->journal_.get(), daemon->worker_.get());
  LORAD_ASSIGN_OR_RETURN(daemon->owner_store_, OwnerStore::Open(db));
  daemon->ownership_ =
      std::make_unique<auth::Ownership>(daemon->owner_store_.get());
  daemon->scheduler_->SetAdapterHook(
      [registry = daemon->registry_.get(), owners = daemon->ownership_.get()](
          const v1::FineTuneJob& job, const std::string& adapter_dir) {
        absl::StatusOr<v1::Adapter> adapter =
            registry->RegisterTrained(job, adapter_dir);
        if (!adapter.ok()) return adapter.status();
        return owners->Inherit(auth::Kind::kJob, job.id(), auth::Kind::kAdapter,
                               adapter->name());
      });

  daemon->work_ = std::make_unique<WorkQueue>(2);
  daemon->datasets_ = std::make_unique<DatasetsService>(
      options, daemon->dataset_store_.get(), daemon->work_.get());
  daemon->fine_tuning_ = std::make_unique<FineTuningService>(
      daemon->store_.get(), daemon->dataset_store_.get(),
      daemon->journal_.get(), &daemon->hub_, daemon->scheduler_.get());
  daemon->inference_ = std::make_unique<InferenceService>(
      options, daemon->store_.get(), daemon->worker_.get());
  daemon->inference_->set_registry(daemon->registry_.get());
  daemon->adapters_ =
      std::make_unique<AdaptersService>(options, daemon->registry_.get());
  daemon->batch_journal_ =
      std::make_unique<BatchJournal>(daemon->batch_store_.get(), &daemon->hub_);
  daemon->batch_runner_ = std::make_unique<BatchRunner>(
      options, daemon->batch_store_.get(), daemon->batch_journal_.get(),
      daemon->worker_.get(), daemon->inference_.get());
  LORAD_RETURN_IF_ERROR(daemon->batch_runner_->Start());
  daemon->batch_ = std::make_unique<BatchService>(
      options, daemon->batch_store_.get(), daemon->batch_journal_.get(),
      &daemon->hub_, daemon->batch_runner_.get(), daemon->inference_.get());

  daemon->datasets_->set_ownership(daemon->ownership_.get());
  daemon->fine_tuning_->set_ownership(daemon->ownership_.get());
  daemon->inference_->set_ownership(daemon->ownership_.get());
  daemon->adapters_->set_ownership(daemon->ownership_.get());
  daemon->batch_->set_ownership(daemon->ownership_.get());

  daemon->metrics_ = std::make_unique<Metrics>();
  daemon->inference_->SetMetrics(daemon->metrics_.get());
  TelemetryCollector::Options telemetry;
  telemetry.devices.nvml_library = options.nvml_library;
  telemetry.worker_device = options.device;
  daemon->telemetry_collector_ = std::make_unique<TelemetryCollector>(
      telemetry, daemon->store_.get(), daemon->worker_.get());
  Admission::Options admission;
  admission.batch_concurrency = options.batch_concurrency;
  daemon->admission_ = std::make_unique<Admission>(
      [collector = daemon->telemetry_collector_.get()] {
        return collector->Room();
      },
      admission);
  daemon->fine_tuning_->set_admission(daemon->admission_.get());
  daemon->scheduler_->SetFitCheck(
      [admission = daemon->admission_.get()](
          const std::vector<v1::FineTuneJob>& running,
          const v1::FineTuneJob& candidate) {
        return admission->CheckBeside(running, candidate);
      });
  // Started once admission exists: the fit check reads the device's room.
  LORAD_RETURN_IF_ERROR(daemon->scheduler_->Start());
  daemon->inference_->set_admission(daemon->admission_.get());
  daemon->telemetry_ = std::make_unique<TelemetryService>(
      daemon->telemetry_collector_.get(), daemon->work_.get(),
      daemon->timers_.get());
  if (!options.metrics_address.empty()) {
    LORAD_RETURN_IF_ERROR(daemon->StartMetrics());
  }

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.address, credentials, &port);
  auth::InstallCallGate(builder, daemon->gate_.get());
  auth::AddConnectionArgs(options, builder);
  if (!options.auth_tokens_file.empty() && !options.enable_reflection) {
    auth::DropReflection(builder);
  }
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.RegisterService(daemon->datasets_.get());
  builder.RegisterService(daemon->fine_tuning_.get());
  builder.RegisterService(daemon->inference_.get());
  builder.RegisterService(daemon->telemetry_.get());
  builder.RegisterService(daemon->adapters_.get());
  builder.RegisterService(daemon->batch_.get());
  daemon->server_ = builder.BuildAndStart();
  if (daemon->server_ == nullptr || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.address));
  }
  daemon->address_ = WithPort(options.address, port);
  daemon->WatchHealth();
  if (!options.http_address.empty()) {
    LORAD_RETURN_IF_ERROR(daemon->StartHttp());
  }
  return daemon;
}

Daemon::~Daemon() { Shutdown(); }

void Daemon::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (worker_ != nullptr) worker_->SetReadinessObserver(nullptr);
  if (scheduler_ != nullptr) scheduler_->Stop();
  if (batch_runner_ != nullptr) batch_runner_->Stop();
  // No new HTTP requests; the calls they made end with the server's.
  http_.reset();
  if (server_ != nullptr) {
    server_->Shutdown(
        absl::ToChronoTime(absl::Now() + options_.shutdown_grace));
  }
  openai_.reset();
  if (metrics_sampler_ != nullptr) metrics_sampler_->Stop();
  exposer_.reset();
  metrics_https_.reset();
  if (supervisor_ != nullptr) supervisor_->Stop();
}

void Daemon::WatchHealth() {
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health != nullptr) health->SetServingStatus(kLivenessService, true);
  worker_->SetReadinessObserver([this, health](bool ready) {
    worker_ready_.store(ready);
    if (health == nullptr) return;
    health->SetServingStatus("", ready);
    health->SetServingStatus(kReadinessService, ready);
  });
}

absl::Status Daemon::StartHttp() {
  openai::ApiOptions api;
  api.base_model = options_.base_model;
  api.created_unix = absl::ToUnixSeconds(absl::Now());
  api.ready = [this] { return worker_ready_.load(); };
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  openai_ = std::make_unique<openai::OpenAiApi>(server_->InProcessChannel(args),
                                                std::move(api));
  http::ServerOptions o;
  o.address = options_.http_address;
  o.threads = options_.http_threads;
  o.max_connections = options_.http_max_connections;
  o.max_body_bytes = options_.http_max_body_bytes;
  o.tls_cert = options_.tls_cert;
  o.tls_key = options_.tls_key;
  o.tls_client_ca = options_.tls_client_ca;
  LORAD_ASSIGN_OR_RETURN(
      http_, http::HttpServer::Start(
                 o, [api = openai_.get()](http::Request request,
                                          std::shared_ptr<http::Reply> reply) {
                   api->Handle(std::move(request), std::move(reply));
                 }));
  http_address_ = WithPort(options_.http_address, http_->port());
  return absl::OkStatus();
}

absl::Status Daemon::ReloadAuth() { return gate_->Reload(); }

absl::Status Daemon::StartMetrics() {
  if (!options_.tls_cert.empty()) return StartMetricsOverTls();
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(options_.metrics_address);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat(
        "cannot serve metrics on ", options_.metrics_address, ": ", e.what()));
  }
  exposer_->RegisterCollectable(metrics_->registry());
  if (options_.metrics_require_auth) {
    if (!gate_->auth_enabled()) {
      return absl::InvalidArgumentError(
          "--metrics_require_auth needs --auth_tokens_file");
    }
    exposer_->RegisterAuth(
        [gate = gate_.get()](const std::string& user,
                             const std::string& password) {
          return gate->CheckBasic(user, password);
        },
        "lorad");
  }
  std::vector<int> ports = exposer_->GetListeningPorts();
  metrics_address_ =
      WithPort(options_.metrics_address, ports.empty() ? 0 : ports.front());
  StartMetricsSampler();
  return absl::OkStatus();
}

absl::Status Daemon::StartMetricsOverTls() {
  MetricsHttpsOptions https;
  https.address = options_.metrics_address;
  https.cert_file = options_.tls_cert;
  https.key_file = options_.tls_key;
  https.client_ca = options_.tls_client_ca;
  if (options_.metrics_require_auth) {
    if (!gate_->auth_enabled()) {
      return absl::InvalidArgumentError(
          "--metrics_require_auth needs --auth_tokens_file");
    }
    https.check_basic = [gate = gate_.get()](const std::string& user,
                                             const std::string& password) {
      return gate->CheckBasic(user, password);
    };
  }
  absl::StatusOr<std::unique_ptr<MetricsHttps>> endpoint =
      MetricsHttps::Start(https, metrics_->registry());
  if (!endpoint.ok()) return endpoint.status();
  metrics_https_ = *std::move(endpoint);
  metrics_address_ = WithPort(options_.metrics_address, metrics_https_->port());
  StartMetricsSampler();
  return absl::OkStatus();
}

void Daemon::StartMetricsSampler() {
  metrics_sampler_ = std::make_unique<MetricsSampler>(
      telemetry_collector_.get(), metrics_.get(), options_.metrics_interval);
  metrics_sampler_->Start();
}

}  // namespace lorad::server
