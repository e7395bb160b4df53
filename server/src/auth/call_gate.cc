#include "auth/call_gate.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/security/auth_context.h"
#include "grpcpp/support/server_interceptor.h"

namespace lorad::server::auth {
namespace {

constexpr char kCode[] = "lorad.verdict_code";
constexpr char kMessage[] = "lorad.verdict_message";
constexpr char kCaller[] = "lorad.caller";
constexpr char kRole[] = "lorad.role";
constexpr char kRetryAfter[] = "lorad.retry_after_ms";

std::optional<std::string> Property(const grpc::AuthContext& auth,
                                    const char* name) {
  std::vector<grpc::string_ref> values = auth.FindPropertyValues(name);
  if (values.size() != 1) return std::nullopt;
  return std::string(values[0].data(), values[0].size());
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
      std::optional<absl::string_view> authorization;
      for (const auto& [key, value] : *methods->GetRecvInitialMetadata()) {
        if (key == "authorization") {
          authorization = absl::string_view(value.data(), value.size());
        }
      }
      verdict_ = gate_->Admit(info_->method(), authorization);
      Record();
    }
    methods->Proceed();
  }

 private:
  void Record() {
    // The call's own auth context (the connection's properties are its
    // parent), so what is added here is seen by this call only.
    auto* auth = const_cast<grpc::AuthContext*>(
        info_->server_context()->auth_context().get());
    if (auth == nullptr) return;
    auth->AddProperty(kCode,
                      std::to_string(static_cast<int>(verdict_.status.code())));
    auth->AddProperty(kMessage, std::string(verdict_.status.message()));
    auth->AddProperty(kCaller, verdict_.caller.name);
    auth->AddProperty(kRole, std::string(RoleName(verdict_.caller.role)));
    auth->AddProperty(kRetryAfter, std::to_string(verdict_.retry_after_ms));
  }

  grpc::experimental::ServerRpcInfo* const info_;
  Gatekeeper* const gate_;
  Verdict verdict_;
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
  std::shared_ptr<const grpc::AuthContext> auth = context->auth_context();
  std::optional<std::string> code_text;
  if (auth != nullptr) code_text = Property(*auth, kCode);
  int code = 0;
  if (!code_text.has_value() || !absl::SimpleAtoi(*code_text, &code)) {
    return absl::InternalError("the call was not admitted by the gatekeeper");
  }
  if (code != 0) {
    return absl::Status(static_cast<absl::StatusCode>(code),
                        Property(*auth, kMessage).value_or(""));
  }
  Identity identity;
  identity.name = Property(*auth, kCaller).value_or("");
  std::optional<Role> role = ParseRole(Property(*auth, kRole).value_or(""));
  if (!role.has_value()) {
    return absl::InternalError("the call's recorded role is unreadable");
  }
  identity.role = *role;
  return identity;
}

grpc::Status Refusal(grpc::ServerContextBase* context) {
  absl::StatusOr<Identity> caller = CallerOf(context);
  if (caller.ok()) return grpc::Status::OK;
  if (caller.status().code() == absl::StatusCode::kResourceExhausted) {
    std::optional<std::string> retry =
        Property(*context->auth_context(), kRetryAfter);
    if (retry.has_value())
      context->AddTrailingMetadata("retry-after-ms", *retry);
  }
  return grpc::Status(static_cast<grpc::StatusCode>(caller.status().code()),
                      std::string(caller.status().message()));
}

grpc::ServerUnaryReactor* RefuseUnary(grpc::CallbackServerContext* context) {
  grpc::Status status = Refusal(context);
  if (status.ok()) return nullptr;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

}  // namespace lorad::server::auth
