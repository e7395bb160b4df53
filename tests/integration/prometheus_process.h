// A real Prometheus server for integration tests, and a minimal HTTP client
// for its API and for /metrics endpoints.
#ifndef LORAD_TESTS_INTEGRATION_PROMETHEUS_PROCESS_H_
#define LORAD_TESTS_INTEGRATION_PROMETHEUS_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace lorad::testing {

// The prometheus executable on PATH (or /usr/bin), or "" when there is none.
std::string PrometheusBinary();

// A free TCP port on 127.0.0.1 (bound and released: another process may
// take it in between, which is unlikely on a test host).
int FreePort();

// GET http://127.0.0.1:port/path_and_query over HTTP/1.0; the body on 200,
// else an error naming the status line.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path_and_query,
                                    absl::Duration timeout = absl::Seconds(10));

std::string UrlEncode(const std::string& s);

class PrometheusProcess {
 public:
  // Writes `config_yaml` to `dir`/prometheus.yml and starts Prometheus on
  // 127.0.0.1 with a free port, its TSDB under `dir`; waits for /-/ready.
  static absl::StatusOr<std::unique_ptr<PrometheusProcess>> Start(
      const std::string& dir, const std::string& config_yaml,
      absl::Duration timeout = absl::Seconds(60));
  ~PrometheusProcess();  // SIGTERM, then SIGKILL

  int port() const { return port_; }
  // /api/v1/query at the present time: the parsed JSON answer, or an error
  // for a transport failure or a status other than "success".
  absl::StatusOr<nlohmann::json> Query(const std::string& promql);

 private:
  PrometheusProcess(pid_t pid, int port) : pid_(pid), port_(port) {}
  pid_t pid_;
  int port_;
};

}  // namespace lorad::testing

#endif  // LORAD_TESTS_INTEGRATION_PROMETHEUS_PROCESS_H_
