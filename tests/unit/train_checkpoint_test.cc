// Training checkpoints on a failing disk, through a FaultInjectionEnv: a
// save that fails returns a clear status and the previous checkpoint stays
// whole and loadable.
#include "train_checkpoint.h"

#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

#include "fault_env.h"
#include "gtest/gtest.h"
#include "lorad/model/tiny_model.h"
#include "test_dir.h"

namespace lorad::worker {
namespace {

std::string TestDir() { return FreshTestDir("train_checkpoint_test"); }

AdapterSet MakeAdapter(uint64_t seed) {
  LoraOptions lo;
  lo.rank = 4;
  lo.target_modules = {"q_proj", "v_proj"};
  auto adapter = AdapterSet::CreateForTraining(model::TinyModelConfig(), lo,
                                               seed, torch::kCPU);
  EXPECT_TRUE(adapter.ok()) << adapter.status();
  return *std::move(adapter);
}

// One AdamW step with unit gradients, so the optimizer has state to save.
void Step(AdapterSet& adapter, torch::optim::Optimizer& optimizer) {
  for (torch::Tensor p : adapter.Parameters()) {
    p.mutable_grad() = torch::ones_like(p);
  }
  optimizer.step();
}

std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  return names;
}

// Saves at step 3, fails to save at step 7 in the way `arm` sets up, and
// checks the step-3 checkpoint is what loads; returns the failure.
absl::Status FailedSaveKeepsThePrevious(void (*arm)(FaultInjectionEnv&)) {
  const std::string dir = TestDir();
  const std::string path = dir + "/checkpoint.pt";
  FaultInjectionEnv env;
  AdapterSet adapter = MakeAdapter(1);
  torch::optim::AdamW optimizer(adapter.Parameters(),
                                torch::optim::AdamWOptions(1e-3));
  Step(adapter, optimizer);
  CheckpointState first;
  first.step = 3;
  first.tokens_seen = 300;
  EXPECT_TRUE(SaveCheckpoint(path, adapter, optimizer, first, &env).ok());
  const torch::Tensor saved_a = adapter.weights().begin()->second.a.clone();

  Step(adapter, optimizer);
  CheckpointState second;
  second.step = 7;
  second.tokens_seen = 700;
  arm(env);
  absl::Status failed = SaveCheckpoint(path, adapter, optimizer, second, &env);
  EXPECT_FALSE(failed.ok());
  EXPECT_NE(failed.message().find(path), absl::string_view::npos) << failed;
  EXPECT_EQ(Names(dir), std::vector<std::string>{"checkpoint.pt"})
      << "a temporary file was left behind";

  AdapterSet restored = MakeAdapter(2);
  torch::optim::AdamW restored_opt(restored.Parameters(),
                                   torch::optim::AdamWOptions(1e-3));
  auto state = LoadCheckpoint(path, restored, restored_opt, &env);
  EXPECT_TRUE(state.ok()) << state.status();
  if (state.ok()) {
    EXPECT_EQ(state->step, 3);
    EXPECT_EQ(state->tokens_seen, 300);
    EXPECT_TRUE(torch::equal(restored.weights().begin()->second.a, saved_a))
        << "the weights are not the first checkpoint's";
  }
  return failed;
}

TEST(TrainCheckpointTest, FullDiskIsResourceExhaustedAndKeepsThePrevious) {
  absl::Status failed = FailedSaveKeepsThePrevious(
      [](FaultInjectionEnv& env) { env.FailWrites(1); });
  EXPECT_TRUE(absl::IsResourceExhausted(failed)) << failed;
}

TEST(TrainCheckpointTest, FailedFsyncKeepsThePrevious) {
  absl::Status failed = FailedSaveKeepsThePrevious(
      [](FaultInjectionEnv& env) { env.FailSyncs(1); });
  EXPECT_TRUE(absl::IsInternal(failed)) << failed;
}

TEST(TrainCheckpointTest, FailedRenameKeepsThePrevious) {
  absl::Status failed = FailedSaveKeepsThePrevious(
      [](FaultInjectionEnv& env) { env.FailRenames(1); });
  EXPECT_TRUE(absl::IsInternal(failed)) << failed;
}

TEST(TrainCheckpointTest, MissingCheckpointIsNotFound) {
  AdapterSet adapter = MakeAdapter(1);
  torch::optim::AdamW optimizer(adapter.Parameters(),
                                torch::optim::AdamWOptions(1e-3));
  auto state = LoadCheckpoint(TestDir() + "/checkpoint.pt", adapter, optimizer);
  EXPECT_TRUE(absl::IsNotFound(state.status())) << state.status();
}

}  // namespace
}  // namespace lorad::worker
