// /v1/fine_tuning/jobs: the API's fine-tuning jobs, mapped onto lorad's
// (FineTuning.*). A succeeded job's fine_tuned_model is the name its
// adapter was registered under, usable at once as a chat model.
#include <google/protobuf/util/json_util.h>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "openai/api.h"
#include "openai/fine_tuning_json.h"

namespace lorad::server::openai {
namespace {

using nlohmann::json;

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Reads every message of a server stream, then calls `done` once.
class EventsCall final : public grpc::ClientReadReactor<v1::JobEvent> {
 public:
  using Done = std::function<void(
      const grpc::Status&, std::vector<v1::JobEvent>&, grpc::ClientContext&)>;
  EventsCall(ApiContext& api, const http::Request& request, std::string job_id,
             Done done)
      : api_(api), done_(std::move(done)) {
    ApiContext::Authorize(request, &context_);
    request_.set_job_id(std::move(job_id));
    request_.set_history_only(true);
  }
  void Start() {
    api_.CallStarted();
    api_.fine_tuning().async()->WatchJob(&context_, &request_, this);
    StartRead(&event_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    events_.push_back(event_);
    if (events_.size() > 100000) {
      context_.TryCancel();  // a bound on what one request gathers
      return;
    }
    StartRead(&event_);
  }
  void OnDone(const grpc::Status& status) override {
    done_(status, events_, context_);
    ApiContext& api = api_;
    delete this;
    api.CallEnded();
  }

 private:
  ApiContext& api_;
  Done done_;
  grpc::ClientContext context_;
  v1::WatchFineTuneJobRequest request_;
  v1::JobEvent event_;
  std::vector<v1::JobEvent> events_;
};

void SendJob(const std::shared_ptr<http::Reply>& reply,
             const grpc::Status& status, const v1::FineTuneJob& job,
             grpc::ClientContext& context) {
  if (!status.ok()) return reply->Send(FromGrpc(status, &context));
  reply->Send(Json(200, Dump(JobObject(job))));
}

void Create(ApiContext& api, const http::Request& request,
            std::shared_ptr<http::Reply> reply) {
  http::Response error;
  std::optional<json> body = ParseBody(request, &error);
  if (!body.has_value()) {
    reply->Send(std::move(error));
    return;
  }
  v1::CreateFineTuneJobRequest create;
  std::string message, param;
  if (!ReadCreateJob(*body, api.options().base_model, &create, &message,
                     &param)) {
    reply->Send(Error(400, message, param));
    return;
  }
  UnaryCall<v1::CreateFineTuneJobRequest, v1::FineTuneJob>(
      api, request, std::move(create),
      [&api](grpc::ClientContext* c, const v1::CreateFineTuneJobRequest* rq,
             v1::FineTuneJob* rs, std::function<void(grpc::Status)> f) {
        api.fine_tuning().async()->CreateJob(c, rq, rs, std::move(f));
      },
      [reply](const grpc::Status& s, v1::FineTuneJob& job,
              grpc::ClientContext& c) { SendJob(reply, s, job, c); });
}

void List(ApiContext& api, const http::Request& request,
          std::shared_ptr<http::Reply> reply) {
  int limit = 20;
  const std::string limit_text = request.Query("limit");
  if (!limit_text.empty() &&
      (!absl::SimpleAtoi(limit_text, &limit) || limit < 1 || limit > 100)) {
    reply->Send(Error(400, "'limit' must be an integer in [1, 100]", "limit"));
    return;
  }
  const std::string after = request.Query("after");
  v1::ListFineTuneJobsRequest list;
  list.set_limit(1000);
  UnaryCall<v1::ListFineTuneJobsRequest, v1::ListFineTuneJobsResponse>(
      api, request, list,
      [&api](grpc::ClientContext* c, const v1::ListFineTuneJobsRequest* rq,
             v1::ListFineTuneJobsResponse* rs,
             std::function<void(grpc::Status)> f) {
        api.fine_tuning().async()->ListJobs(c, rq, rs, std::move(f));
      },
      [reply, limit, after](const grpc::Status& s,
                            v1::ListFineTuneJobsResponse& jobs,
                            grpc::ClientContext& c) {
        if (!s.ok()) return reply->Send(FromGrpc(s, &c));
        std::vector<json> all;
        for (const v1::FineTuneJob& job : jobs.jobs()) {
          all.push_back(JobObject(job));
        }
        reply->Send(Json(200, Dump(Page(all, after, limit))));
      });
}

void Events(ApiContext& api, const http::Request& request,
            std::shared_ptr<http::Reply> reply, const std::string& job_id,
            bool checkpoints) {
  int limit = checkpoints ? 10 : 20;
  const std::string limit_text = request.Query("limit");
  if (!limit_text.empty() &&
      (!absl::SimpleAtoi(limit_text, &limit) || limit < 1 || limit > 1000)) {
    reply->Send(Error(400, "'limit' must be an integer in [1, 1000]", "limit"));
    return;
  }
  const std::string after = request.Query("after");
  (new EventsCall(api, request, job_id,
                  [reply, limit, after, job_id, checkpoints](
                      const grpc::Status& s, std::vector<v1::JobEvent>& events,
                      grpc::ClientContext& c) {
                    if (!s.ok()) return reply->Send(FromGrpc(s, &c));
                    std::vector<json> all =
                        checkpoints ? CheckpointObjects(job_id, events)
                                    : EventObjects(job_id, events);
                    reply->Send(Json(200, Dump(Page(all, after, limit))));
                  }))
      ->Start();
}

}  // namespace

void HandleFineTuning(ApiContext& api, const http::Request& request,
                      std::shared_ptr<http::Reply> reply) {
  const std::string prefix = "/v1/fine_tuning/jobs";
  std::vector<std::string> parts = absl::StrSplit(
      request.path.substr(prefix.size()), '/', absl::SkipEmpty());
  const std::string& method = request.method;
  if (parts.empty()) {
    if (method == "POST") return Create(api, request, std::move(reply));
    if (method == "GET") return List(api, request, std::move(reply));
  } else if (parts.size() == 1 && method == "GET") {
    v1::GetFineTuneJobRequest get;
    get.set_job_id(parts[0]);
    return UnaryCall<v1::GetFineTuneJobRequest, v1::FineTuneJob>(
        api, request, get,
        [&api](grpc::ClientContext* c, const v1::GetFineTuneJobRequest* rq,
               v1::FineTuneJob* rs, std::function<void(grpc::Status)> f) {
          api.fine_tuning().async()->GetJob(c, rq, rs, std::move(f));
        },
        [reply](const grpc::Status& s, v1::FineTuneJob& job,
                grpc::ClientContext& c) { SendJob(reply, s, job, c); });
  } else if (parts.size() == 2 && parts[1] == "cancel" && method == "POST") {
    v1::CancelFineTuneJobRequest cancel;
    cancel.set_job_id(parts[0]);
    return UnaryCall<v1::CancelFineTuneJobRequest, v1::FineTuneJob>(
        api, request, cancel,
        [&api](grpc::ClientContext* c, const v1::CancelFineTuneJobRequest* rq,
               v1::FineTuneJob* rs, std::function<void(grpc::Status)> f) {
          api.fine_tuning().async()->CancelJob(c, rq, rs, std::move(f));
        },
        [reply](const grpc::Status& s, v1::FineTuneJob& job,
                grpc::ClientContext& c) { SendJob(reply, s, job, c); });
  } else if (parts.size() == 2 && method == "GET" &&
             (parts[1] == "events" || parts[1] == "checkpoints")) {
    return Events(api, request, std::move(reply), parts[0],
                  parts[1] == "checkpoints");
  }
  reply->Send(Error(404, "no route for " + method + " " + request.path));
}

}  // namespace lorad::server::openai
