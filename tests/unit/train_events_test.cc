// The worker's training events as public job events: DPO's numbers on steps
// and evaluations, and the paged optimizer's bytes in the memory estimate,
// reach clients unchanged.
#include "jobs/train_events.h"

#include <vector>

#include "gtest/gtest.h"

namespace lorad::server {
namespace {

void FillDpo(float base, worker::v1::DpoMetrics& dpo) {
  dpo.set_rewards_chosen(base + 0.5f);
  dpo.set_rewards_rejected(base - 0.25f);
  dpo.set_reward_margin(0.75f);
  dpo.set_reward_accuracy(0.625f);
  dpo.set_logps_chosen(-12.5f);
  dpo.set_logps_rejected(-20.25f);
}

void ExpectDpo(float base, const v1::DpoMetrics& dpo) {
  EXPECT_FLOAT_EQ(dpo.rewards_chosen(), base + 0.5f);
  EXPECT_FLOAT_EQ(dpo.rewards_rejected(), base - 0.25f);
  EXPECT_FLOAT_EQ(dpo.reward_margin(), 0.75f);
  EXPECT_FLOAT_EQ(dpo.reward_accuracy(), 0.625f);
  EXPECT_FLOAT_EQ(dpo.logps_chosen(), -12.5f);
  EXPECT_FLOAT_EQ(dpo.logps_rejected(), -20.25f);
}

TEST(TrainEventsTest, DpoStepAndEvalCarryTheirRewards) {
  v1::FineTuneJob job;
  std::vector<v1::JobEvent> events;
  worker::v1::TrainEvent step;
  step.mutable_step()->set_step(3);
  step.mutable_step()->set_loss(0.5f);
  FillDpo(1, *step.mutable_step()->mutable_dpo());
  EXPECT_FALSE(ApplyTrainEvent(step, job, events));
  worker::v1::TrainEvent eval;
  eval.mutable_eval()->set_step(3);
  eval.mutable_eval()->set_eval_loss(0.625f);
  FillDpo(2, *eval.mutable_eval()->mutable_dpo());
  EXPECT_FALSE(ApplyTrainEvent(eval, job, events));

  ASSERT_EQ(events.size(), 2u);
  ASSERT_TRUE(events[0].has_step());
  ASSERT_TRUE(events[0].step().has_dpo());
  ExpectDpo(1, events[0].step().dpo());
  ASSERT_TRUE(events[1].has_eval());
  ASSERT_TRUE(events[1].eval().has_dpo());
  ExpectDpo(2, events[1].eval().dpo());
  EXPECT_EQ(job.step(), 3);
  EXPECT_FLOAT_EQ(job.last_loss(), 0.5f);
  EXPECT_FLOAT_EQ(job.last_eval_loss(), 0.625f);
}

TEST(TrainEventsTest, SftStepsHaveNoDpoMessage) {
  v1::FineTuneJob job;
  std::vector<v1::JobEvent> events;
  worker::v1::TrainEvent step;
  step.mutable_step()->set_step(1);
  worker::v1::TrainEvent eval;
  eval.mutable_eval()->set_step(1);
  ApplyTrainEvent(step, job, events);
  ApplyTrainEvent(eval, job, events);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_FALSE(events[0].step().has_dpo());
  EXPECT_FALSE(events[1].eval().has_dpo());
}

TEST(TrainEventsTest, PageableOptimizerBytesReachTheJobsEstimate) {
  v1::FineTuneJob job;
  std::vector<v1::JobEvent> events;
  worker::v1::TrainEvent started;
  worker::v1::MemoryEstimate* estimate =
      started.mutable_started()->mutable_memory_estimate();
  estimate->set_optimizer_bytes(4096);
  estimate->set_pageable_bytes(3072);
  estimate->set_total_bytes(1 << 20);
  ApplyTrainEvent(started, job, events);
  EXPECT_EQ(job.memory_estimate().optimizer_bytes(), 4096);
  EXPECT_EQ(job.memory_estimate().pageable_bytes(), 3072);
  EXPECT_EQ(job.memory_estimate().total_bytes(), 1 << 20);
}

}  // namespace
}  // namespace lorad::server
