// GET /v1/models and /v1/models/{id}: the base model and every registered
// adapter (Adapters.List), adapters with the base as their parent.
#include <nlohmann/json.hpp>

#include "openai/api.h"

namespace lorad::server::openai {
namespace {

nlohmann::json BaseModel(const ApiOptions& o) {
  return {{"id", o.base_model},        {"object", "model"},
          {"created", o.created_unix}, {"owned_by", "lorad"},
          {"root", o.base_model},      {"parent", nullptr}};
}

nlohmann::json AdapterModel(const v1::Adapter& a, const ApiOptions& o) {
  const std::string& base =
      a.base_model().empty() ? o.base_model : a.base_model();
  return {{"id", a.name()},
          {"object", "model"},
          {"created", a.created_at_unix()},
          {"owned_by", a.source_job().empty() ? "upload" : a.source_job()},
          {"root", base},
          {"parent", base}};
}

}  // namespace

void HandleModels(ApiContext& api, const http::Request& request,
                  std::shared_ptr<http::Reply> reply) {
  if (request.method != "GET") {
    reply->Send(Error(405, "use GET for " + request.path));
    return;
  }
  std::string wanted;
  if (request.path.size() > std::string("/v1/models/").size()) {
    wanted = request.path.substr(std::string("/v1/models/").size());
  }
  const ApiOptions& o = api.options();
  UnaryCall<v1::ListAdaptersRequest, v1::ListAdaptersResponse>(
      api, request, {},
      [&api](grpc::ClientContext* c, const v1::ListAdaptersRequest* rq,
             v1::ListAdaptersResponse* rs,
             std::function<void(grpc::Status)> f) {
        api.adapters().async()->List(c, rq, rs, std::move(f));
      },
      [reply, wanted, o](const grpc::Status& status,
                         v1::ListAdaptersResponse& list,
                         grpc::ClientContext& context) {
        if (!status.ok()) return reply->Send(FromGrpc(status, &context));
        if (!wanted.empty()) {
          if (wanted == o.base_model) {
            return reply->Send(Json(200, BaseModel(o).dump()));
          }
          for (const v1::Adapter& a : list.adapters()) {
            if (a.name() == wanted) {
              return reply->Send(Json(200, AdapterModel(a, o).dump()));
            }
          }
          return reply->Send(Error(404,
                                   "The model '" + wanted + "' does not exist",
                                   "model", "model_not_found"));
        }
        nlohmann::json data = nlohmann::json::array({BaseModel(o)});
        for (const v1::Adapter& a : list.adapters()) {
          data.push_back(AdapterModel(a, o));
        }
        reply->Send(Json(
            200,
            nlohmann::json{{"object", "list"}, {"data", data}}.dump(
                -1, ' ', false, nlohmann::json::error_handler_t::replace)));
      });
}

}  // namespace lorad::server::openai
