// The global flags and the gRPC channel to lorad.
#ifndef LORAD_CLIENT_CONNECTION_H_
#define LORAD_CLIENT_CONNECTION_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "args.h"
#include "credentials.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"
#include "lorad/v1/lorad.grpc.pb.h"

namespace lorad::client {

inline constexpr char kDefaultAddress[] = "127.0.0.1:50051";
inline constexpr double kDefaultTimeoutSeconds = 30;

struct GlobalOptions {
  std::string address = kDefaultAddress;
  bool json = false;
  double timeout_seconds = kDefaultTimeoutSeconds;  // 0: no deadline.
  // Sent as "authorization: Bearer <token>" on every call; "" sends none.
  std::string token;
  // --tls-ca, --tls-cert, --tls-key.
  TlsFiles tls;
  // From ChannelCredentials(tls); null means insecure.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

// --address, --json, --timeout, --token and the --tls-* flags: accepted by
// every command.
const std::vector<FlagSpec>& GlobalFlags();

// Reads the global flags but --token (see ResolveToken). `env_address`
// (LORAD_ADDRESS, may be null) is the default address when --address is not
// given.
absl::StatusOr<GlobalOptions> ParseGlobalOptions(const ParsedArgs& args,
                                                 const char* env_address);

// gRPC's status as an absl::Status with the same code and message.
absl::Status FromGrpc(const grpc::Status& status);

// Stubs for the public services over one channel. Creating it does not
// connect; the first call does. Thread-compatible.
class Connection {
 public:
  explicit Connection(const GlobalOptions& options);

  lorad::v1::Datasets::Stub& datasets() { return *datasets_; }
  lorad::v1::FineTuning::Stub& fine_tuning() { return *fine_tuning_; }
  lorad::v1::Inference::Stub& inference() { return *inference_; }
  lorad::v1::Adapters::Stub& adapters() { return *adapters_; }
  lorad::v1::BatchInference::Stub& batch() { return *batch_; }
  lorad::v1::Telemetry::Stub& telemetry() { return *telemetry_; }

  // A context for a unary call, with the --timeout deadline.
  std::unique_ptr<grpc::ClientContext> UnaryContext() const;
  // A context for a streaming call: no deadline, since a watched job or a
  // large upload takes as long as it takes.
  std::unique_ptr<grpc::ClientContext> StreamContext() const;

  // FromGrpc, with the address added when the daemon could not be reached.
  absl::Status Check(const grpc::Status& status) const;

 private:
  // Adds the token, if any.
  void Authorize(grpc::ClientContext& context) const;

  GlobalOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<lorad::v1::Datasets::Stub> datasets_;
  std::unique_ptr<lorad::v1::FineTuning::Stub> fine_tuning_;
  std::unique_ptr<lorad::v1::Inference::Stub> inference_;
  std::unique_ptr<lorad::v1::Adapters::Stub> adapters_;
  std::unique_ptr<lorad::v1::BatchInference::Stub> batch_;
  std::unique_ptr<lorad::v1::Telemetry::Stub> telemetry_;
};

}  // namespace lorad::client

#endif  // LORAD_CLIENT_CONNECTION_H_
