#include <gtest/gtest.h>

#include "progress.h"

namespace lorad::client {
namespace {

TEST(RenderBarTest, FillsInProportion) {
  EXPECT_EQ(RenderBar(0, 100, 10), "[----------]");
  EXPECT_EQ(RenderBar(50, 100, 10), "[#####-----]");
  EXPECT_EQ(RenderBar(12, 100, 10), "[#---------]");
  EXPECT_EQ(RenderBar(100, 100, 10), "[##########]");
}

TEST(RenderBarTest, ClampsAndSurvivesUnknownTotal) {
  EXPECT_EQ(RenderBar(150, 100, 4), "[####]");
  EXPECT_EQ(RenderBar(-5, 100, 4), "[----]");
  EXPECT_EQ(RenderBar(5, 0, 4), "[----]");
  EXPECT_EQ(RenderBar(5, 10, -3), "[]");
}

TEST(StepRateEstimatorTest, EtaFromStepRate) {
  StepRateEstimator rate;
  EXPECT_FALSE(rate.EtaSeconds(100).has_value());
  rate.Add(10, 1000.0);
  EXPECT_FALSE(rate.EtaSeconds(100).has_value());
  rate.Add(20, 1005.0);  // 2 steps/s
  ASSERT_TRUE(rate.StepsPerSecond().has_value());
  EXPECT_DOUBLE_EQ(*rate.StepsPerSecond(), 2.0);
  EXPECT_DOUBLE_EQ(*rate.EtaSeconds(100), 40.0);
  EXPECT_DOUBLE_EQ(*rate.EtaSeconds(10), 0.0);
  EXPECT_FALSE(rate.EtaSeconds(0).has_value());
}

TEST(StepRateEstimatorTest, WindowFollowsRecentRate) {
  StepRateEstimator rate(/*window=*/3);
  rate.Add(1, 0);
  rate.Add(2, 10);  // slow start: 0.1 steps/s
  rate.Add(3, 11);
  rate.Add(4, 12);  // window now holds steps 2..4: 1 step/s
  EXPECT_DOUBLE_EQ(*rate.StepsPerSecond(), 1.0);
}

TEST(StepRateEstimatorTest, StepGoingBackRestarts) {
  StepRateEstimator rate;
  rate.Add(10, 0);
  rate.Add(20, 10);
  rate.Add(15, 20);  // resumed from an earlier checkpoint
  EXPECT_FALSE(rate.StepsPerSecond().has_value());
  rate.Add(17, 22);
  EXPECT_DOUBLE_EQ(*rate.StepsPerSecond(), 1.0);
}

lorad::v1::TrainStep Step() {
  lorad::v1::TrainStep step;
  step.set_step(12);
  step.set_total_steps(100);
  step.set_loss(2.3456f);
  step.set_learning_rate(1.9e-4f);
  step.set_grad_norm(0.81f);
  step.set_tokens_per_second(1234.4f);
  return step;
}

TEST(RenderTrainLineTest, FullLine) {
  EXPECT_EQ(RenderTrainLine(Step(), 83.0, int64_t{1288490189}, 10),
            "[#---------] step 12/100 loss 2.3456 lr 1.9e-04 grad 0.81 "
            "tok/s 1234 ETA 00:01:23 mem 1.2 GiB");
}

TEST(RenderTrainLineTest, PlainLineWithUnknowns) {
  lorad::v1::TrainStep step = Step();
  step.set_total_steps(0);
  EXPECT_EQ(RenderTrainLine(step, std::nullopt, 0, 0),
            "step 12 loss 2.3456 lr 1.9e-04 grad 0.81 tok/s 1234 "
            "ETA --:--:--");
}

lorad::v1::DpoMetrics Dpo() {
  lorad::v1::DpoMetrics dpo;
  dpo.set_rewards_chosen(0.1234f);
  dpo.set_rewards_rejected(-0.0456f);
  dpo.set_reward_margin(0.169f);
  dpo.set_reward_accuracy(0.75f);
  return dpo;
}

TEST(RenderTrainLineTest, DpoStepShowsRewardsMarginAndAccuracy) {
  lorad::v1::TrainStep step = Step();
  *step.mutable_dpo() = Dpo();
  EXPECT_EQ(RenderTrainLine(step, std::nullopt, 0, 0),
            "step 12/100 loss 2.3456 rewards chosen 0.123 rejected -0.046 "
            "margin 0.169 acc 0.75 lr 1.9e-04 grad 0.81 tok/s 1234 "
            "ETA --:--:--");
}

TEST(RenderEvalLineTest, PlainDpoAndBest) {
  lorad::v1::EvalResult eval;
  eval.set_step(20);
  eval.set_eval_loss(1.25f);
  EXPECT_EQ(RenderEvalLine(eval), "eval step 20: eval loss 1.2500");
  eval.set_best(true);
  EXPECT_EQ(RenderEvalLine(eval),
            "eval step 20: eval loss 1.2500 (best so far: adapter kept)");
  *eval.mutable_dpo() = Dpo();
  EXPECT_EQ(RenderEvalLine(eval),
            "eval step 20: eval loss 1.2500 rewards chosen 0.123 rejected "
            "-0.046 margin 0.169 acc 0.75 (best so far: adapter kept)");
}

TEST(DisplayedMemoryTest, PrefersDeviceThenRss) {
  lorad::v1::MemoryUsage memory;
  EXPECT_EQ(DisplayedMemoryBytes(memory), 0);
  memory.set_rss_bytes(5);
  EXPECT_EQ(DisplayedMemoryBytes(memory), 5);
  memory.set_used_bytes(7);
  EXPECT_EQ(DisplayedMemoryBytes(memory), 7);
}

TEST(FitToWidthTest, NeverReachesTheLastColumn) {
  EXPECT_EQ(FitToWidth("abcdef", 4), "abc");
  EXPECT_EQ(FitToWidth("abc", 4), "abc");
  EXPECT_EQ(FitToWidth("abcdef", 0), "abcdef");
}

}  // namespace
}  // namespace lorad::client
