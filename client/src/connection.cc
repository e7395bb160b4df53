#include "connection.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "lorad/common/status_macros.h"

namespace lorad::client {

const std::vector<FlagSpec>& GlobalFlags() {
  static const auto* flags = new std::vector<FlagSpec>{
      {"address", true, false, "HOST:PORT",
       "lorad address (env LORAD_ADDRESS, else 127.0.0.1:50051)"},
      {"json", false, false, "", "one JSON object per line, for scripts"},
      {"timeout", true, false, "SECONDS",
       "deadline for unary calls (30; 0 = none)"},
      {"token", true, false, "TOKEN",
       "API token (else env LORAD_TOKEN, else \"token = ...\" in "
       "$XDG_CONFIG_HOME/lorad/config or ~/.config/lorad/config)"},
      {"tls-ca", true, false, "FILE", "PEM CA that signed lorad's certificate"},
      {"tls-cert", true, false, "FILE", "PEM client certificate (mTLS)"},
      {"tls-key", true, false, "FILE", "PEM key of --tls-cert"},
  };
  return *flags;
}

absl::StatusOr<GlobalOptions> ParseGlobalOptions(const ParsedArgs& args,
                                                 const char* env_address) {
  GlobalOptions options;
  if (env_address != nullptr && *env_address != '\0') {
    options.address = env_address;
  }
  if (std::optional<std::string> address = args.Get("address")) {
    if (address->empty()) {
      return absl::InvalidArgumentError("--address: must not be empty");
    }
    options.address = *address;
  }
  options.json = args.Switch("json");
  LORAD_ASSIGN_OR_RETURN(std::optional<float> timeout,
                         FloatFlag(args, "timeout", 0, 86400 * 365));
  if (timeout.has_value()) options.timeout_seconds = *timeout;
  options.tls.ca = args.Get("tls-ca").value_or("");
  options.tls.cert = args.Get("tls-cert").value_or("");
  options.tls.key = args.Get("tls-key").value_or("");
  return options;
}

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

Connection::Connection(const GlobalOptions& options) : options_(options) {
  grpc::ChannelArguments channel_args;
  channel_args.SetString(GRPC_ARG_PRIMARY_USER_AGENT_STRING, "loractl");
  // Datasets and generated text can be larger than gRPC's 4 MiB default.
  channel_args.SetMaxReceiveMessageSize(64 << 20);
  channel_ = grpc::CreateCustomChannel(options_.address,
                                       options_.credentials != nullptr
                                           ? options_.credentials
                                           : grpc::InsecureChannelCredentials(),
                                       channel_args);
  datasets_ = lorad::v1::Datasets::NewStub(channel_);
  fine_tuning_ = lorad::v1::FineTuning::NewStub(channel_);
  inference_ = lorad::v1::Inference::NewStub(channel_);
  adapters_ = lorad::v1::Adapters::NewStub(channel_);
  batch_ = lorad::v1::BatchInference::NewStub(channel_);
  telemetry_ = lorad::v1::Telemetry::NewStub(channel_);
}

std::unique_ptr<grpc::ClientContext> Connection::UnaryContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (options_.timeout_seconds > 0) {
    context->set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::duration<double>(options_.timeout_seconds)));
  }
  Authorize(*context);
  return context;
}

std::unique_ptr<grpc::ClientContext> Connection::StreamContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  Authorize(*context);
  return context;
}

void Connection::Authorize(grpc::ClientContext& context) const {
  if (!options_.token.empty()) {
    context.AddMetadata("authorization", "Bearer " + options_.token);
  }
}

absl::Status Connection::Check(const grpc::Status& status) const {
  absl::Status result = FromGrpc(status);
  if (result.code() == absl::StatusCode::kUnavailable) {
    return absl::UnavailableError(absl::StrCat(
        "cannot reach lorad at ", options_.address, ": ", result.message()));
  }
  return result;
}

}  // namespace lorad::client
