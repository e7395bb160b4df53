// /metrics over HTTPS. prometheus-cpp's Exposer serves plain HTTP only
// (Debian's civetweb 1.15 resets TLS connections after the handshake with
// OpenSSL 3), so when lorad has a TLS certificate the registry is served by
// cpp-httplib's TLS server instead: same path, same text format, the same
// certificate and key as the gRPC API, client certificates required when
// --tls_client_ca is set, and HTTP basic auth when a checker is given.
#ifndef LORAD_SERVER_TELEMETRY_METRICS_HTTPS_H_
#define LORAD_SERVER_TELEMETRY_METRICS_HTTPS_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "prometheus/registry.h"

namespace httplib {
class SSLServer;
}

namespace lorad::server {

struct MetricsHttpsOptions {
  std::string address;    // host:port; port 0 picks a free one
  std::string cert_file;  // PEM
  std::string key_file;   // PEM
  std::string client_ca;  // PEM; empty: no client certificate asked for
  // (user, password) -> allowed; empty: no authentication.
  std::function<bool(const std::string&, const std::string&)> check_basic;
};

class MetricsHttps {
 public:
  // Listens and serves in a thread of its own until destroyed.
  // InvalidArgument when the certificate or key cannot be loaded;
  // Unavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttps>> Start(
      const MetricsHttpsOptions& options,
      std::shared_ptr<prometheus::Registry> registry);
  ~MetricsHttps();
  MetricsHttps(const MetricsHttps&) = delete;
  MetricsHttps& operator=(const MetricsHttps&) = delete;

  int port() const { return port_; }

 private:
  MetricsHttps() = default;
  std::unique_ptr<httplib::SSLServer> server_;
  std::thread thread_;
  int port_ = 0;
};

// Whether an "Authorization" header value carries HTTP basic credentials
// that `check` accepts.
bool BasicAuthAccepted(
    const std::string& header,
    const std::function<bool(const std::string&, const std::string&)>& check);

}  // namespace lorad::server

#endif  // LORAD_SERVER_TELEMETRY_METRICS_HTTPS_H_
