// The OpenAI-compatible HTTP API. Every route is a translation onto
// lorad's own gRPC API, called in-process: the same auth (the HTTP
// Authorization header travels as the call's metadata), limits,
// validation, ownership and engine path as a gRPC client gets. Calls are
// asynchronous end to end (gRPC callback reactors on one side, the HTTP
// server's Reply on the other); no thread waits for a result.
#ifndef LORAD_SERVER_OPENAI_API_H_
#define LORAD_SERVER_OPENAI_API_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "http/http_server.h"
#include "lorad/v1/lorad.grpc.pb.h"
#include "openai/errors.h"

namespace lorad::server::openai {

struct ApiOptions {
  std::string base_model;       // the id /v1/models gives the base model
  int64_t created_unix = 0;     // its "created"
  std::function<bool()> ready;  // /ready: the worker can serve
  int max_choices = 8;          // bound on `n`
};

// What every route uses: the stubs, the options and the count of calls in
// flight (the API waits for them when destroyed).
class ApiContext {
 public:
  ApiContext(const std::shared_ptr<grpc::Channel>& channel, ApiOptions options);
  ~ApiContext();

  const ApiOptions& options() const { return options_; }
  v1::Inference::Stub& inference() { return *inference_; }
  v1::Adapters::Stub& adapters() { return *adapters_; }
  v1::Datasets::Stub& datasets() { return *datasets_; }
  v1::FineTuning::Stub& fine_tuning() { return *fine_tuning_; }

  // A client context carrying the request's Authorization header.
  static void Authorize(const http::Request& request,
                        grpc::ClientContext* context);

  void CallStarted();
  void CallEnded();

 private:
  ApiOptions options_;
  std::unique_ptr<v1::Inference::Stub> inference_;
  std::unique_ptr<v1::Adapters::Stub> adapters_;
  std::unique_ptr<v1::Datasets::Stub> datasets_;
  std::unique_ptr<v1::FineTuning::Stub> fine_tuning_;
  absl::Mutex mu_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
};

// One unary gRPC call with its context and messages kept alive until it
// ends. `start` begins it (e.g. stub.async()->GetJob(ctx, req, resp, cb));
// `done` runs on a gRPC thread with the outcome.
template <class Req, class Resp>
void UnaryCall(
    ApiContext& api, const http::Request& http_request, Req request,
    const std::function<void(grpc::ClientContext*, const Req*, Resp*,
                             std::function<void(grpc::Status)>)>& start,
    std::function<void(const grpc::Status&, Resp&, grpc::ClientContext&)>
        done) {
  struct State {
    grpc::ClientContext context;
    Req request;
    Resp response;
  };
  auto state = std::make_shared<State>();
  state->request = std::move(request);
  ApiContext::Authorize(http_request, &state->context);
  api.CallStarted();
  ApiContext* ctx = &api;
  start(&state->context, &state->request, &state->response,
        [state, ctx, done = std::move(done)](grpc::Status status) {
          done(status, state->response, state->context);
          ctx->CallEnded();
        });
}

// Route families, each in its own file.
void HandleModels(ApiContext& api, const http::Request& request,
                  std::shared_ptr<http::Reply> reply);
void HandleCompletions(ApiContext& api, const http::Request& request,
                       std::shared_ptr<http::Reply> reply, bool chat);
// Takes the request over: an upload's body is streamed from it.
void HandleFiles(ApiContext& api, http::Request request,
                 std::shared_ptr<http::Reply> reply);
void HandleFineTuning(ApiContext& api, const http::Request& request,
                      std::shared_ptr<http::Reply> reply);

class OpenAiApi {
 public:
  OpenAiApi(const std::shared_ptr<grpc::Channel>& channel, ApiOptions options)
      : api_(channel, std::move(options)) {}
  // Routes one request; answers 404/405 for what it does not know.
  void Handle(http::Request request, std::shared_ptr<http::Reply> reply);

 private:
  ApiContext api_;
};

// JSON helpers shared by the routes.
http::Response Json(int status, const std::string& body);
// A request body as a JSON object, checked against bounds (depth, values)
// before it is built; nullopt with the 400 to answer in `error`.
std::optional<nlohmann::json> ParseBody(const http::Request& request,
                                        http::Response* error);

}  // namespace lorad::server::openai

#endif  // LORAD_SERVER_OPENAI_API_H_
