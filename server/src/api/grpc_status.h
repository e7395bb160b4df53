// Conversions between absl::Status (used everywhere inside lorad) and
// grpc::Status (used only at the service edge). The codes are the same by
// design; only the types differ.
#ifndef LORAD_SERVER_API_GRPC_STATUS_H_
#define LORAD_SERVER_API_GRPC_STATUS_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/server_callback.h"
#include "grpcpp/support/status.h"

namespace lorad::server {

// Longest message a client is sent; longer ones are cut (on a UTF-8
// boundary) and say how many bytes were left out.
inline constexpr size_t kMaxStatusMessageBytes = 2048;

// Same code and message (the message cut to kMaxStatusMessageBytes).
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// Finishes `reactor` with `status` when it is an error: true then, and the
// handler returns at once. For one-line checks at the top of a handler.
bool FinishIfError(grpc::ServerUnaryReactor* reactor,
                   const absl::Status& status);

// The canonical upper-case name of a code, e.g. "INVALID_ARGUMENT".
std::string StatusCodeName(absl::StatusCode code);

}  // namespace lorad::server

#endif  // LORAD_SERVER_API_GRPC_STATUS_H_
