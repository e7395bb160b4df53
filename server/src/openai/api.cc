#include "openai/api.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lorad/common/bounded_json.h"

namespace lorad::server::openai {

ApiContext::ApiContext(const std::shared_ptr<grpc::Channel>& channel,
                       ApiOptions options)
    : options_(std::move(options)),
      inference_(v1::Inference::NewStub(channel)),
      adapters_(v1::Adapters::NewStub(channel)),
      datasets_(v1::Datasets::NewStub(channel)),
      fine_tuning_(v1::FineTuning::NewStub(channel)) {}

ApiContext::~ApiContext() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* calls) { return *calls == 0; }, &calls_));
}

void ApiContext::Authorize(const http::Request& request,
                           grpc::ClientContext* context) {
  std::string authorization = request.Header("Authorization");
  if (!authorization.empty()) {
    context->AddMetadata("authorization", authorization);
  }
}

void ApiContext::CallStarted() {
  absl::MutexLock lock(&mu_);
  ++calls_;
}

void ApiContext::CallEnded() {
  absl::MutexLock lock(&mu_);
  --calls_;
}

http::Response Json(int status, const std::string& body) {
  http::Response r;
  r.status = status;
  r.body = body;
  return r;
}

std::optional<nlohmann::json> ParseBody(const http::Request& request,
                                        http::Response* error) {
  // Schemas nest; bodies may be as large as the server lets them be.
  constexpr JsonLimits kLimits{size_t{64} << 20, 64, int64_t{1} << 21};
  auto body = ParseBoundedJson(request.body, kLimits);
  if (!body.ok()) {
    *error =
        Error(400, absl::StrCat("the request body: ", body.status().message()));
    return std::nullopt;
  }
  if (!body->is_object()) {
    *error = Error(400, "the request body must be a JSON object");
    return std::nullopt;
  }
  return *std::move(body);
}

void OpenAiApi::Handle(http::Request request,
                       std::shared_ptr<http::Reply> reply) {
  const std::string& path = request.path;
  if (path == "/health") {
    reply->Send(Json(200, R"({"status":"ok"})"));
    return;
  }
  if (path == "/ready") {
    const bool ready = api_.options().ready && api_.options().ready();
    reply->Send(ready ? Json(200, R"({"status":"ready"})")
                      : Error(503, "the worker is not ready yet"));
    return;
  }
  if (path == "/v1/models" || absl::StartsWith(path, "/v1/models/")) {
    return HandleModels(api_, request, std::move(reply));
  }
  if (path == "/v1/completions" || path == "/v1/chat/completions") {
    if (request.method != "POST") {
      reply->Send(Error(405, "use POST for " + path));
      return;
    }
    return HandleCompletions(api_, request, std::move(reply),
                             path == "/v1/chat/completions");
  }
  if (path == "/v1/files" || absl::StartsWith(path, "/v1/files/")) {
    return HandleFiles(api_, std::move(request), std::move(reply));
  }
  if (path == "/v1/fine_tuning/jobs" ||
      absl::StartsWith(path, "/v1/fine_tuning/jobs/")) {
    return HandleFineTuning(api_, request, std::move(reply));
  }
  reply->Send(Error(404, "no route for " + request.method + " " + path));
}

}  // namespace lorad::server::openai
