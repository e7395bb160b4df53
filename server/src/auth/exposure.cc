#include "auth/exposure.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpc/grpc.h"
#include "grpcpp/impl/server_builder_option.h"
#include "grpcpp/impl/server_builder_plugin.h"
#include "lorad/common/files.h"
#include "lorad/common/status_macros.h"

namespace lorad::server::auth {
namespace {

absl::string_view Host(absl::string_view address) {
  size_t colon = address.rfind(':');
  absl::string_view host =
      colon == absl::string_view::npos ? address : address.substr(0, colon);
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    host = host.substr(1, host.size() - 2);
  }
  return host;
}

absl::StatusOr<std::string> ReadPem(absl::string_view flag,
                                    const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFile(path);
  if (!pem.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " ", path, ": ", pem.status().message()));
  }
  return pem;
}

}  // namespace

bool IsLoopback(absl::string_view address) {
  if (absl::StartsWith(address, "unix:")) return true;
  absl::string_view host = Host(address);
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

absl::Status CheckExposure(const DaemonOptions& options) {
  if (!options.auth_tokens_file.empty() ||
      options.insecure_allow_unauthenticated) {
    return absl::OkStatus();
  }
  // The HTTP API is the same API: the same rule.
  std::string exposed;
  if (!IsLoopback(options.address)) {
    exposed = options.address;
  } else if (!options.http_address.empty() &&
             !IsLoopback(options.http_address)) {
    exposed = options.http_address;
  } else {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "refusing to serve ", exposed,
      " (not a loopback address) without authentication: set "
      "--auth_tokens_file, or --insecure_allow_unauthenticated to serve "
      "anyone who can connect"));
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const DaemonOptions& options) {
  if (options.tls_cert.empty() && options.tls_key.empty() &&
      options.tls_client_ca.empty()) {
    return grpc::InsecureServerCredentials();
  }
  if (options.tls_cert.empty() || options.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert and --tls_key go together (and --tls_client_ca needs "
        "both)");
  }
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  LORAD_ASSIGN_OR_RETURN(pair.cert_chain,
                         ReadPem("tls_cert", options.tls_cert));
  LORAD_ASSIGN_OR_RETURN(pair.private_key, ReadPem("tls_key", options.tls_key));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!options.tls_client_ca.empty()) {
    LORAD_ASSIGN_OR_RETURN(ssl.pem_root_certs,
                           ReadPem("tls_client_ca", options.tls_client_ca));
    ssl.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

namespace {

class DropPlugin final : public grpc::ServerBuilderOption {
 public:
  explicit DropPlugin(std::string name) : name_(std::move(name)) {}
  void UpdateArguments(grpc::ChannelArguments* /*args*/) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>*
                         plugins) override {
    std::erase_if(*plugins, [this](const auto& plugin) {
      return plugin->name() == name_;
    });
  }

 private:
  const std::string name_;
};

}  // namespace

void DropReflection(grpc::ServerBuilder& builder) {
  builder.SetOption(std::make_unique<DropPlugin>("proto_server_reflection"));
}

void AddConnectionArgs(const DaemonOptions& options,
                       grpc::ServerBuilder& builder) {
  if (options.keepalive_interval > absl::ZeroDuration()) {
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                               static_cast<int>(absl::ToInt64Milliseconds(
                                   options.keepalive_interval)));
    builder.AddChannelArgument(
        GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
        static_cast<int>(absl::ToInt64Milliseconds(options.keepalive_timeout)));
    // Ping idle connections too: a client that vanished without closing its
    // socket (a pulled cable, a dead NAT entry) holds no call, and would
    // otherwise keep its connection forever.
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  }
  if (options.max_connection_idle > absl::ZeroDuration()) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                               static_cast<int>(absl::ToInt64Milliseconds(
                                   options.max_connection_idle)));
  }
}

}  // namespace lorad::server::auth
