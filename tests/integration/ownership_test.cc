// Two callers with the same role on the real daemon and worker: each sees
// and changes only its own datasets, jobs and adapters (another's are
// NOT_FOUND to it), may not take another's adapter name, and an admin sees
// everything.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "auth_util.h"
#include "client_util.h"
#include "daemon_process.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lorad/v1/lorad.grpc.pb.h"

namespace lorad::testing {
namespace {

class OwnershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!WorkerBuilt()) GTEST_SKIP() << "lorad-worker not built";
    WriteTokensFile(dir_.path() + "/tokens", {{"tok-alice", "alice trainer"},
                                              {"tok-bob", "bob trainer"},
                                              {"tok-ada", "ada admin"}});
    auto daemon = DaemonProcess::Start(
        dir_.path() + "/data",
        {"--auth_tokens_file=" + dir_.path() + "/tokens", "--device=cpu"});
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = *std::move(daemon);
    auto channel = grpc::CreateChannel(daemon_->address(),
                                       grpc::InsecureChannelCredentials());
    datasets_ = v1::Datasets::NewStub(channel);
    jobs_ = v1::FineTuning::NewStub(channel);
    adapters_ = v1::Adapters::NewStub(channel);
  }

  std::string UploadAs(const std::string& token, const std::string& contents) {
    v1::Dataset dataset;
    auto context = AuthContext(token);
    auto writer = datasets_->Upload(context.get(), &dataset);
    v1::UploadDatasetRequest request;
    request.mutable_header()->set_filename("train.jsonl");
    request.mutable_header()->set_size_bytes(contents.size());
    EXPECT_TRUE(writer->Write(request));
    request.Clear();
    request.set_chunk(contents);
    EXPECT_TRUE(writer->Write(request));
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    EXPECT_TRUE(status.ok()) << Describe(status);
    return dataset.id();
  }

  std::vector<std::string> DatasetIds(const std::string& token) {
    v1::ListDatasetsResponse response;
    grpc::Status status =
        datasets_->List(AuthContext(token).get(), {}, &response);
    EXPECT_TRUE(status.ok()) << Describe(status);
    std::vector<std::string> ids;
    for (const auto& d : response.datasets()) ids.push_back(d.id());
    return ids;
  }

  grpc::StatusCode GetJobCode(const std::string& token, const std::string& id,
                              v1::FineTuneJob* job = nullptr) {
    v1::FineTuneJob ignored;
    v1::GetFineTuneJobRequest request;
    request.set_job_id(id);
    return jobs_
        ->GetJob(AuthContext(token).get(), request, job ? job : &ignored)
        .error_code();
  }

  std::vector<std::string> AdapterNames(const std::string& token) {
    v1::ListAdaptersResponse response;
    grpc::Status status =
        adapters_->List(AuthContext(token).get(), {}, &response);
    EXPECT_TRUE(status.ok()) << Describe(status);
    std::vector<std::string> names;
    for (const auto& a : response.adapters()) names.push_back(a.name());
    return names;
  }

  TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<v1::Datasets::Stub> datasets_;
  std::unique_ptr<v1::FineTuning::Stub> jobs_;
  std::unique_ptr<v1::Adapters::Stub> adapters_;
};

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

TEST_F(OwnershipTest, CallersSeeAndChangeOnlyTheirOwn) {
  const std::string alice_data =
      UploadAs("tok-alice", PromptCompletionJsonl(16));
  const std::string bob_data = UploadAs("tok-bob", PromptCompletionJsonl(12));
  ASSERT_FALSE(alice_data.empty());
  ASSERT_NE(alice_data, bob_data);
  EXPECT_TRUE(Contains(DatasetIds("tok-alice"), alice_data));
  EXPECT_FALSE(Contains(DatasetIds("tok-alice"), bob_data));
  EXPECT_FALSE(Contains(DatasetIds("tok-bob"), alice_data));
  EXPECT_TRUE(Contains(DatasetIds("tok-ada"), alice_data));
  EXPECT_TRUE(Contains(DatasetIds("tok-ada"), bob_data));

  // bob cannot train on alice's dataset: it does not exist for him.
  v1::FineTuneJob job;
  grpc::Status stolen = jobs_->CreateJob(
      AuthContext("tok-bob").get(), TinyJobRequest(alice_data, 4, 0), &job);
  EXPECT_EQ(stolen.error_code(), grpc::StatusCode::NOT_FOUND)
      << Describe(stolen);

  grpc::Status created = jobs_->CreateJob(
      AuthContext("tok-alice").get(), TinyJobRequest(alice_data, 4, 0), &job);
  ASSERT_TRUE(created.ok()) << Describe(created);
  EXPECT_EQ(GetJobCode("tok-alice", job.id()), grpc::StatusCode::OK);
  EXPECT_EQ(GetJobCode("tok-ada", job.id()), grpc::StatusCode::OK);
  EXPECT_EQ(GetJobCode("tok-bob", job.id()), grpc::StatusCode::NOT_FOUND);
  v1::CancelFineTuneJobRequest cancel;
  cancel.set_job_id(job.id());
  v1::FineTuneJob cancelled;
  EXPECT_EQ(jobs_->CancelJob(AuthContext("tok-bob").get(), cancel, &cancelled)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::ListFineTuneJobsResponse listed;
  ASSERT_TRUE(jobs_->ListJobs(AuthContext("tok-bob").get(), {}, &listed).ok());
  EXPECT_EQ(listed.jobs_size(), 0);

  // The job finishes; its adapter is alice's.
  const absl::Time deadline = absl::Now() + absl::Minutes(15);
  v1::FineTuneJob done;
  while (absl::Now() < deadline) {
    ASSERT_EQ(GetJobCode("tok-alice", job.id(), &done), grpc::StatusCode::OK);
    if (done.state() == v1::SUCCEEDED || done.state() == v1::FAILED ||
        done.state() == v1::CANCELLED) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_EQ(done.state(), v1::SUCCEEDED) << done.DebugString();
  std::vector<std::string> mine = AdapterNames("tok-alice");
  ASSERT_EQ(mine.size(), 1u);
  const std::string adapter = mine[0];
  EXPECT_FALSE(Contains(AdapterNames("tok-bob"), adapter));
  EXPECT_TRUE(Contains(AdapterNames("tok-ada"), adapter));

  v1::DeleteAdapterRequest remove;
  remove.set_name(adapter);
  v1::DeleteAdapterResponse removed;
  EXPECT_EQ(adapters_->Delete(AuthContext("tok-bob").get(), remove, &removed)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);

  // bob may not register an adapter under alice's name.
  v1::Adapter uploaded;
  auto context = AuthContext("tok-bob");
  auto writer = adapters_->Upload(context.get(), &uploaded);
  v1::UploadAdapterRequest header;
  header.mutable_header()->set_name(adapter);
  writer->Write(header);
  writer->WritesDone();
  grpc::Status taken = writer->Finish();
  EXPECT_EQ(taken.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << Describe(taken);
  EXPECT_NE(taken.error_message().find("belongs to another token"),
            std::string::npos);

  EXPECT_TRUE(
      adapters_->Delete(AuthContext("tok-alice").get(), remove, &removed).ok());
}

}  // namespace
}  // namespace lorad::testing
