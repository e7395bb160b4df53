// The daemon's side of identity and access beyond the matrix: SIGHUP
// reloads of the tokens file, the refusal to serve a non-loopback address
// without auth, and the per-token call limits.
#include <signal.h>

#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "auth_util.h"
#include "client_util.h"
#include "daemon_process.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "integration/protos/server_reflection.grpc.pb.h"
#include "lorad/v1/lorad.grpc.pb.h"

namespace lorad::testing {
namespace {

grpc::Status ListDatasets(v1::Datasets::Stub& stub, const std::string& token) {
  v1::ListDatasetsResponse response;
  return stub.List(AuthContext(token).get(), {}, &response);
}

// Until `token`'s List gets `code` or a minute passes.
bool WaitForCode(v1::Datasets::Stub& stub, const std::string& token,
                 grpc::StatusCode code) {
  const absl::Time deadline = absl::Now() + absl::Minutes(1);
  while (absl::Now() < deadline) {
    if (ListDatasets(stub, token).error_code() == code) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

TEST(AuthDaemonTest, SighupReloadsTokensAndKeepsThemOnABadFile) {
  TempDir dir;
  const std::string tokens = dir.path() + "/tokens";
  const std::string log = dir.path() + "/lorad.log";
  WriteTokensFile(tokens, {{"tok-old", "olga reader"}});
  auto daemon = StartLogged(
      dir.path() + "/data",
      {"--auth_tokens_file=" + tokens, "--worker_binary=/nonexistent"}, log);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto stub = v1::Datasets::NewStub(grpc::CreateChannel(
      (*daemon)->address(), grpc::InsecureChannelCredentials()));
  ASSERT_TRUE(ListDatasets(*stub, "tok-old").ok());
  EXPECT_EQ(ListDatasets(*stub, "tok-new").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  WriteTokensFile(tokens, {{"tok-new", "nina reader"}});
  ASSERT_EQ(::kill((*daemon)->pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitForCode(*stub, "tok-new", grpc::StatusCode::OK));
  EXPECT_EQ(ListDatasets(*stub, "tok-old").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  {
    std::ofstream bad(tokens);
    bad << "sha256:1234 broken admin\n";
  }
  ASSERT_EQ(::kill((*daemon)->pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitForText(log, "kept the API tokens in use"));
  EXPECT_TRUE(WaitForText(log, ":1: the digest is not 64 hex digits"));
  EXPECT_TRUE(ListDatasets(*stub, "tok-new").ok());
  EXPECT_TRUE(ProcessRunning((*daemon)->pid()));
}

TEST(AuthDaemonTest, RefusesANonLoopbackAddressWithoutAuth) {
  TempDir dir;
  const std::string base = absl::StrCat(
      LoradBinary(),
      " --address=0.0.0.0:0 --metrics_address= --http_address= --data_dir=",
      dir.path(), "/data --worker_binary=/nonexistent");
  CommandResult refused = RunCommand(base);
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("refusing to serve 0.0.0.0:0"),
            std::string::npos)
      << refused.output;
  EXPECT_NE(refused.output.find("--insecure_allow_unauthenticated"),
            std::string::npos);

  auto allowed = DaemonProcess::Start(
      dir.path() + "/data2",
      {"--address=0.0.0.0:0", "--worker_binary=/nonexistent",
       "--insecure_allow_unauthenticated"});
  EXPECT_TRUE(allowed.ok()) << allowed.status();
}

TEST(AuthDaemonTest, BoundsConcurrentCallsPerToken) {
  TempDir dir;
  const std::string tokens = dir.path() + "/tokens";
  WriteTokensFile(tokens, {{"tok-a", "ann reader"}, {"tok-b", "ben reader"}});
  auto daemon = DaemonProcess::Start(
      dir.path() + "/data",
      {"--auth_tokens_file=" + tokens, "--worker_binary=/nonexistent",
       "--max_concurrent_calls_per_token=1", "--max_concurrent_calls=2"});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto channel = grpc::CreateChannel((*daemon)->address(),
                                     grpc::InsecureChannelCredentials());
  auto datasets = v1::Datasets::NewStub(channel);
  auto telemetry = v1::Telemetry::NewStub(channel);

  // ann holds one call open: a telemetry stream until cancelled.
  auto held_context = AuthContext("tok-a", absl::Minutes(5));
  v1::StreamTelemetryRequest request;
  request.set_interval_ms(60000);
  auto held = telemetry->Stream(held_context.get(), request);
  v1::TelemetrySnapshot snapshot;
  ASSERT_TRUE(held->Read(&snapshot));

  auto context = AuthContext("tok-a");
  v1::ListDatasetsResponse response;
  grpc::Status second = datasets->List(context.get(), {}, &response);
  EXPECT_EQ(second.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << Describe(second);
  EXPECT_NE(second.error_message().find("retry after"), std::string::npos);
  auto retry = context->GetServerTrailingMetadata().find("retry-after-ms");
  ASSERT_NE(retry, context->GetServerTrailingMetadata().end());
  EXPECT_EQ(std::string(retry->second.data(), retry->second.size()), "1000");

  EXPECT_TRUE(ListDatasets(*datasets, "tok-b").ok());

  held_context->TryCancel();
  while (held->Read(&snapshot)) {
  }
  EXPECT_EQ(held->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(WaitForCode(*datasets, "tok-a", grpc::StatusCode::OK));
}

// The code of a reflection list_services call.
grpc::StatusCode ReflectionCode(const std::string& address) {
  auto stub = grpc::reflection::v1alpha::ServerReflection::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  auto context = AuthContext("");
  auto stream = stub->ServerReflectionInfo(context.get());
  grpc::reflection::v1alpha::ServerReflectionRequest request;
  request.set_list_services("");
  stream->Write(request);
  stream->WritesDone();
  grpc::reflection::v1alpha::ServerReflectionResponse response;
  while (stream->Read(&response)) {
  }
  return stream->Finish().error_code();
}

TEST(AuthDaemonTest, ReflectionIsOffWithTokensUnlessEnabled) {
  TempDir dir;
  const std::string tokens = dir.path() + "/tokens";
  WriteTokensFile(tokens, {{"tok-r", "rita reader"}});
  {
    auto daemon = DaemonProcess::Start(
        dir.path() + "/data",
        {"--auth_tokens_file=" + tokens, "--worker_binary=/nonexistent"});
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    EXPECT_EQ(ReflectionCode((*daemon)->address()),
              grpc::StatusCode::UNIMPLEMENTED);
  }
  auto daemon = DaemonProcess::Start(
      dir.path() + "/data2",
      {"--auth_tokens_file=" + tokens, "--worker_binary=/nonexistent",
       "--enable_reflection"});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  EXPECT_EQ(ReflectionCode((*daemon)->address()), grpc::StatusCode::OK);
}

TEST(AuthDaemonTest, MetricsAskForBasicAuth) {
  if (RunCommand("curl --version").exit_code != 0) GTEST_SKIP() << "no curl";
  TempDir dir;
  const std::string tokens = dir.path() + "/tokens";
  const std::string log = dir.path() + "/lorad.log";
  WriteTokensFile(tokens, {{"tok-m", "mona reader"}});
  auto daemon =
      StartLogged(dir.path() + "/data",
                  {"--auth_tokens_file=" + tokens,
                   "--worker_binary=/nonexistent", "--metrics_require_auth"},
                  log);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::string url = MetricsUrl(log);
  ASSERT_FALSE(url.empty());
  const std::string curl = "curl -s -o /dev/null -w '%{http_code}' ";
  EXPECT_EQ(RunCommand(curl + url).output, "401");
  EXPECT_EQ(RunCommand(curl + "-u mona:wrong " + url).output, "401");
  EXPECT_EQ(RunCommand(curl + "-u other:tok-m " + url).output, "401");
  EXPECT_EQ(RunCommand(curl + "-u mona:tok-m " + url).output, "200");
}

}  // namespace
}  // namespace lorad::testing
