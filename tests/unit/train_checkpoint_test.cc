// Training checkpoints: on a failing disk, through a FaultInjectionEnv, a
// save that fails returns a clear status and the previous checkpoints stay
// whole and loadable; the last two are kept, and a corrupt or truncated
// newest one falls back to the one before; the events a checkpoint keeps
// come back as they went in.
#include "train_checkpoint.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fault_env.h"
#include "fault_sweep.h"
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
  FaultInjectionEnv env;
  AdapterSet adapter = MakeAdapter(1);
  torch::optim::AdamW optimizer(adapter.Parameters(),
                                torch::optim::AdamWOptions(1e-3));
  Step(adapter, optimizer);
  CheckpointState first;
  first.step = 3;
  first.tokens_seen = 300;
  EXPECT_TRUE(SaveCheckpoint(dir, adapter, optimizer, first, &env).ok());
  const torch::Tensor saved_a = adapter.weights().begin()->second.a.clone();

  Step(adapter, optimizer);
  CheckpointState second;
  second.step = 7;
  second.tokens_seen = 700;
  arm(env);
  absl::Status failed = SaveCheckpoint(dir, adapter, optimizer, second, &env);
  EXPECT_FALSE(failed.ok());
  EXPECT_NE(failed.message().find(CheckpointPath(dir, 7)),
            absl::string_view::npos)
      << failed;
  EXPECT_EQ(Names(dir), std::vector<std::string>{"checkpoint-3.pt"})
      << "a temporary file was left behind";

  AdapterSet restored = MakeAdapter(2);
  torch::optim::AdamW restored_opt(restored.Parameters(),
                                   torch::optim::AdamWOptions(1e-3));
  auto state = LoadCheckpoint(dir, restored, restored_opt, &env);
  EXPECT_TRUE(state.ok()) << state.status();
  if (state.ok()) {
    EXPECT_EQ(state->state.step, 3);
    EXPECT_EQ(state->state.tokens_seen, 300);
    EXPECT_TRUE(state->skipped.empty());
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

TEST(TrainCheckpointTest, EveryWriteSyncAndRenameKeepsThePrevious) {
  const std::string dir = TestDir();
  FaultInjectionEnv env;
  AdapterSet adapter = MakeAdapter(1);
  torch::optim::AdamW optimizer(adapter.Parameters(),
                                torch::optim::AdamWOptions(1e-3));
  Step(adapter, optimizer);
  CheckpointState first;
  first.step = 3;
  ASSERT_TRUE(SaveCheckpoint(dir, adapter, optimizer, first, &env).ok());
  const torch::Tensor saved_a = adapter.weights().begin()->second.a.clone();
  Step(adapter, optimizer);
  CheckpointState second;
  second.step = 7;
  const int points = SweepDiskFaults(
      env,
      [&] {
        std::filesystem::remove(CheckpointPath(dir, 7));
        return SaveCheckpoint(dir, adapter, optimizer, second, &env);
      },
      [&](FaultInjectionEnv::Fault fault, const absl::Status& status) {
        if (fault == FaultInjectionEnv::kWrite) {
          EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
        }
        // The previous one stays, and no temporary file. Only a failed fsync
        // of the directory after the rename leaves the new one too (whole:
        // its checksum is checked on load).
        std::vector<std::string> names = Names(dir);
        std::sort(names.begin(), names.end());
        if (names.size() == 2) {
          EXPECT_EQ(fault, FaultInjectionEnv::kSync) << status;
          EXPECT_EQ(names[1], "checkpoint-7.pt");
        } else {
          ASSERT_EQ(names.size(), 1u) << "a temporary file was left behind";
        }
        EXPECT_EQ(names[0], "checkpoint-3.pt");
        std::filesystem::remove(CheckpointPath(dir, 7));
        AdapterSet restored = MakeAdapter(2);
        torch::optim::AdamW opt(restored.Parameters(),
                                torch::optim::AdamWOptions(1e-3));
        auto state = LoadCheckpoint(dir, restored, opt, &env);
        ASSERT_TRUE(state.ok()) << state.status();
        EXPECT_EQ(state->state.step, 3);
        EXPECT_TRUE(
            torch::equal(restored.weights().begin()->second.a, saved_a));
      });
  EXPECT_GE(points, 3) << "a write, an fsync and a rename at least";
}

TEST(TrainCheckpointTest, MissingCheckpointIsNotFound) {
  AdapterSet adapter = MakeAdapter(1);
  torch::optim::AdamW optimizer(adapter.Parameters(),
                                torch::optim::AdamWOptions(1e-3));
  auto state = LoadCheckpoint(TestDir(), adapter, optimizer);
  EXPECT_TRUE(absl::IsNotFound(state.status())) << state.status();
}

// Saves checkpoints at steps 2, 4, 6 (weights differ at each); only 4 and 6
// stay. Returns the adapter's first A matrix at each step.
std::vector<torch::Tensor> SaveThree(const std::string& dir) {
  AdapterSet adapter = MakeAdapter(1);
  torch::optim::AdamW optimizer(adapter.Parameters(),
                                torch::optim::AdamWOptions(1e-3));
  std::vector<torch::Tensor> a;
  for (int64_t step : {2, 4, 6}) {
    Step(adapter, optimizer);
    CheckpointState state;
    state.step = step;
    EXPECT_TRUE(SaveCheckpoint(dir, adapter, optimizer, state).ok());
    a.push_back(adapter.weights().begin()->second.a.clone());
  }
  return a;
}

absl::StatusOr<RestoredCheckpoint> LoadInto(const std::string& dir,
                                            torch::Tensor* a) {
  AdapterSet adapter = MakeAdapter(2);
  torch::optim::AdamW optimizer(adapter.Parameters(),
                                torch::optim::AdamWOptions(1e-3));
  auto restored = LoadCheckpoint(dir, adapter, optimizer);
  *a = adapter.weights().begin()->second.a.clone();
  return restored;
}

TEST(TrainCheckpointTest, SentEventsComeBackByteForByte) {
  const std::string dir = TestDir();
  AdapterSet adapter = MakeAdapter(1);
  torch::optim::AdamW optimizer(adapter.Parameters(),
                                torch::optim::AdamWOptions(1e-3));
  Step(adapter, optimizer);
  CheckpointState state;
  state.step = 5;
  // Every byte value, NULs included, and then some.
  for (int i = 0; i < 3 * 256; ++i) {
    state.sent_events.push_back(static_cast<char>(i % 256));
  }
  ASSERT_TRUE(SaveCheckpoint(dir, adapter, optimizer, state).ok());
  state.step = 6;
  state.sent_events.clear();
  ASSERT_TRUE(SaveCheckpoint(dir, adapter, optimizer, state).ok());

  torch::Tensor a;
  auto newest = LoadInto(dir, &a);
  ASSERT_TRUE(newest.ok()) << newest.status();
  EXPECT_EQ(newest->state.step, 6);
  EXPECT_TRUE(newest->state.sent_events.empty());
  std::filesystem::remove(CheckpointPath(dir, 6));
  auto older = LoadInto(dir, &a);
  ASSERT_TRUE(older.ok()) << older.status();
  EXPECT_EQ(older->state.step, 5);
  ASSERT_EQ(older->state.sent_events.size(), 3u * 256);
  for (size_t i = 0; i < older->state.sent_events.size(); ++i) {
    ASSERT_EQ(static_cast<unsigned char>(older->state.sent_events[i]), i % 256)
        << "byte " << i;
  }
}

TEST(TrainCheckpointTest, KeepsTheLastTwo) {
  const std::string dir = TestDir();
  std::vector<torch::Tensor> a = SaveThree(dir);
  std::vector<std::string> names = Names(dir);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names,
            (std::vector<std::string>{"checkpoint-4.pt", "checkpoint-6.pt"}));
  torch::Tensor loaded;
  auto restored = LoadInto(dir, &loaded);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(restored->state.step, 6);
  EXPECT_TRUE(torch::equal(loaded, a[2]));
}

