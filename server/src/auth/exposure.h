// How lorad's gRPC port is exposed: TLS credentials, the refusal to serve a
// non-loopback address without authentication, and the connection limits.
#ifndef LORAD_SERVER_AUTH_EXPOSURE_H_
#define LORAD_SERVER_AUTH_EXPOSURE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "options.h"

namespace lorad::server::auth {

// True for 127.0.0.0/8, ::1, localhost and unix sockets.
bool IsLoopback(absl::string_view address);

// FailedPrecondition when options.address is not loopback, no tokens file is
// set and insecure_allow_unauthenticated is not.
absl::Status CheckExposure(const DaemonOptions& options);

// TLS credentials from tls_cert/tls_key (and tls_client_ca: a client
// certificate signed by it is required), or insecure ones when no TLS flag
// is set. InvalidArgument for half a pair or an unreadable file.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const DaemonOptions& options);

// Leaves gRPC reflection out of the server `builder` builds. (Linking the
// reflection library registers its plugin for every server.)
void DropReflection(grpc::ServerBuilder& builder);

// Keepalive and idle-connection channel arguments.
void AddConnectionArgs(const DaemonOptions& options,
                       grpc::ServerBuilder& builder);

}  // namespace lorad::server::auth

#endif  // LORAD_SERVER_AUTH_EXPOSURE_H_
