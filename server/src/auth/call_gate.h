// Puts the Gatekeeper in front of every call of a gRPC server, and the
// handlers' side of it: each handler of the public services starts with one
// Refuse*() call and reads its caller with CallerOf().
//
// A server interceptor runs Gatekeeper::Admit when a call's metadata
// arrives (before its handler), records the verdict in the call's received
// metadata (under a key whose client-sent entries it removes first), and
// gives the concurrency slot back when the call ends. gRPC offers
// interceptors no way to fail a call, hence the handlers' one line.
#ifndef LORAD_SERVER_AUTH_CALL_GATE_H_
#define LORAD_SERVER_AUTH_CALL_GATE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "auth/gatekeeper.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"

namespace lorad::server::auth {

// Every call of the server built by `builder` goes through `gate` (not
// owned; must outlive the server).
void InstallCallGate(grpc::ServerBuilder& builder, Gatekeeper* gate);

// Who made the call, or why it is refused: the verdict's status, INTERNAL
// when no verdict was recorded (the gate is not installed: refuse rather
// than serve unchecked).
absl::StatusOr<Identity> CallerOf(const grpc::ServerContextBase* context);

// The refusal as a gRPC status (OK when admitted), with "retry-after-ms"
// added to the trailing metadata for RESOURCE_EXHAUSTED.
grpc::Status Refusal(grpc::ServerContextBase* context);

// nullptr when the call was admitted; else a reactor that finishes it with
// the refusal, which the handler returns at once.
grpc::ServerUnaryReactor* RefuseUnary(grpc::CallbackServerContext* context);

// A reactor that finishes the call with `status` at once.
template <typename Response>
grpc::ServerWriteReactor<Response>* FinishedWriter(const grpc::Status& status) {
  class Finished final : public grpc::ServerWriteReactor<Response> {
   public:
    explicit Finished(const grpc::Status& status) { this->Finish(status); }
    void OnDone() override { delete this; }
  };
  return new Finished(status);
}

template <typename Request>
grpc::ServerReadReactor<Request>* FinishedReader(const grpc::Status& status) {
  class Finished final : public grpc::ServerReadReactor<Request> {
   public:
    explicit Finished(const grpc::Status& status) { this->Finish(status); }
    void OnDone() override { delete this; }
  };
  return new Finished(status);
}

template <typename Response>
grpc::ServerWriteReactor<Response>* RefuseWriter(
    grpc::CallbackServerContext* context) {
  grpc::Status status = Refusal(context);
  return status.ok() ? nullptr : FinishedWriter<Response>(status);
}

template <typename Request>
grpc::ServerReadReactor<Request>* RefuseReader(
    grpc::CallbackServerContext* context) {
  grpc::Status status = Refusal(context);
  return status.ok() ? nullptr : FinishedReader<Request>(status);
}

}  // namespace lorad::server::auth

#endif  // LORAD_SERVER_AUTH_CALL_GATE_H_
