// Bad requests get precise errors, and the daemon keeps serving what it had.
// Needs no worker: lorad runs with a worker binary that does not exist.
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "client_util.h"
#include "daemon_process.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"

namespace lorad::testing {
namespace {

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto daemon = DaemonProcess::Start(data_dir(), Flags());
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = *std::move(daemon);
    client_ = std::make_unique<Client>(daemon_->address());
  }

  std::vector<std::string> Flags() const {
    return {"--worker_binary=/nonexistent/lorad-worker",
            "--max_upload_bytes=65536"};
  }
  std::string data_dir() const { return dir_.path() + "/data"; }

  v1::Dataset UploadGood() {
    v1::Dataset dataset;
    grpc::Status status =
        Upload(*client_, "good.jsonl", PromptCompletionJsonl(8), &dataset);
    EXPECT_TRUE(status.ok()) << Describe(status);
    return dataset;
  }

  std::vector<v1::FineTuneJob> ListJobs() {
    grpc::ClientContext context;
    v1::ListFineTuneJobsResponse response;
    grpc::Status status = client_->fine_tuning->ListJobs(
        &context, v1::ListFineTuneJobsRequest(), &response);
    EXPECT_TRUE(status.ok()) << Describe(status);
    return {response.jobs().begin(), response.jobs().end()};
  }

  grpc::Status Create(const v1::CreateFineTuneJobRequest& request,
                      v1::FineTuneJob* job) {
    grpc::ClientContext context;
    return client_->fine_tuning->CreateJob(&context, request, job);
  }

  // A request that is valid except for what the caller changes.
  v1::CreateFineTuneJobRequest ValidRequest(const std::string& dataset_id) {
    v1::CreateFineTuneJobRequest request;
    request.set_training_file(dataset_id);
    request.mutable_hyperparameters()->set_rank(8);
    request.mutable_hyperparameters()->set_learning_rate(1e-3f);
    return request;
  }

  TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<Client> client_;
};

void ExpectError(const grpc::Status& status, grpc::StatusCode code,
                 const std::string& needle) {
  EXPECT_EQ(status.error_code(), code) << Describe(status);
  EXPECT_TRUE(absl::StrContains(status.error_message(), needle))
      << "want \"" << needle << "\" in: " << status.error_message();
}