// Damages the step-6 file with `damage`, then checks step 4 is restored and
// the skip is reported with why.
void NewestDamagedFallsBack(void (*damage)(const std::string& path),
                            const std::string& why) {
  const std::string dir = TestDir();
  std::vector<torch::Tensor> a = SaveThree(dir);
  damage(CheckpointPath(dir, 6));
  torch::Tensor loaded;
  auto restored = LoadInto(dir, &loaded);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(restored->state.step, 4);
  EXPECT_EQ(restored->path, CheckpointPath(dir, 4));
  EXPECT_TRUE(torch::equal(loaded, a[1]))
      << "the weights are not the step-4 checkpoint's";
  ASSERT_EQ(restored->skipped.size(), 1u);
  EXPECT_NE(restored->skipped[0].find("checkpoint-6.pt"), std::string::npos);
  EXPECT_NE(restored->skipped[0].find(why), std::string::npos)
      << restored->skipped[0];
}

void FlipAByteInTheMiddle(const std::string& path) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(0, std::ios::end);
  const std::streamoff size = f.tellg();
  f.seekg(size / 2);
  char c = 0;
  f.read(&c, 1);
  f.seekp(size / 2);
  c = static_cast<char>(c ^ 0x5a);
  f.write(&c, 1);
}

void TruncateToHalf(const std::string& path) {
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
}

TEST(TrainCheckpointTest, CorruptNewestFallsBackToThePrevious) {
  NewestDamagedFallsBack(FlipAByteInTheMiddle, "checksum mismatch");
}

TEST(TrainCheckpointTest, TruncatedNewestFallsBackToThePrevious) {
  NewestDamagedFallsBack(TruncateToHalf, "no checksum trailer");
}

TEST(TrainCheckpointTest, NoIntactCheckpointIsDataLoss) {
  const std::string dir = TestDir();
  SaveThree(dir);
  FlipAByteInTheMiddle(CheckpointPath(dir, 4));
  TruncateToHalf(CheckpointPath(dir, 6));
  torch::Tensor loaded;
  auto restored = LoadInto(dir, &loaded);
  EXPECT_TRUE(absl::IsDataLoss(restored.status())) << restored.status();
  EXPECT_NE(restored.status().message().find("checkpoint-4.pt"),
            std::string::npos);
  EXPECT_NE(restored.status().message().find("checkpoint-6.pt"),
            std::string::npos);
}

}  // namespace
}  // namespace lorad::worker
