// Conversions between absl::Status (used everywhere inside lorad) and
// grpc::Status (used only at the service edge). The codes are the same by
// design; only the types differ.
#ifndef LORAD_SERVER_API_GRPC_STATUS_H_
#define LORAD_SERVER_API_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace lorad::server {

// Same code and message.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// The canonical upper-case name of a code, e.g. "INVALID_ARGUMENT".
std::string StatusCodeName(absl::StatusCode code);

}  // namespace lorad::server

#endif  // LORAD_SERVER_API_GRPC_STATUS_H_