TEST_F(BadInputTest, UploadIsValidatedAndIdempotent) {
  v1::Dataset first = UploadGood();
  EXPECT_TRUE(absl::StartsWith(first.id(), "ds-")) << first.id();
  EXPECT_EQ(first.id().size(), 3u + 16u);
  EXPECT_EQ(first.num_examples(), 8);
  EXPECT_EQ(first.format(), "prompt_completion");
  EXPECT_TRUE(std::filesystem::exists(data_dir() + "/datasets/" +
                                      first.sha256() + ".jsonl"));
  v1::Dataset again = UploadGood();
  EXPECT_EQ(again.id(), first.id());

  v1::Dataset ignored;
  const std::string malformed =
      "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\", \n";
  ExpectError(Upload(*client_, "broken.jsonl", malformed, &ignored),
              grpc::StatusCode::INVALID_ARGUMENT, "line 2");
  ExpectError(Upload(*client_, "broken.jsonl", malformed, &ignored),
              grpc::StatusCode::INVALID_ARGUMENT, "broken.jsonl");
  ExpectError(Upload(*client_, "odd.jsonl", "{\"foo\": \"bar\"}\n", &ignored),
              grpc::StatusCode::INVALID_ARGUMENT, "line 1");
  EXPECT_EQ(Upload(*client_, "empty.jsonl", "", &ignored).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Upload(*client_, "blank.jsonl", "\n\n", &ignored).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  ExpectError(Upload(*client_, "short.jsonl", PromptCompletionJsonl(2),
                     &ignored, /*declared_size=*/100000 - 1),
              grpc::StatusCode::RESOURCE_EXHAUSTED, "65536");
  ExpectError(Upload(*client_, "short.jsonl", PromptCompletionJsonl(2),
                     &ignored, /*declared_size=*/10000),
              grpc::StatusCode::INVALID_ARGUMENT, "10000");
  ExpectError(Upload(*client_, "big.jsonl", std::string(70000, 'x'), &ignored),
              grpc::StatusCode::RESOURCE_EXHAUSTED, "65536");

  // A chunk before any header.
  grpc::ClientContext context;
  auto writer = client_->datasets->Upload(&context, &ignored);
  v1::UploadDatasetRequest chunk;
  chunk.set_chunk("{\"text\": \"x\"}\n");
  writer->Write(chunk);
  writer->WritesDone();
  ExpectError(writer->Finish(), grpc::StatusCode::INVALID_ARGUMENT, "header");
}

TEST_F(BadInputTest, CreateJobRejectsBadRequests) {
  const std::string ds = UploadGood().id();
  v1::FineTuneJob job;
  struct Case {
    std::string name;
    std::function<void(v1::Hyperparameters&)> edit;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {"rank 0", [](auto& hp) { hp.set_rank(0); }, "rank"},
      {"rank 100000", [](auto& hp) { hp.set_rank(100000); }, "100000"},
      {"lr 0", [](auto& hp) { hp.set_learning_rate(0); }, "learning_rate"},
      {"lr 5", [](auto& hp) { hp.set_learning_rate(5); }, "learning_rate"},
      {"alpha -1", [](auto& hp) { hp.set_alpha(-1); }, "alpha"},
      {"dropout 1", [](auto& hp) { hp.set_dropout(1); }, "dropout"},
      {"epochs -1", [](auto& hp) { hp.set_epochs(-1); }, "epochs"},
      {"max_steps -3", [](auto& hp) { hp.set_max_steps(-3); }, "max_steps"},
      {"batch 2048", [](auto& hp) { hp.set_batch_size(2048); }, "batch_size"},
      {"seq 4", [](auto& hp) { hp.set_max_seq_len(4); }, "max_seq_len"},
      {"scheduler", [](auto& hp) { hp.set_lr_scheduler("step"); }, "step"},
      {"module", [](auto& hp) { hp.add_target_modules("qkv"); }, "qkv"},
      {"split", [](auto& hp) { hp.set_validation_split(0.9f); },
       "validation_split"},
      {"dtype", [](auto& hp) { hp.set_compute_dtype("fp8"); }, "fp8"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::CreateFineTuneJobRequest request = ValidRequest(ds);
    c.edit(*request.mutable_hyperparameters());
    ExpectError(Create(request, &job), grpc::StatusCode::INVALID_ARGUMENT,
                c.needle);
  }

  v1::CreateFineTuneJobRequest request = ValidRequest(ds);
  request.set_model(dir_.path() + "/no/such/model");
  ExpectError(Create(request, &job), grpc::StatusCode::NOT_FOUND,
              "does not exist");

  const std::string gpt2 = dir_.path() + "/gpt2";
  std::filesystem::create_directories(gpt2);
  std::ofstream(gpt2 + "/config.json")
      << R"({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"})";
  request.set_model(gpt2);
  ExpectError(Create(request, &job), grpc::StatusCode::INVALID_ARGUMENT,
              "GPT2LMHeadModel");

  request = ValidRequest("ds-0000000000000000");
  ExpectError(Create(request, &job), grpc::StatusCode::NOT_FOUND,
              "ds-0000000000000000");
  request = ValidRequest(ds);
  request.set_validation_file("ds-1111111111111111");
  ExpectError(Create(request, &job), grpc::StatusCode::NOT_FOUND,
              "validation_file");
}

// Admission control: a job whose memory estimate exceeds the device's room
// is refused up front, naming the estimate, the room and what would fit; an
// ordinary job on the same daemon is still accepted.
TEST_F(BadInputTest, CreateJobRefusesAJobThatCannotFit) {
  const std::string ds = UploadGood().id();
  v1::CreateFineTuneJobRequest request = ValidRequest(ds);
  request.mutable_hyperparameters()->set_batch_size(1024);
  request.mutable_hyperparameters()->set_max_seq_len(131072);
  v1::FineTuneJob job;
  grpc::Status status = Create(request, &job);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << Describe(status);
  // Gradient checkpointing was left unset, so the daemon chose it (the job
  // does not fit without it) and does not suggest it again.
  for (const char* needle :
       {"fine-tune job needs about ", " GiB", " has room for ", " short",
        "What would fit: ", "max_seq_len "}) {
    EXPECT_TRUE(absl::StrContains(status.error_message(), needle))
        << "want \"" << needle << "\" in: " << status.error_message();
  }
  EXPECT_FALSE(absl::StrContains(status.error_message(), "checkpointing on"))
      << status.error_message();
  // Turned off by the request, it is kept off and suggested.
  request.mutable_hyperparameters()->set_gradient_checkpointing(false);
  status = Create(request, &job);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(
      absl::StrContains(status.error_message(), "gradient_checkpointing on"))
      << status.error_message();
  EXPECT_TRUE(ListJobs().empty()) << "a refused job was stored";
  status = Create(ValidRequest(ds), &job);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(job.state(), v1::QUEUED);
}

