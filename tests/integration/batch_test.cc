// Batch inference jobs through the real daemon and worker: results in input
// order matching single requests, bad input refused, cancel, and a job that
// survives a daemon kill.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client_util.h"
#include "daemon_process.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "serving_util.h"

namespace lorad::testing {
namespace {

using Json = nlohmann::json;

std::string Prompt(int i) { return absl::StrFormat("item %d: the", i); }

// `n` lines; every third names adapter "a", every fifth sets its own
// max_new_tokens.
std::string BatchJsonl(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    Json j;
    j["id"] = absl::StrCat("req-", i);
    j["prompt"] = Prompt(i);
    if (i % 3 == 0) j["adapter"] = "a";
    if (i % 5 == 0) j["max_new_tokens"] = 4;
    absl::StrAppend(&out, j.dump(), "\n");
  }
  return out;
}

class BatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
    Start();
    v1::Adapter a;
    grpc::Status status =
        UploadAdapter(*adapters_, "a", MakeTinyAdapter({}), &a);
    ASSERT_TRUE(status.ok()) << Describe(status);
  }

  void Start() {
    auto daemon =
        StartWithWorker(dir_.path() + "/data", {"--batch_concurrency=3"});
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = *std::move(daemon);
    client_ = std::make_unique<Client>(daemon_->address());
    adapters_ = v1::Adapters::NewStub(client_->channel);
    batch_ = v1::BatchInference::NewStub(client_->channel);
  }

  v1::BatchJob Get(const std::string& id) {
    grpc::ClientContext context;
    v1::GetBatchJobRequest request;
    request.set_job_id(id);
    v1::BatchJob job;
    grpc::Status status = batch_->GetJob(&context, request, &job);
    EXPECT_TRUE(status.ok()) << Describe(status);
    return job;
  }

  // Checks that the results are one per input line, in order, each equal to
  // the same request made alone.
  void ExpectResultsMatchSingleRequests(const std::string& job_id, int n,
                                        int default_tokens = 8) {
    std::vector<std::string> lines;
    grpc::Status status = BatchResults(*batch_, job_id, &lines);
    ASSERT_TRUE(status.ok()) << Describe(status);
    ASSERT_EQ(lines.size(), static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      SCOPED_TRACE(lines[i]);
      Json j = Json::parse(lines[i]);
      EXPECT_EQ(j["index"], i);
      EXPECT_EQ(j["id"], absl::StrCat("req-", i));
      ASSERT_FALSE(j.contains("error"));
      Generated alone =
          GenerateText(*client_->inference, i % 3 == 0 ? "a" : "", Prompt(i),
                       i % 5 == 0 ? 4 : default_tokens);
      ASSERT_TRUE(alone.status.ok()) << Describe(alone.status);
      EXPECT_EQ(j["text"], alone.text);
      EXPECT_EQ(j["finish_reason"], alone.finish_reason);
    }
  }

  TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<v1::Adapters::Stub> adapters_;
  std::unique_ptr<v1::BatchInference::Stub> batch_;
};

v1::GenerateRequest Defaults(int max_new_tokens = 8) {
  v1::GenerateRequest defaults;
  defaults.set_max_new_tokens(max_new_tokens);
  return defaults;
}

TEST_F(BatchTest, ResultsInInputOrder) {
  constexpr int kLines = 14;
  v1::BatchJob job;
  grpc::Status status =
      CreateBatch(*batch_, BatchJsonl(kLines), Defaults(), &job);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(job.num_requests(), kLines);
  std::vector<v1::JobEvent> events;
  status = WatchBatch(*batch_, job.id(), &events);
  ASSERT_TRUE(status.ok()) << Describe(status);
  ASSERT_FALSE(events.empty());
  ASSERT_TRUE(events.back().has_state());
  EXPECT_EQ(events.back().state().state(), v1::SUCCEEDED)
      << events.back().state().message();
  int64_t last_completed = -1;
  int progress_events = 0;
  for (const v1::JobEvent& e : events) {
    if (!e.has_batch()) continue;
    ++progress_events;
    EXPECT_GE(e.batch().completed(), last_completed);
    EXPECT_EQ(e.batch().total(), kLines);
    last_completed = e.batch().completed();
  }
  EXPECT_GE(progress_events, 2);
  EXPECT_EQ(last_completed, kLines);
  job = Get(job.id());
  EXPECT_EQ(job.state(), v1::SUCCEEDED);
  EXPECT_EQ(job.completed(), kLines);
  EXPECT_EQ(job.failed(), 0);
  EXPECT_GT(job.completion_tokens(), 0);
  ExpectResultsMatchSingleRequests(job.id(), kLines);
}

// Chat lines go through the model's chat template like Generate's messages.
TEST_F(BatchTest, ChatLines) {
  std::string jsonl;
  for (int i = 0; i < 3; ++i) {
    Json j;
    j["messages"] = {{{"role", "system"}, {"content", "be brief"}},
                     {{"role", "user"}, {"content", Prompt(i)}}};
    if (i == 1) j["adapter"] = "a";
    absl::StrAppend(&jsonl, j.dump(), "\n");
  }
  v1::BatchJob job;
  grpc::Status status = CreateBatch(*batch_, jsonl, Defaults(), &job);
  ASSERT_TRUE(status.ok()) << Describe(status);
  std::vector<v1::JobEvent> events;
  ASSERT_TRUE(WatchBatch(*batch_, job.id(), &events).ok());
  EXPECT_EQ(Get(job.id()).state(), v1::SUCCEEDED);
  std::vector<std::string> lines;
  ASSERT_TRUE(BatchResults(*batch_, job.id(), &lines).ok());
  ASSERT_EQ(lines.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    Json j = Json::parse(lines[i]);
    EXPECT_EQ(j["index"], i);
    EXPECT_FALSE(j.contains("error")) << lines[i];
    EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 0) << lines[i];
  }
}

