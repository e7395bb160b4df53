// The OpenAI API's error object ({"error": {"message", "type", "param",
// "code"}}) and how lorad's gRPC statuses map onto HTTP statuses.
#ifndef LORAD_SERVER_OPENAI_ERRORS_H_
#define LORAD_SERVER_OPENAI_ERRORS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"
#include "http/http_server.h"

namespace lorad::server::openai {

// `param` names the offending request field ("" for none).
http::Response Error(int status, absl::string_view message,
                     absl::string_view param = "", absl::string_view code = "");

// A failed gRPC call as the API reports it: INVALID_ARGUMENT 400,
// UNAUTHENTICATED 401, PERMISSION_DENIED 403, NOT_FOUND 404,
// ALREADY_EXISTS/ABORTED/FAILED_PRECONDITION 409, OUT_OF_RANGE 400,
// RESOURCE_EXHAUSTED 429 with Retry-After (from the call's retry-after-ms
// trailer, else 1 s), UNAVAILABLE 503, DEADLINE_EXCEEDED 504,
// UNIMPLEMENTED 501, anything else 500. `context` may be null.
http::Response FromGrpc(const grpc::Status& status,
                        const grpc::ClientContext* context);

// The HTTP status FromGrpc uses for `code`.
int HttpStatusFor(grpc::StatusCode code);

}  // namespace lorad::server::openai

#endif  // LORAD_SERVER_OPENAI_ERRORS_H_
