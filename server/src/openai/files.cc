#include "openai/api.h"
namespace lorad::server::openai {
void HandleFiles(ApiContext&, const http::Request& request,
                 std::shared_ptr<http::Reply> reply) {
  reply->Send(Error(404, "no route for " + request.path));
}
void HandleFineTuning(ApiContext&, const http::Request& request,
                      std::shared_ptr<http::Reply> reply) {
  reply->Send(Error(404, "no route for " + request.path));
}
}  // namespace lorad::server::openai
