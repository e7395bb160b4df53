#include "openai/errors.h"

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "api/grpc_status.h"

namespace lorad::server::openai {
namespace {

const char* TypeFor(int status) {
  switch (status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 409:
      return "conflict_error";
    case 413:
    case 400:
    case 422:
      return "invalid_request_error";
    case 429:
      return "rate_limit_error";
    case 503:
      return "service_unavailable_error";
    default:
      return "server_error";
  }
}

}  // namespace

http::Response Error(int status, absl::string_view message,
                     absl::string_view param, absl::string_view code) {
  nlohmann::json error = {
      {"message", std::string(message)},
      {"type", TypeFor(status)},
      {"param", param.empty() ? nlohmann::json(nullptr)
                              : nlohmann::json(std::string(param))},
      {"code", code.empty() ? nlohmann::json(nullptr)
                            : nlohmann::json(std::string(code))}};
  http::Response r;
  r.status = status;
  r.body = nlohmann::json{{"error", error}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

int HttpStatusFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::FAILED_PRECONDITION:
      return 409;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    default:
      return 500;
  }
}

http::Response FromGrpc(const grpc::Status& status,
                        const grpc::ClientContext* context) {
  const int http_status = HttpStatusFor(status.error_code());
  http::Response r = Error(
      http_status, status.error_message(), "",
      absl::AsciiStrToLower(
          StatusCodeName(static_cast<absl::StatusCode>(status.error_code()))));
  if (http_status == 429 || http_status == 503) {
    int64_t retry_ms = 1000;
    if (context != nullptr) {
      const auto& trailers = context->GetServerTrailingMetadata();
      auto it = trailers.find("retry-after-ms");
      int64_t v = 0;
      if (it != trailers.end() &&
          absl::SimpleAtoi(
              absl::string_view(it->second.data(), it->second.size()), &v) &&
          v > 0) {
        retry_ms = v;
      }
    }
    r.headers.emplace_back("Retry-After",
                           absl::StrCat((retry_ms + 999) / 1000));
  }
  return r;
}

}  // namespace lorad::server::openai
