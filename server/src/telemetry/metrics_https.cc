#include "telemetry/metrics_https.h"

#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "prometheus/text_serializer.h"

namespace lorad::server {

bool BasicAuthAccepted(
    const std::string& header,
    const std::function<bool(const std::string&, const std::string&)>& check) {
  constexpr absl::string_view kScheme = "Basic ";
  if (!absl::StartsWithIgnoreCase(header, kScheme)) return false;
  std::string decoded;
  if (!absl::Base64Unescape(header.substr(kScheme.size()), &decoded)) {
    return false;
  }
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  return check(decoded.substr(0, colon), decoded.substr(colon + 1));
}

absl::StatusOr<std::unique_ptr<MetricsHttps>> MetricsHttps::Start(
    const MetricsHttpsOptions& options,
    std::shared_ptr<prometheus::Registry> registry) {
  const size_t colon = options.address.rfind(':');
  int port = -1;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(options.address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics address \"", options.address, "\" is not host:port"));
  }
  std::string host = options.address.substr(0, colon);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::unique_ptr<MetricsHttps> endpoint(new MetricsHttps());
  endpoint->server_ = std::make_unique<httplib::SSLServer>(
      options.cert_file.c_str(), options.key_file.c_str(),
      options.client_ca.empty() ? nullptr : options.client_ca.c_str());
  if (!endpoint->server_->is_valid()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot serve metrics over TLS: the certificate ",
                     options.cert_file, ", key ", options.key_file,
                     options.client_ca.empty() ? "" : " or client CA ",
                     options.client_ca, " cannot be loaded"));
  }
  auto check = options.check_basic;
  endpoint->server_->Get("/metrics", [registry, check](
                                         const httplib::Request& request,
                                         httplib::Response& response) {
    if (check &&
        !BasicAuthAccepted(request.get_header_value("Authorization"), check)) {
      response.status = 401;
      response.set_header("WWW-Authenticate", "Basic realm=\"lorad\"");
      response.set_content("authentication required\n", "text/plain");
      return;
    }
    const std::vector<prometheus::MetricFamily> families = registry->Collect();
    response.set_content(prometheus::TextSerializer().Serialize(families),
                         "text/plain; version=0.0.4");
  });
  if (port == 0) {
    port = endpoint->server_->bind_to_any_port(host);
  } else if (!endpoint->server_->bind_to_port(host, port)) {
    port = -1;
  }
  if (port <= 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot serve metrics on ", options.address, ": bind failed"));
  }
  endpoint->port_ = port;
  httplib::SSLServer* server = endpoint->server_.get();
  endpoint->thread_ = std::thread([server] { server->listen_after_bind(); });
  return endpoint;
}

MetricsHttps::~MetricsHttps() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace lorad::server