TEST_F(BatchTest, BadInputIsRefused) {
  struct Case {
    std::string jsonl;
    grpc::StatusCode code;
    std::string want;
  };
  const Case cases[] = {
      {"{\"prompt\": \"x\"}\n{\"prompt\": 3}\n",
       grpc::StatusCode::INVALID_ARGUMENT, "line 2: field \"prompt\""},
      {"{\"prompt\": \"x\", \"top_p\": 2}\n",
       grpc::StatusCode::INVALID_ARGUMENT, "top_p"},
      {"{\"prompt\": \"x\", \"colour\": 1}\n",
       grpc::StatusCode::INVALID_ARGUMENT, "unknown field \"colour\""},
      {"not json\n", grpc::StatusCode::INVALID_ARGUMENT, "line 1"},
      {"\n\n", grpc::StatusCode::INVALID_ARGUMENT, "no requests"},
      {"{\"prompt\": \"x\"}\n{\"prompt\": \"y\", \"adapter\": \"nope\"}\n",
       grpc::StatusCode::NOT_FOUND, "line 2"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.jsonl);
    v1::BatchJob job;
    grpc::Status status = CreateBatch(*batch_, c.jsonl, Defaults(), &job);
    EXPECT_EQ(status.error_code(), c.code) << Describe(status);
    EXPECT_NE(status.error_message().find(c.want), std::string::npos)
        << status.error_message();
  }
  grpc::ClientContext context;
  v1::ListBatchJobsResponse list;
  ASSERT_TRUE(
      batch_->ListJobs(&context, v1::ListBatchJobsRequest(), &list).ok());
  EXPECT_EQ(list.jobs_size(), 0);
}

TEST_F(BatchTest, CancelStopsTheJob) {
  v1::BatchJob job;
  ASSERT_TRUE(CreateBatch(*batch_, BatchJsonl(400), Defaults(), &job).ok());
  std::vector<v1::JobEvent> events;
  grpc::Status status =
      WatchBatch(*batch_, job.id(), &events, [](const v1::JobEvent& e) {
        return e.has_batch() && e.batch().completed() >= 3;
      });
  ASSERT_TRUE(status.ok()) << Describe(status);
  grpc::ClientContext context;
  v1::CancelBatchJobRequest cancel;
  cancel.set_job_id(job.id());
  v1::BatchJob cancelled;
  status = batch_->CancelJob(&context, cancel, &cancelled);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(cancelled.state(), v1::CANCELLED);
  events.clear();
  ASSERT_TRUE(WatchBatch(*batch_, job.id(), &events).ok());
  job = Get(job.id());
  EXPECT_EQ(job.state(), v1::CANCELLED);
  EXPECT_LT(job.completed(), 400);
  std::vector<std::string> lines;
  ASSERT_TRUE(BatchResults(*batch_, job.id(), &lines).ok());
  EXPECT_LT(lines.size(), 400u);
  // A second cancel of a final job is refused.
  grpc::ClientContext again;
  EXPECT_EQ(batch_->CancelJob(&again, cancel, &cancelled).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

// kill -9 of the daemon mid-job: after a restart the job resumes at the
// lines without a result, keeps the results it had, and finishes with one
// result per line in input order.
TEST_F(BatchTest, SurvivesDaemonKill) {
  // Long enough that the kill lands mid-job on a fast worker.
  constexpr int kLines = 150;
  constexpr int kTokens = 32;
  v1::BatchJob job;
  ASSERT_TRUE(
      CreateBatch(*batch_, BatchJsonl(kLines), Defaults(kTokens), &job).ok());
  std::vector<v1::JobEvent> events;
  grpc::Status status =
      WatchBatch(*batch_, job.id(), &events, [](const v1::JobEvent& e) {
        return e.has_batch() && e.batch().completed() >= 6;
      });
  ASSERT_TRUE(status.ok()) << Describe(status);
  std::vector<std::string> before;
  ASSERT_TRUE(BatchResults(*batch_, job.id(), &before).ok());
  daemon_->Kill();
  ASSERT_GE(before.size(), 6u);
  ASSERT_LT(before.size(), static_cast<size_t>(kLines))
      << "the job finished before the kill; nothing to resume";

  Start();
  events.clear();
  status = WatchBatch(*batch_, job.id(), &events);
  ASSERT_TRUE(status.ok()) << Describe(status);
  job = Get(job.id());
  EXPECT_EQ(job.state(), v1::SUCCEEDED) << job.error().message();
  EXPECT_EQ(job.attempts(), 2);
  std::vector<std::string> after;
  ASSERT_TRUE(BatchResults(*batch_, job.id(), &after).ok());
  ASSERT_EQ(after.size(), static_cast<size_t>(kLines));
  // What was stored before the kill is kept as it was.
  for (const std::string& line : before) {
    const int index = Json::parse(line)["index"];
    EXPECT_EQ(after[index], line);
  }
  ExpectResultsMatchSingleRequests(job.id(), kLines, kTokens);
}

}  // namespace
}  // namespace lorad::testing
