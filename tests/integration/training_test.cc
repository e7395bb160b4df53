// A real fine-tune on the tiny model memorises a small dataset, and its
// adapter is written in the PEFT layout and served; a model with a large
// vocabulary trains with its head in chunks.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client_util.h"
#include "daemon_process.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "lorad/model/model_config.h"
#include "lorad/model/tiny_model.h"

namespace lorad::testing {
namespace {

double Mean(const std::vector<v1::TrainStep>& steps, size_t from, size_t n) {
  double sum = 0;
  for (size_t i = from; i < from + n; ++i) sum += steps[i].loss();
  return sum / static_cast<double>(n);
}

// Creates a job of `steps` steps on the model directory `model` with the
// dataset `dataset_id`, watches it to its end and reads it back: *job as it
// ended, *events all its events.
void RunJobOn(Client& client, const std::string& dataset_id,
              const std::string& model, int steps, v1::FineTuneJob* job,
              std::vector<v1::JobEvent>* events) {
  v1::CreateFineTuneJobRequest request = TinyJobRequest(dataset_id, steps, 50);
  request.set_model(model);
  grpc::Status status = CreateJob(client, request, job);
  ASSERT_TRUE(status.ok()) << Describe(status);
  status = Watch(client, job->id(), 0, events, absl::Minutes(5));
  ASSERT_TRUE(status.ok()) << Describe(status);
  ASSERT_TRUE(GetJob(client, job->id(), job).ok());
}

TEST(TrainingTest, MemorisesSmallDataset) {
  if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
  TempDir dir;
  const std::string data_dir = dir.path() + "/data";
  auto daemon = StartWithWorker(data_dir);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  Client client((*daemon)->address());

  v1::Dataset dataset;
  grpc::Status status = UploadPairs(client, &dataset);
  ASSERT_TRUE(status.ok()) << Describe(status);
  v1::FineTuneJob job;
  status = CreateJob(client, TinyJobRequest(dataset.id(), 60, 20), &job);
  ASSERT_TRUE(status.ok()) << Describe(status);

  std::vector<v1::JobEvent> events;
  status = Watch(client, job.id(), 0, &events);
  ASSERT_TRUE(status.ok()) << Describe(status);
  ASSERT_TRUE(GetJob(client, job.id(), &job).ok());
  ASSERT_EQ(job.state(), v1::SUCCEEDED)
      << job.error().code() << ": " << job.error().message();

  const std::vector<v1::TrainStep> steps = Steps(events);
  ASSERT_GE(steps.size(), 10u);
  for (size_t i = 1; i < steps.size(); ++i) {
    EXPECT_GT(steps[i].step(), steps[i - 1].step());
  }
  const double first = Mean(steps, 0, 5);
  const double last = Mean(steps, steps.size() - 5, 5);
  EXPECT_LT(last, 0.5 * first) << "loss went from " << first << " to " << last;

  EXPECT_EQ(job.step(), 60);
  EXPECT_EQ(job.total_steps(), 60);
  EXPECT_GT(job.last_loss(), 0);
  EXPECT_GE(job.attempts(), 1);
  EXPECT_GT(job.memory_estimate().total_bytes(), 0);
  EXPECT_GT(job.peak_memory_bytes(), 0);
  EXPECT_GT(job.started_at_unix(), 0);
  EXPECT_GE(job.finished_at_unix(), job.started_at_unix());
  bool checkpoint_logged = false;
  for (const v1::JobEvent& e : events) {
    if (e.has_step()) EXPECT_TRUE(e.has_memory());
    if (e.log().find("checkpoint saved at step") != std::string::npos) {
      checkpoint_logged = true;
    }
  }
  EXPECT_TRUE(checkpoint_logged);

  ASSERT_FALSE(job.adapter_path().empty());
  EXPECT_TRUE(
      std::filesystem::exists(job.adapter_path() + "/adapter_config.json"));
  EXPECT_TRUE(std::filesystem::exists(job.adapter_path() +
                                      "/adapter_model.safetensors"));

  // The finished job's adapter is servable at once, as is the base model.
  for (const std::string& adapter : {job.id(), std::string()}) {
    SCOPED_TRACE(adapter.empty() ? "base model" : adapter);
    grpc::ClientContext context;
    v1::GenerateRequest request;
    request.set_adapter(adapter);
    request.set_prompt("Q0: say apple.");
    request.set_max_new_tokens(8);
    auto reader = client.inference->Generate(&context, request);
    v1::GenerateResponse response;
    std::string finish_reason;
    while (reader->Read(&response)) {
      if (!response.finish_reason().empty()) {
        finish_reason = response.finish_reason();
      }
    }
    status = reader->Finish();
    ASSERT_TRUE(status.ok()) << Describe(status);
    EXPECT_FALSE(finish_reason.empty());
  }
}

// Cancelling a running job stops it at once; the worker then runs the next
// job, and a cancelled job's adapter is not served.
TEST(TrainingTest, CancelStopsRunningJob) {
  if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
  TempDir dir;
  auto daemon = StartWithWorker(dir.path() + "/data");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  Client client((*daemon)->address());
  v1::Dataset dataset;
  grpc::Status status = UploadPairs(client, &dataset);
  ASSERT_TRUE(status.ok()) << Describe(status);
  v1::FineTuneJob long_job;
  status =
      CreateJob(client, TinyJobRequest(dataset.id(), 100000, 1000), &long_job);
  ASSERT_TRUE(status.ok()) << Describe(status);
  v1::FineTuneJob short_job;
  status = CreateJob(client, TinyJobRequest(dataset.id(), 3, 50), &short_job);
  ASSERT_TRUE(status.ok()) << Describe(status);

  bool cancelled = false;
  std::vector<v1::JobEvent> events;
  status = Watch(client, long_job.id(), 0, &events, absl::Minutes(10),
                 [&](const v1::JobEvent& event) {
                   if (cancelled || !event.has_step()) return;
                   cancelled = true;
                   grpc::ClientContext context;
                   v1::CancelFineTuneJobRequest request;
                   request.set_job_id(long_job.id());
                   v1::FineTuneJob job;
                   grpc::Status s =
                       client.fine_tuning->CancelJob(&context, request, &job);
                   EXPECT_TRUE(s.ok()) << Describe(s);
                   EXPECT_EQ(job.state(), v1::CANCELLED);
                 });
  ASSERT_TRUE(status.ok()) << Describe(status);
  ASSERT_TRUE(cancelled);
  ASSERT_TRUE(events.back().has_state());
  EXPECT_EQ(events.back().state().state(), v1::CANCELLED);

  std::vector<v1::JobEvent> short_events;
  status = Watch(client, short_job.id(), 0, &short_events);
  ASSERT_TRUE(status.ok()) << Describe(status);
  ASSERT_TRUE(GetJob(client, short_job.id(), &short_job).ok());
  EXPECT_EQ(short_job.state(), v1::SUCCEEDED)
      << short_job.error().code() << ": " << short_job.error().message();
  ASSERT_TRUE(GetJob(client, long_job.id(), &long_job).ok());
  EXPECT_EQ(long_job.state(), v1::CANCELLED);
  EXPECT_LT(long_job.step(), 100000);

  grpc::ClientContext context;
  v1::GenerateRequest request;
  request.set_adapter(long_job.id());
  request.set_prompt("Q0: say apple.");
  auto reader = client.inference->Generate(&context, request);
  v1::GenerateResponse response;
  while (reader->Read(&response)) {
  }
  EXPECT_EQ(reader->Finish().error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

// A model with a large vocabulary (32000 tokens), named by its directory:
// a micro-batch's logits (8 x about 60 positions x 32000, fp32) pass 32 MiB,
// so the worker runs the head and its loss in chunks, says so in the job's
// log, and the job trains and succeeds through the real daemon and worker.
TEST(TrainingTest, LargeVocabularyJobRunsItsHeadInChunks) {
  if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
  TempDir dir;
  const std::string model_dir = dir.path() + "/v32000";
  model::ModelConfig config = model::TinyModelConfig();
  config.vocab_size = 32000;
  ASSERT_TRUE(model::WriteRandomLlama(model_dir, config, 3).ok());
  auto daemon = StartWithWorker(dir.path() + "/data");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  Client client((*daemon)->address());
  std::string data;
  for (int i = 0; i < 8; ++i) {
    data += absl::StrCat("{\"text\": \"", std::string(60, 'a' + i), "\"}\n");
  }
  v1::Dataset dataset;
  grpc::Status status = Upload(client, "long.jsonl", data, &dataset);
  ASSERT_TRUE(status.ok()) << Describe(status);
  v1::FineTuneJob job;
  std::vector<v1::JobEvent> events;
  RunJobOn(client, dataset.id(), model_dir, 12, &job, &events);
  if (HasFatalFailure()) return;
  ASSERT_EQ(job.state(), v1::SUCCEEDED)
      << job.error().code() << ": " << job.error().message();
  std::string chunk_log;
  for (const v1::JobEvent& e : events) {
    if (e.log().find("positions at a time") != std::string::npos) {
      chunk_log = e.log();
    }
  }
  // 32 MiB / (32000 x 4 bytes) = 262 rows.
  EXPECT_EQ(
      chunk_log.rfind("the head and its loss run 262 positions at a time", 0),
      0u)
      << "no chunking log line; last event: " << EventText(events.back());
  const std::vector<v1::TrainStep> steps = Steps(events);
  ASSERT_EQ(steps.size(), 12u);
  std::printf("large vocabulary: mean loss of steps 1-3 %.4f, 10-12 %.4f\n",
              Mean(steps, 0, 3), Mean(steps, 9, 3));
  EXPECT_LT(Mean(steps, 9, 3), 0.5 * Mean(steps, 0, 3));
  EXPECT_TRUE(std::filesystem::exists(job.adapter_path() +
                                      "/adapter_model.safetensors"));
}

// An error the worker reports (here: a model whose weights file is garbage)
// fails the job at once, with the worker's code and message; no retries.
TEST(TrainingTest, WorkerErrorFailsJob) {
  if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
  TempDir dir;
  const std::string model = dir.path() + "/bad-model";
  std::filesystem::create_directories(model);
  std::ofstream(model + "/config.json") << R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "vocab_size": 259, "hidden_size": 64, "intermediate_size": 176,
    "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "max_position_embeddings": 512,
    "rms_norm_eps": 1e-5})";
  std::ofstream(model + "/model.safetensors")
      << "this is not a safetensors file";
  auto daemon = StartWithWorker(dir.path() + "/data");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  Client client((*daemon)->address());
  v1::Dataset dataset;
  grpc::Status status = UploadPairs(client, &dataset);
  ASSERT_TRUE(status.ok()) << Describe(status);
  v1::FineTuneJob job;
  std::vector<v1::JobEvent> events;
  RunJobOn(client, dataset.id(), model, 5, &job, &events);
  if (HasFatalFailure()) return;
  EXPECT_EQ(job.state(), v1::FAILED);
  EXPECT_FALSE(job.error().code().empty());
  EXPECT_NE(job.error().code(), "UNAVAILABLE") << job.error().message();
  EXPECT_FALSE(job.error().message().empty());
  EXPECT_EQ(job.attempts(), 1);
  ASSERT_TRUE(events.back().has_state());
  EXPECT_EQ(events.back().state().error().code(), job.error().code());
}

}  // namespace
}  // namespace lorad::testing
