// The standard gRPC health and reflection services answer.
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "client_util.h"
#include "daemon_process.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "integration/protos/health_check.grpc.pb.h"
#include "integration/protos/server_reflection.grpc.pb.h"

namespace lorad::testing {
namespace {

TEST(HealthReflectionTest, HealthIsServingAndReflectionListsServices) {
  TempDir dir;
  auto daemon = DaemonProcess::Start(
      dir.path() + "/data", {"--worker_binary=/nonexistent/lorad-worker"});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  Client client((*daemon)->address());

  auto health = grpc::health::v1::Health::NewStub(client.channel);
  // With no worker the daemon is live but not ready (and so not serving).
  for (const auto& [service, want] : std::vector<std::pair<
           std::string, grpc::health::v1::HealthCheckResponse::ServingStatus>>{
           {"lorad.liveness", grpc::health::v1::HealthCheckResponse::SERVING},
           {"lorad.readiness",
            grpc::health::v1::HealthCheckResponse::NOT_SERVING},
           {"", grpc::health::v1::HealthCheckResponse::NOT_SERVING}}) {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = health->Check(&context, request, &response);
    ASSERT_TRUE(status.ok()) << service << ": " << Describe(status);
    EXPECT_EQ(response.status(), want) << service;
  }

  auto reflection =
      grpc::reflection::v1alpha::ServerReflection::NewStub(client.channel);
  grpc::ClientContext context;
  auto stream = reflection->ServerReflectionInfo(&context);
  grpc::reflection::v1alpha::ServerReflectionRequest request;
  request.set_list_services("");
  ASSERT_TRUE(stream->Write(request));
  stream->WritesDone();
  grpc::reflection::v1alpha::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  std::set<std::string> names;
  for (const auto& service : response.list_services_response().service()) {
    names.insert(service.name());
  }
  while (stream->Read(&response)) {
  }
  grpc::Status status = stream->Finish();
  ASSERT_TRUE(status.ok()) << Describe(status);
  for (const char* want : {"lorad.v1.Datasets", "lorad.v1.FineTuning",
                           "lorad.v1.Inference", "grpc.health.v1.Health"}) {
    EXPECT_TRUE(names.count(want)) << want << " not listed";
  }
}

}  // namespace
}  // namespace lorad::testing
