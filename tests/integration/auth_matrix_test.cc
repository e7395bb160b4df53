// Every RPC of lorad.v1 against the real daemon and worker, with no token, a
// bad token and each role's token: refused with UNAUTHENTICATED or
// PERMISSION_DENIED exactly when it should be. A role allowed to call may
// still fail for other reasons (empty requests), which is not checked here.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "auth_util.h"
#include "client_util.h"
#include "daemon_process.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "integration/protos/health_check.grpc.pb.h"
#include "lorad/v1/lorad.grpc.pb.h"

namespace lorad::testing {
namespace {

enum Role { kReader = 1, kUser, kTrainer, kAdmin };

struct Stubs {
  explicit Stubs(const std::shared_ptr<grpc::Channel>& channel)
      : datasets(v1::Datasets::NewStub(channel)),
        fine_tuning(v1::FineTuning::NewStub(channel)),
        inference(v1::Inference::NewStub(channel)),
        telemetry(v1::Telemetry::NewStub(channel)),
        adapters(v1::Adapters::NewStub(channel)),
        batch(v1::BatchInference::NewStub(channel)) {}
  std::unique_ptr<v1::Datasets::Stub> datasets;
  std::unique_ptr<v1::FineTuning::Stub> fine_tuning;
  std::unique_ptr<v1::Inference::Stub> inference;
  std::unique_ptr<v1::Telemetry::Stub> telemetry;
  std::unique_ptr<v1::Adapters::Stub> adapters;
  std::unique_ptr<v1::BatchInference::Stub> batch;
};

using Call = std::function<grpc::Status(Stubs&, grpc::ClientContext*)>;

template <typename Response, typename Reader>
grpc::Status ReadAll(std::unique_ptr<Reader> reader) {
  Response response;
  while (reader->Read(&response)) {
  }
  return reader->Finish();
}

template <typename Writer>
grpc::Status WriteNothing(std::unique_ptr<Writer> writer) {
  writer->WritesDone();
  return writer->Finish();
}

// The minimum role of each method, as the README documents it.
std::vector<std::tuple<std::string, Role, Call>> Calls() {
  std::vector<std::tuple<std::string, Role, Call>> calls;
  calls.emplace_back("Datasets/Upload", kTrainer,
                     [](Stubs& s, grpc::ClientContext* c) {
                       v1::Dataset r;
                       return WriteNothing(s.datasets->Upload(c, &r));
                     });
  calls.emplace_back("Datasets/List", kReader,
                     [](Stubs& s, grpc::ClientContext* c) {
                       v1::ListDatasetsResponse r;
                       return s.datasets->List(c, {}, &r);
                     });
  calls.emplace_back("FineTuning/CreateJob", kTrainer,
                     [](Stubs& s, grpc::ClientContext* c) {
                       v1::FineTuneJob r;
                       return s.fine_tuning->CreateJob(c, {}, &r);
                     });
  calls.emplace_back("FineTuning/GetJob", kReader,
                     [](Stubs& s, grpc::ClientContext* c) {
                       v1::FineTuneJob r;
                       return s.fine_tuning->GetJob(c, {}, &r);
                     });
  calls.emplace_back("FineTuning/ListJobs", kReader,
                     [](Stubs& s, grpc::ClientContext* c) {
                       v1::ListFineTuneJobsResponse r;
                       return s.fine_tuning->ListJobs(c, {}, &r);
                     });
  calls.emplace_back("FineTuning/CancelJob", kTrainer,
                     [](Stubs& s, grpc::ClientContext* c) {
                       v1::FineTuneJob r;
                       return s.fine_tuning->CancelJob(c, {}, &r);
                     });
  calls.emplace_back(
      "FineTuning/WatchJob", kReader, [](Stubs& s, grpc::ClientContext* c) {
        return ReadAll<v1::JobEvent>(s.fine_tuning->WatchJob(c, {}));
      });
  calls.emplace_back(
      "Inference/Generate", kUser, [](Stubs& s, grpc::ClientContext* c) {
        v1::GenerateRequest request;
        request.set_prompt("hi");
        request.set_max_new_tokens(1);
        return ReadAll<v1::GenerateResponse>(s.inference->Generate(c, request));
      });
  calls.emplace_back("Telemetry/Snapshot", kReader,
                     [](Stubs& s, grpc::ClientContext* c) {
                       v1::TelemetrySnapshot r;
                       return s.telemetry->Snapshot(c, {}, &r);
                     });
  calls.emplace_back(
      "Telemetry/Stream", kReader, [](Stubs& s, grpc::ClientContext* c) {
        v1::StreamTelemetryRequest request;
        request.set_count(1);
        return ReadAll<v1::TelemetrySnapshot>(s.telemetry->Stream(c, request));
      });
  calls.emplace_back("Adapters/List", kReader,
                     [](Stubs& s, grpc::ClientContext* c) {
                       v1::ListAdaptersResponse r;
                       return s.adapters->List(c, {}, &r);
                     });
  calls.emplace_back("Adapters/Load", kTrainer,
                     [](Stubs& s, grpc::ClientContext* c) {
                       v1::Adapter r;
                       return s.adapters->Load(c, {}, &r);
                     });
  calls.emplace_back("Adapters/Upload", kTrainer,
                     [](Stubs& s, grpc::ClientContext* c) {
                       v1::Adapter r;
                       return WriteNothing(s.adapters->Upload(c, &r));
                     });
  calls.emplace_back("Adapters/Unload", kTrainer,
                     [](Stubs& s, grpc::ClientContext* c) {
                       v1::Adapter r;
                       return s.adapters->Unload(c, {}, &r);
                     });
  calls.emplace_back("Adapters/Delete", kTrainer,
                     [](Stubs& s, grpc::ClientContext* c) {
                       v1::DeleteAdapterResponse r;
                       return s.adapters->Delete(c, {}, &r);
                     });
  calls.emplace_back(
      "Adapters/Download", kUser, [](Stubs& s, grpc::ClientContext* c) {
        return ReadAll<v1::FileChunk>(s.adapters->Download(c, {}));
      });
  calls.emplace_back("Adapters/ExportMerged", kTrainer,
                     [](Stubs& s, grpc::ClientContext* c) {
                       v1::ExportMergedResponse r;
                       return s.adapters->ExportMerged(c, {}, &r);
                     });
  calls.emplace_back("BatchInference/CreateJob", kUser,
                     [](Stubs& s, grpc::ClientContext* c) {
                       v1::BatchJob r;
                       return WriteNothing(s.batch->CreateJob(c, &r));
                     });
  calls.emplace_back("BatchInference/GetJob", kReader,
                     [](Stubs& s, grpc::ClientContext* c) {
                       v1::BatchJob r;
                       return s.batch->GetJob(c, {}, &r);
                     });
  calls.emplace_back("BatchInference/ListJobs", kReader,
                     [](Stubs& s, grpc::ClientContext* c) {
                       v1::ListBatchJobsResponse r;
                       return s.batch->ListJobs(c, {}, &r);
                     });
  calls.emplace_back("BatchInference/CancelJob", kUser,
                     [](Stubs& s, grpc::ClientContext* c) {
                       v1::BatchJob r;
                       return s.batch->CancelJob(c, {}, &r);
                     });
  calls.emplace_back("BatchInference/WatchJob", kReader,
                     [](Stubs& s, grpc::ClientContext* c) {
                       return ReadAll<v1::JobEvent>(s.batch->WatchJob(c, {}));
                     });
  calls.emplace_back(
      "BatchInference/GetResults", kReader,
      [](Stubs& s, grpc::ClientContext* c) {
        return ReadAll<v1::BatchResultsChunk>(s.batch->GetResults(c, {}));
      });
  return calls;
}

TEST(AuthMatrixTest, EveryRpcRefusesExactlyTheCallersItShould) {
  if (!WorkerBuilt()) GTEST_SKIP() << "lorad-worker not built";
  TempDir dir;
  const std::string tokens = dir.path() + "/tokens";
  WriteTokensFile(tokens, {{"tok-reader", "rita reader"},
                           {"tok-user", "uma user"},
                           {"tok-trainer", "tim trainer"},
                           {"tok-admin", "ada admin"}});
  auto daemon = DaemonProcess::Start(
      dir.path() + "/data", {"--auth_tokens_file=" + tokens, "--device=cpu"});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  // One channel for every caller: a verdict must belong to its call, not to
  // the connection.
  Stubs stubs(grpc::CreateChannel((*daemon)->address(),
                                  grpc::InsecureChannelCredentials()));
  const std::map<Role, std::string> role_tokens = {{kReader, "tok-reader"},
                                                   {kUser, "tok-user"},
                                                   {kTrainer, "tok-trainer"},
                                                   {kAdmin, "tok-admin"}};
  for (const auto& [method, minimum, call] : Calls()) {
    for (const std::string& token : {std::string(), std::string("tok-bad")}) {
      grpc::Status status = call(stubs, AuthContext(token).get());
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << method << " with token \"" << token << "\": " << Describe(status);
    }
    for (const auto& [role, token] : role_tokens) {
      grpc::Status status = call(stubs, AuthContext(token).get());
      if (role < minimum) {
        EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << method << " as " << token << ": " << Describe(status);
        EXPECT_NE(status.error_message().find("needs role"), std::string::npos)
            << Describe(status);
      } else {
        EXPECT_NE(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
            << method << " as " << token << ": " << Describe(status);
        EXPECT_NE(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
            << method << " as " << token << ": " << Describe(status);
      }
    }
  }

  // A client cannot pass itself off as admitted: the verdict the handlers
  // read is the gate's, not metadata the client sent under its name.
  for (const std::string& token : {std::string(), std::string("tok-reader")}) {
    auto context = AuthContext(token);
    context->AddMetadata("lorad-verdict", "0 0 admin ada ");
    v1::Adapter adapter;
    grpc::Status status = stubs.adapters->Unload(context.get(), {}, &adapter);
    EXPECT_EQ(status.error_code(), token.empty()
                                       ? grpc::StatusCode::UNAUTHENTICATED
                                       : grpc::StatusCode::PERMISSION_DENIED)
        << Describe(status);
  }

  // The health check needs no token.
  auto health = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
      (*daemon)->address(), grpc::InsecureChannelCredentials()));
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = health->Check(AuthContext("").get(), {}, &response);
  EXPECT_TRUE(status.ok()) << Describe(status);
}

}  // namespace
}  // namespace lorad::testing
