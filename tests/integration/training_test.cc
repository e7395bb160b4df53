// A real fine-tune on the tiny model memorises a small dataset, and its
// adapter is written in the PEFT layout and served.
#include <filesystem>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client_util.h"
#include "daemon_process.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"

namespace lorad::testing {
namespace {

double Mean(const std::vector<v1::TrainStep>& steps, size_t from, size_t n) {
  double sum = 0;
  for (size_t i = from; i < from + n; ++i) sum += steps[i].loss();
  return sum / static_cast<double>(n);
}

TEST(TrainingTest, MemorisesSmallDataset) {
  if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
  TempDir dir;
  const std::string data_dir = dir.path() + "/data";
  auto daemon = DaemonProcess::Start(
      data_dir, {absl::StrCat("--worker_binary=", WorkerBinary())});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  Client client((*daemon)->address());

  v1::Dataset dataset;
  grpc::Status status =
      Upload(client, "pairs.jsonl", PromptCompletionJsonl(8), &dataset);
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

  // The finished job's adapter is servable at once.
  grpc::ClientContext context;
  v1::GenerateRequest request;
  request.set_adapter(job.id());
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

}  // namespace
}  // namespace lorad::testing
