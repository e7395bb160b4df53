#include "api/grpc_status.h"

#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "lorad/common/excerpt.h"

namespace lorad::server {
namespace {

// The message, cut to kMaxStatusMessageBytes on a UTF-8 boundary: a last
// guard against a message that quotes too much of a request.
std::string Bounded(std::string_view message) {
  if (message.size() <= kMaxStatusMessageBytes) return std::string(message);
  size_t end = 0;
  while (end < kMaxStatusMessageBytes) {
    const size_t n = Utf8SequenceLength(message, end);
    if (n == 0 || end + n > kMaxStatusMessageBytes) break;
    end += n;
  }
  return absl::StrCat(std::string(message.substr(0, end)), "... (",
                      message.size() - end, " more bytes)");
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      Bounded(std::string_view(status.message().data(),
                                               status.message().size())));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

bool FinishIfError(grpc::ServerUnaryReactor* reactor,
                   const absl::Status& status) {
  if (status.ok()) return false;
  reactor->Finish(ToGrpcStatus(status));
  return true;
}

std::string StatusCodeName(absl::StatusCode code) {
  return absl::StatusCodeToString(code);
}

}  // namespace lorad::server