TEST_F(BadInputTest, UnknownJobsAreNotFound) {
  v1::FineTuneJob job;
  {
    grpc::ClientContext context;
    v1::GetFineTuneJobRequest request;
    request.set_job_id("ftjob-000000000000");
    EXPECT_EQ(
        client_->fine_tuning->GetJob(&context, request, &job).error_code(),
        grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext context;
    v1::CancelFineTuneJobRequest request;
    request.set_job_id("ftjob-000000000000");
    EXPECT_EQ(
        client_->fine_tuning->CancelJob(&context, request, &job).error_code(),
        grpc::StatusCode::NOT_FOUND);
  }
  std::vector<v1::JobEvent> events;
  EXPECT_EQ(Watch(*client_, "ftjob-000000000000", 0, &events).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(events.empty());
  {
    grpc::ClientContext context;
    v1::GenerateRequest request;
    request.set_adapter("ftjob-000000000000");
    request.set_prompt("hi");
    auto reader = client_->inference->Generate(&context, request);
    v1::GenerateResponse response;
    while (reader->Read(&response)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
}

// Without a worker a valid job is accepted with its defaults filled in, fails
// cleanly, and the daemon keeps everything across a restart.
TEST_F(BadInputTest, JobWithoutWorkerFailsAndDataSurvivesRestart) {
  const v1::Dataset dataset = UploadGood();
  v1::CreateFineTuneJobRequest request;
  request.set_training_file(dataset.id());
  v1::FineTuneJob job;
  grpc::Status status = Create(request, &job);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_TRUE(absl::StartsWith(job.id(), "ftjob-")) << job.id();
  EXPECT_EQ(job.id().size(), 6u + 12u);
  EXPECT_EQ(job.state(), v1::QUEUED);
  EXPECT_EQ(job.model(), "tiny");
  EXPECT_EQ(job.hyperparameters().rank(), 8);
  EXPECT_FLOAT_EQ(job.hyperparameters().alpha(), 16);
  EXPECT_FLOAT_EQ(job.hyperparameters().learning_rate(), 2e-4f);
  EXPECT_EQ(job.hyperparameters().target_modules_size(), 7);
  EXPECT_EQ(job.hyperparameters().lr_scheduler(), "cosine");

  std::vector<v1::JobEvent> events;
  status = Watch(*client_, job.id(), 0, &events, absl::Seconds(60));
  ASSERT_TRUE(status.ok()) << Describe(status);
  ASSERT_FALSE(events.empty());
  std::vector<v1::JobState> states;
  for (const v1::JobEvent& e : events) {
    if (e.has_state()) states.push_back(e.state().state());
  }
  EXPECT_EQ(states, (std::vector<v1::JobState>{v1::VALIDATING, v1::QUEUED,
                                               v1::RUNNING, v1::FAILED}));
  const v1::JobEvent& last = events.back();
  ASSERT_TRUE(last.has_state());
  EXPECT_EQ(last.state().error().code(), "FAILED_PRECONDITION");
  for (size_t i = 1; i < events.size(); ++i) {
    EXPECT_EQ(events[i].seq(), events[i - 1].seq() + 1);
  }
  // Watching from the middle sends only what follows.
  std::vector<v1::JobEvent> tail;
  ASSERT_TRUE(Watch(*client_, job.id(), events[1].seq(), &tail).ok());
  ASSERT_EQ(tail.size(), events.size() - 2);
  EXPECT_EQ(tail.front().seq(), events[2].seq());

  v1::FineTuneJob cancelled;
  {
    grpc::ClientContext context;
    v1::CancelFineTuneJobRequest cancel;
    cancel.set_job_id(job.id());
    EXPECT_EQ(client_->fine_tuning->CancelJob(&context, cancel, &cancelled)
                  .error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }

  ASSERT_EQ(daemon_->Terminate(), 0);
  auto restarted = DaemonProcess::Start(data_dir(), Flags());
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  daemon_ = *std::move(restarted);
  client_ = std::make_unique<Client>(daemon_->address());

  {
    grpc::ClientContext context;
    v1::ListDatasetsResponse response;
    ASSERT_TRUE(
        client_->datasets->List(&context, v1::ListDatasetsRequest(), &response)
            .ok());
    ASSERT_EQ(response.datasets_size(), 1);
    EXPECT_EQ(response.datasets(0).id(), dataset.id());
  }
  {
    const std::vector<v1::FineTuneJob> jobs = ListJobs();
    ASSERT_EQ(jobs.size(), 1u);
    EXPECT_EQ(jobs[0].id(), job.id());
    EXPECT_EQ(jobs[0].state(), v1::FAILED);
  }
}

}  // namespace
}  // namespace lorad::testing
