#include "auth/call_gate.h"

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpcpp/support/server_interceptor.h"

namespace lorad::server::auth {
namespace {

// The verdict travels to the handler as an entry of the call's received
// metadata (the map context->client_metadata() returns), which the
// interceptor owns the text of. A client's own entries under this key are
// removed first. (The call's auth_context() cannot carry it: with insecure
// credentials it is the connection's, shared by every call on it.)
constexpr char kVerdictKey[] = "lorad-verdict";

// "code retry_after_ms role name message"
std::string Encode(const Verdict& verdict) {
  return absl::StrCat(static_cast<int>(verdict.status.code()), " ",
                      verdict.retry_after_ms, " ",
                      RoleName(verdict.caller.role), " ", verdict.caller.name,
                      " ", verdict.status.message());
}

struct Decoded {
  absl::Status status;
  int64_t retry_after_ms = 0;
  Identity caller;
};

std::optional<Decoded> Decode(const grpc::ServerContextBase* context) {
  const auto& metadata = context->client_metadata();
  if (metadata.count(kVerdictKey) != 1) return std::nullopt;
  grpc::string_ref value = metadata.find(kVerdictKey)->second;
  // The name may be empty, so split on single spaces.
  std::vector<std::string> parts = absl::StrSplit(
      absl::string_view(value.data(), value.size()), absl::MaxSplits(' ', 4));
  if (parts.size() != 5) return std::nullopt;
  int code = 0;
  Decoded decoded;
  std::optional<Role> role = ParseRole(parts[2]);
  if (!absl::SimpleAtoi(parts[0], &code) ||
      !absl::SimpleAtoi(parts[1], &decoded.retry_after_ms) ||
      !role.has_value()) {
    return std::nullopt;
  }
  decoded.status = absl::Status(static_cast<absl::StatusCode>(code), parts[4]);
  decoded.caller = Identity{parts[3], *role};
  return decoded;
}

class GateInterceptor final : public grpc::experimental::Interceptor {
 public:
  GateInterceptor(grpc::experimental::ServerRpcInfo* info, Gatekeeper* gate)
      : info_(info), gate_(gate) {}
  ~GateInterceptor() override { gate_->Release(verdict_); }

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::
                POST_RECV_INITIAL_METADATA)) {
      std::multimap<grpc::string_ref, grpc::string_ref>* metadata =
          methods->GetRecvInitialMetadata();
      std::optional<absl::string_view> authorization;
      for (const auto& [key, value] : *metadata) {
        if (key == "authorization") {
          authorization = absl::string_view(value.data(), value.size());
        }
      }
      verdict_ = gate_->Admit(info_->method(), authorization);
      metadata->erase(kVerdictKey);
      encoded_ = Encode(verdict_);
      metadata->emplace(kVerdictKey, encoded_);
    }
    methods->Proceed();
  }

 private:
  grpc::experimental::ServerRpcInfo* const info_;
  Gatekeeper* const gate_;
  Verdict verdict_;
  std::string encoded_;
};

class GateFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit GateFactory(Gatekeeper* gate) : gate_(gate) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new GateInterceptor(info, gate_);
  }

 private:
  Gatekeeper* const gate_;
};

}  // namespace

void InstallCallGate(grpc::ServerBuilder& builder, Gatekeeper* gate) {
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      factories;
  factories.push_back(std::make_unique<GateFactory>(gate));
  builder.experimental().SetInterceptorCreators(std::move(factories));
}

absl::StatusOr<Identity> CallerOf(const grpc::ServerContextBase* context) {
  std::optional<Decoded> decoded = Decode(context);
  if (!decoded.has_value()) {
    return absl::InternalError("the call was not admitted by the gatekeeper");
  }
  if (!decoded->status.ok()) return decoded->status;
  return decoded->caller;
}

grpc::Status Refusal(grpc::ServerContextBase* context) {
  std::optional<Decoded> decoded = Decode(context);
  if (!decoded.has_value()) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        "the call was not admitted by the gatekeeper");
  }
  if (decoded->status.ok()) return grpc::Status::OK;
  if (decoded->status.code() == absl::StatusCode::kResourceExhausted) {
    context->AddTrailingMetadata("retry-after-ms",
                                 std::to_string(decoded->retry_after_ms));
  }
  return grpc::Status(static_cast<grpc::StatusCode>(decoded->status.code()),
                      std::string(decoded->status.message()));
}

grpc::ServerUnaryReactor* RefuseUnary(grpc::CallbackServerContext* context) {
  grpc::Status status = Refusal(context);
  if (status.ok()) return nullptr;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

}  // namespace lorad::server::auth
