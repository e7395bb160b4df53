// lorad: the QLoRA fine-tuning and serving daemon.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "daemon.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "lorad/model/tiny_model.h"
#include "options.h"

ABSL_FLAG(std::string, address, "127.0.0.1:50051",
          "host:port to serve on; port 0 picks a free port");
ABSL_FLAG(std::string, data_dir, "",
          "where jobs, datasets, adapters and models live (default "
          "$HOME/.local/share/lorad, or /var/lib/lorad without HOME)");
ABSL_FLAG(std::string, worker_binary, "",
          "the lorad-worker executable (default: next to lorad, then "
          "../worker/lorad-worker)");
ABSL_FLAG(std::string, device, "auto", "worker device: auto, cpu or cuda");
ABSL_FLAG(std::string, base_model, lorad::model::kTinyModelName,
          "model served when a Generate request names no adapter");
ABSL_FLAG(int64_t, max_upload_bytes, int64_t{1} << 30,
          "largest dataset upload accepted, in bytes");
ABSL_FLAG(int32_t, batch_concurrency, 8,
          "Generate calls a batch inference job keeps in flight at once");
ABSL_FLAG(int32_t, max_device_adapters, 8,
          "adapters kept on the device; the least recently used unpinned "
          "ones move to host memory (<= 0: no bound)");
ABSL_FLAG(int32_t, max_concurrent_jobs, 1,
          "fine-tune jobs run at the same time (as many as fit the device "
          "by their memory estimates); the worker fuses the micro-batches "
          "of jobs on the same base into one forward");
ABSL_FLAG(int32_t, worker_threads, 0,
          "the most threads the worker's LibTorch ops use, and so the most "
          "fused training passes it runs side by side on the CPU (0: "
          "LibTorch's default, OMP_NUM_THREADS or the cores)");
ABSL_FLAG(int32_t, max_batch, 32,
          "requests the worker decodes together in one batch");
ABSL_FLAG(int32_t, max_job_attempts, 3,
          "runs of a job before a crashing worker fails it");
ABSL_FLAG(std::string, metrics_address, "127.0.0.1:9464",
          "host:port for Prometheus /metrics; empty disables it");
ABSL_FLAG(std::string, nvml_library, "libnvidia-ml.so.1",
          "NVML library loaded (dlopen) for GPU status");
ABSL_FLAG(absl::Duration, worker_hang_timeout, absl::Seconds(30),
          "a worker that answers no Ping for this long (e.g. 30s, 500ms) is "
          "killed and replaced; its requests fail UNAVAILABLE");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(15),
          "at SIGTERM, how long open calls may take to finish before they "
          "are cancelled");
ABSL_FLAG(int32_t, metrics_interval_ms, 1000,
          "how often the metrics are refreshed, in milliseconds");
ABSL_FLAG(std::string, auth_tokens_file, "",
          "API tokens, one per line: sha256:<hex> NAME ROLE (reader, user, "
          "trainer, admin); reloaded on SIGHUP. Empty: no authentication");
ABSL_FLAG(bool, insecure_allow_unauthenticated, false,
          "serve a non-loopback address without --auth_tokens_file");
ABSL_FLAG(bool, enable_reflection, false,
          "serve gRPC reflection (open to every caller) even with "
          "--auth_tokens_file; without it reflection is always served");
ABSL_FLAG(std::string, tls_cert, "", "PEM server certificate chain (TLS)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA; clients must present a certificate it signed (mTLS)");
ABSL_FLAG(int32_t, max_concurrent_calls_per_token, 0,
          "calls (streams included) in flight per token; 0 = unbounded");
ABSL_FLAG(int32_t, max_concurrent_calls, 0,
          "calls in flight over all tokens; 0 = unbounded");
ABSL_FLAG(double, rate_limit_per_token, 0,
          "calls per second per token (token bucket); 0 = unbounded");
ABSL_FLAG(double, rate_burst_per_token, 0,
          "calls a token may make at once above its rate (bucket size)");
ABSL_FLAG(int32_t, keepalive_time_ms, 120000,
          "HTTP/2 keepalive ping interval to clients; 0 = none");
ABSL_FLAG(int32_t, keepalive_timeout_ms, 20000,
          "how long a keepalive ping may go unanswered before the "
          "connection is closed");
ABSL_FLAG(std::string, http_address, "127.0.0.1:8000",
          "host:port of the OpenAI-compatible HTTP API (/v1/...); empty: off");
