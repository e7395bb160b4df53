// Daemon configuration and where things live under the data directory.
#ifndef LORAD_SERVER_OPTIONS_H_
#define LORAD_SERVER_OPTIONS_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "lorad/common/env.h"
#include "lorad/model/tiny_model.h"

namespace lorad::server {

struct DaemonOptions {
  // host:port to listen on; port 0 picks a free one.
  std::string address = "127.0.0.1:50051";
  std::string data_dir;
  // The lorad-worker executable.
  std::string worker_binary;
  // Passed to the worker as --device (auto | cpu | cuda).
  std::string device = "auto";
  // The base model served when a Generate request names no adapter.
  std::string base_model = model::kTinyModelName;
  int64_t max_upload_bytes = int64_t{1} << 30;
  // Concurrent Generate calls a batch inference job keeps in flight.
  int batch_concurrency = 8;
  // Adapters the worker keeps on the device per base model (the least
  // recently used unpinned ones move to host memory; <= 0: no bound), and
  // requests it decodes together.
  int max_device_adapters = 8;
  int max_batch = 32;
  // Fine-tune jobs run at the same time, as many as fit the device by
  // their summed memory estimates (jobs/admission.h); the worker fuses the
  // micro-batches of jobs on one base. 1: one job at a time, in order.
  int max_concurrent_jobs = 1;
  // Passed to the worker as --threads: the most intra-op threads its
  // LibTorch ops use, and the most fused training lanes on the CPU
  // (worker/training_group.h). 0: LibTorch's default.
  int worker_threads = 0;
  // How many times a job is started before a worker crash fails it.
  int max_job_attempts = 3;
  // How long a freshly started worker may take to answer Ping.
  absl::Duration worker_start_timeout = absl::Seconds(120);
  // At SIGTERM, how long calls still open may take to finish before they
  // are cancelled.
  absl::Duration shutdown_grace = absl::Seconds(15);
  // A ready worker silent to Ping this long is killed and replaced.
  absl::Duration worker_hang_timeout = absl::Seconds(30);
  // host:port of the Prometheus /metrics endpoint; empty disables it.
  std::string metrics_address = "127.0.0.1:9464";
  // How often the metrics are refreshed from the devices, worker and jobs.
  absl::Duration metrics_interval = absl::Seconds(1);
  // The NVML library dlopen()ed for GPU status.
  std::string nvml_library = "libnvidia-ml.so.1";
  // The filesystem and clock the stores, the adapter registry and uploads
  // use; not owned. Tests wrap it to inject faults.
  Env* env = Env::Default();

  // Security (see README "Security"). The API tokens file; empty: no
  // authentication, allowed only on a loopback address unless
  // insecure_allow_unauthenticated.
  std::string auth_tokens_file;
  bool insecure_allow_unauthenticated = false;
  // Serve gRPC reflection even with auth_tokens_file (it answers anyone).
  bool enable_reflection = false;
  // PEM files for TLS; with tls_client_ca every client must present a
  // certificate it signed (mTLS).
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  // Calls in flight per token and in all (0 = unbounded), and the
  // per-token request rate (calls per second, 0 = unbounded) and burst.
  int max_concurrent_calls_per_token = 0;
  int max_concurrent_calls = 0;
  double rate_limit_per_token = 0;
  double rate_burst_per_token = 0;
  // HTTP/2 keepalive pings to idle clients, and how long a connection may
  // stay without calls before it is closed (0 = never).
  absl::Duration keepalive_interval = absl::Minutes(2);
  absl::Duration keepalive_timeout = absl::Seconds(20);
  absl::Duration max_connection_idle = absl::ZeroDuration();
  // /metrics asks for HTTP basic auth: user a token's name, password the
  // token (needs auth_tokens_file).
  bool metrics_require_auth = false;
  // The OpenAI-compatible HTTP API (host:port; "" = off), with the API's
  // TLS settings and tokens. Its I/O threads are the only threads it uses.
  std::string http_address = "127.0.0.1:8000";
  int http_threads = 2;
  int http_max_connections = 256;
  int64_t http_max_body_bytes = 64 << 20;
};

// Paths below DaemonOptions::data_dir.
class DataLayout {
 public:
  explicit DataLayout(std::string data_dir) : root_(std::move(data_dir)) {}

  const std::string& root() const { return root_; }
  std::string DatabasePath() const { return root_ + "/lorad.db"; }
  // Held (flock) by the running daemon; holds its pid.
  std::string LockPath() const { return root_ + "/lock"; }
  std::string DatasetsDir() const { return root_ + "/datasets"; }
  std::string DatasetPath(const std::string& sha256) const {
    return DatasetsDir() + "/" + sha256 + ".jsonl";
  }
  std::string ModelsDir() const { return root_ + "/models"; }
  std::string RunDir() const { return root_ + "/run"; }
  std::string WorkerSocketPath() const { return RunDir() + "/worker.sock"; }
  std::string JobDir(const std::string& job_id) const {
    return root_ + "/jobs/" + job_id;
  }
  std::string AdapterDir(const std::string& job_id) const {
    return root_ + "/adapters/" + job_id;
  }

 private:
  std::string root_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_OPTIONS_H_