ABSL_FLAG(int32_t, http_threads, 2, "I/O threads of the HTTP API");
ABSL_FLAG(int32_t, http_max_connections, 256,
          "open HTTP connections at most; more are answered 503");
ABSL_FLAG(int64_t, http_max_body_bytes, 64 << 20,
          "largest HTTP request body (a /v1/files upload included); more: 413");
ABSL_FLAG(bool, metrics_require_auth, false,
          "/metrics asks for HTTP basic auth (user: a token's name, "
          "password: the token); needs --auth_tokens_file");
ABSL_FLAG(int32_t, max_connection_idle_ms, 0,
          "close connections without calls for this long; 0 = never");

namespace {

std::string DefaultDataDir() {
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') return "/var/lib/lorad";
  return absl::StrCat(home, "/.local/share/lorad");
}

std::string DefaultWorkerBinary() {
  std::error_code ec;
  std::filesystem::path self =
      std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "lorad-worker";
  std::filesystem::path dir = self.parent_path();
  std::filesystem::path beside = dir / "lorad-worker";
  std::filesystem::path sibling = dir.parent_path() / "worker" / "lorad-worker";
  if (std::filesystem::exists(beside, ec)) return beside.string();
  if (std::filesystem::exists(sibling, ec)) return sibling.string();
  return beside.string();
}

// True when --`name` = `value` lies in [lo, hi]; otherwise says so.
bool FlagInRange(const char* name, int value, int lo, int hi) {
  if (value >= lo && value <= hi) return true;
  std::fprintf(stderr, "lorad: --%s must be in [%d, %d], got %d\n", name, lo,
               hi, value);
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  // Block the shutdown signals before any thread exists, so that every
  // thread inherits the mask and only sigwait() below receives them.
  sigset_t shutdown_signals;
  sigemptyset(&shutdown_signals);
  sigaddset(&shutdown_signals, SIGTERM);
  sigaddset(&shutdown_signals, SIGINT);
  sigaddset(&shutdown_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &shutdown_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::SetProgramUsageMessage(
      "lorad: QLoRA fine-tuning and LoRA serving daemon");
  // --help lists the flags of this file (absl matches only files named after
  // the program by default).
  absl::FlagsUsageConfig usage_config;
  usage_config.contains_help_flags = [](absl::string_view path) {
    return absl::EndsWith(path, "server/src/main.cc");
  };
  usage_config.contains_helpshort_flags = usage_config.contains_help_flags;
  absl::SetFlagsUsageConfig(usage_config);
  absl::ParseCommandLine(argc, argv);

  lorad::server::DaemonOptions options;
  options.address = absl::GetFlag(FLAGS_address);
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  if (options.data_dir.empty()) options.data_dir = DefaultDataDir();
  options.worker_binary = absl::GetFlag(FLAGS_worker_binary);
  if (options.worker_binary.empty()) {
    options.worker_binary = DefaultWorkerBinary();
  }
  options.device = absl::GetFlag(FLAGS_device);
  options.base_model = absl::GetFlag(FLAGS_base_model);
  options.max_upload_bytes = absl::GetFlag(FLAGS_max_upload_bytes);
  options.max_job_attempts = absl::GetFlag(FLAGS_max_job_attempts);
  options.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  options.nvml_library = absl::GetFlag(FLAGS_nvml_library);
  if (absl::GetFlag(FLAGS_metrics_interval_ms) < 100) {
    std::fprintf(stderr, "lorad: --metrics_interval_ms must be >= 100\n");
    return 2;
  }
  options.metrics_interval =
      absl::Milliseconds(absl::GetFlag(FLAGS_metrics_interval_ms));
  options.worker_hang_timeout = absl::GetFlag(FLAGS_worker_hang_timeout);
  if (options.worker_hang_timeout < absl::Milliseconds(100)) {
    std::fprintf(stderr, "lorad: --worker_hang_timeout must be >= 100ms\n");
    return 2;
  }
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  if (options.shutdown_grace < absl::ZeroDuration()) {
    std::fprintf(stderr, "lorad: --shutdown_grace must be >= 0\n");
    return 2;
  }
  options.batch_concurrency = absl::GetFlag(FLAGS_batch_concurrency);
  options.max_device_adapters = absl::GetFlag(FLAGS_max_device_adapters);
  options.max_batch = absl::GetFlag(FLAGS_max_batch);
  options.max_concurrent_jobs = absl::GetFlag(FLAGS_max_concurrent_jobs);
  options.worker_threads = absl::GetFlag(FLAGS_worker_threads);
  if (!FlagInRange("max_concurrent_jobs", options.max_concurrent_jobs, 1, 64) ||
      !FlagInRange("worker_threads", options.worker_threads, 0, 1024) ||
      !FlagInRange("batch_concurrency", options.batch_concurrency, 1, 256)) {
    return 2;
  }
  if (options.max_batch < 1) {
    std::fprintf(stderr, "lorad: --max_batch must be >= 1\n");
    return 2;
  }
  if (options.max_upload_bytes <= 0 || options.max_job_attempts < 1) {
    std::fprintf(stderr,
                 "lorad: --max_upload_bytes and --max_job_attempts must be "
                 "positive\n");
    return 2;
  }

  options.auth_tokens_file = absl::GetFlag(FLAGS_auth_tokens_file);
  options.insecure_allow_unauthenticated =
      absl::GetFlag(FLAGS_insecure_allow_unauthenticated);
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  options.max_concurrent_calls_per_token =
      absl::GetFlag(FLAGS_max_concurrent_calls_per_token);
  options.max_concurrent_calls = absl::GetFlag(FLAGS_max_concurrent_calls);
  options.rate_limit_per_token = absl::GetFlag(FLAGS_rate_limit_per_token);
  options.rate_burst_per_token = absl::GetFlag(FLAGS_rate_burst_per_token);
  options.keepalive_interval =
      absl::Milliseconds(absl::GetFlag(FLAGS_keepalive_time_ms));
  options.keepalive_timeout =
      absl::Milliseconds(absl::GetFlag(FLAGS_keepalive_timeout_ms));
  options.max_connection_idle =
      absl::Milliseconds(absl::GetFlag(FLAGS_max_connection_idle_ms));
  options.metrics_require_auth = absl::GetFlag(FLAGS_metrics_require_auth);
  options.http_address = absl::GetFlag(FLAGS_http_address);
  options.http_threads = absl::GetFlag(FLAGS_http_threads);
  options.http_max_connections = absl::GetFlag(FLAGS_http_max_connections);
  options.http_max_body_bytes = absl::GetFlag(FLAGS_http_max_body_bytes);
  if (options.http_threads < 1 || options.http_max_connections < 1 ||
      options.http_max_body_bytes < 1) {
    std::fprintf(stderr,
                 "lorad: --http_threads, --http_max_connections and "
                 "--http_max_body_bytes must be >= 1\n");
    return 2;
  }
  if (options.max_concurrent_calls_per_token < 0 ||
      options.max_concurrent_calls < 0 || options.rate_limit_per_token < 0 ||
      options.rate_burst_per_token < 0) {
    std::fprintf(stderr, "lorad: the call limits must be >= 0\n");
    return 2;
  }

  options.enable_reflection = absl::GetFlag(FLAGS_enable_reflection);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  absl::StatusOr<std::unique_ptr<lorad::server::Daemon>> daemon =
      lorad::server::Daemon::Start(options);
  if (!daemon.ok()) {
    std::fprintf(stderr, "lorad: %s\n", daemon.status().ToString().c_str());
    return 1;
  }
  if (!(*daemon)->metrics_address().empty()) {
    std::fprintf(stderr, "lorad: metrics on %s://%s/metrics\n",
                 options.tls_cert.empty() ? "http" : "https",
                 (*daemon)->metrics_address().c_str());
  }
  if (!(*daemon)->http_address().empty()) {
    std::cout << "lorad http on " << (*daemon)->http_address() << std::endl;
    std::fprintf(stderr, "lorad: OpenAI-compatible API on %s://%s/v1\n",
                 options.tls_cert.empty() ? "http" : "https",
                 (*daemon)->http_address().c_str());
  }
  std::cout << "lorad listening on " << (*daemon)->address() << std::endl;
  std::fprintf(stderr, "lorad: data in %s, worker %s\n",
               options.data_dir.c_str(), options.worker_binary.c_str());

  int signal_number = 0;
  while (sigwait(&shutdown_signals, &signal_number) == 0 &&
         signal_number == SIGHUP) {
    absl::Status reloaded = (*daemon)->ReloadAuth();
    std::fprintf(stderr, "lorad: SIGHUP: %s\n",
                 reloaded.ok() ? "reloaded the API tokens"
                               : absl::StrCat("kept the API tokens in use: ",
                                              reloaded.message())
                                     .c_str());
  }
  std::fprintf(stderr, "lorad: %s, shutting down\n", strsignal(signal_number));
  (*daemon)->Shutdown();
  daemon->reset();
  return 0;
}
