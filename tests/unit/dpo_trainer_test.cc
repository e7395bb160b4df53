// The training loop with method "dpo" on the built-in tiny model (NF4):
// it learns the preferences (the DPO loss falls from log 2, the margin and
// accuracy rise), for both losses; accumulation, checkpoints and resume
// (with gradient checkpointing) give the uninterrupted run's adapter; early
// stopping compares the DPO eval loss; the wrong kind of dataset is refused by
// name.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "dpo.h"
#include "gtest/gtest.h"
#include "lorad/common/files.h"
#include "lorad/model/memory_estimate.h"
#include "lorad/model/tiny_model.h"
#include "lorad/worker/trainer.h"
#include "nlohmann/json.hpp"
#include "tiny_model_util.h"

namespace lorad::worker {
namespace {

using lorad::worker::v1::TrainEvent;

std::string Pairs(bool swapped) {
  const char* rows[][3] = {{"color red ->", " apple", " stone"},
                           {"color yellow ->", " banana", " cloud"},
                           {"color green ->", " lime", " coal"},
                           {"color purple ->", " grape", " snow"},
                           {"color orange ->", " mango", " ink"},
                           {"color blue ->", " berry", " rust"},
                           {"color brown ->", " kiwi", " milk"},
                           {"color pink ->", " peach", " soot"}};
  std::string out;
  for (auto& r : rows) {
    nlohmann::json row = {{"prompt", r[0]},
                          {"chosen", swapped ? r[2] : r[1]},
                          {"rejected", swapped ? r[1] : r[2]}};
    out += row.dump() + "\n";
  }
  return out;
}

class DpoTrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = FreshTestDir("dpo_trainer_test");
    auto model = LoadTinyModel(root_);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
    ASSERT_TRUE(WriteFileAtomic(root_ + "/pairs.jsonl", Pairs(false)).ok());
  }

  TrainJob Job(const std::string& name, const std::string& loss_type) {
    TrainJob job;
    job.job_id = name;
    job.base_model_name = "tiny";
    job.training_path = root_ + "/pairs.jsonl";
    job.validation_path = root_ + "/pairs.jsonl";
    job.job_dir = root_ + "/jobs/" + name;
    job.adapter_dir = root_ + "/adapters/" + name;
    auto& hp = job.hp;
    hp.set_method("dpo");
    hp.set_dpo_loss_type(loss_type);
    hp.set_dpo_beta(0.1f);
    hp.set_rank(8);
    hp.set_alpha(16);
    hp.set_dropout(0.05f);
    for (const char* t : {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                          "up_proj", "down_proj"}) {
      hp.add_target_modules(t);
    }
    hp.set_learning_rate(1e-2f);
    hp.set_batch_size(4);
    hp.set_gradient_accumulation(1);
    hp.set_max_grad_norm(1.0f);
    hp.set_lr_scheduler("cosine");
    hp.set_max_seq_len(64);
    hp.set_seed(42);
    hp.set_max_steps(30);
    return job;
  }

  std::string root_;
  std::unique_ptr<LlamaModel> model_;
};

class DpoLearnsTest : public DpoTrainerTest,
                      public ::testing::WithParamInterface<std::string> {};

// At the first step the adapter is the identity (B = 0): the policy is the
// reference, so every reward is 0 and the loss is sigmoid's log 2 or IPO's
// (1 / 2 beta)^2. Training must take the loss well below it and the
// chosen completions above the rejected ones.
TEST_P(DpoLearnsTest, LossFallsAndChosenRewardsRise) {
  const std::string loss_type = GetParam();
  std::vector<lorad::worker::v1::TrainStep> steps;
  std::vector<lorad::worker::v1::EvalResult> evals;
  int64_t pairs = -1;
  TrainCallbacks cb;
  cb.on_event = [&](const TrainEvent& e) {
    if (e.has_started()) pairs = e.started().num_train_sequences();
    if (e.has_step()) steps.push_back(e.step());
    if (e.has_eval()) evals.push_back(e.eval());
  };
  TrainJob job = Job("learns_" + loss_type, loss_type);
  job.hp.set_eval_every(15);
  ASSERT_TRUE(RunTraining(*model_, job, cb).ok());
  EXPECT_EQ(pairs, 8);
  ASSERT_EQ(steps.size(), 30u);
  const double at_start = loss_type == "sigmoid" ? std::log(2.0) : 25.0;
  const auto& first = steps.front();
  ASSERT_TRUE(first.has_dpo());
  EXPECT_NEAR(first.loss(), at_start, 1e-4 * at_start);
  EXPECT_NEAR(first.dpo().rewards_chosen(), 0.0f, 1e-5);
  EXPECT_NEAR(first.dpo().rewards_rejected(), 0.0f, 1e-5);
  EXPECT_NEAR(first.dpo().reward_margin(), 0.0f, 1e-5);
  EXPECT_LT(first.dpo().logps_chosen(), 0.0f);

  ASSERT_EQ(evals.size(), 2u);  // at step 15 and at the end
  const auto& last = evals.back();
  ASSERT_TRUE(last.has_dpo());
  EXPECT_LT(last.eval_loss(), 0.5 * at_start);
  EXPECT_GT(last.dpo().reward_margin(), 0.0f);
  EXPECT_GT(last.dpo().rewards_chosen(), last.dpo().rewards_rejected());
  EXPECT_GE(last.dpo().reward_accuracy(), 0.75f);
  EXPECT_NEAR(last.dpo().reward_margin(),
              last.dpo().rewards_chosen() - last.dpo().rewards_rejected(),
              1e-5);
  EXPECT_TRUE(
      std::filesystem::exists(job.adapter_dir + "/adapter_model.safetensors"));
  RecordProperty("first_step_loss", std::to_string(first.loss()));
  RecordProperty("last_step_loss", std::to_string(steps.back().loss()));
  RecordProperty("final_eval_loss", std::to_string(last.eval_loss()));
  RecordProperty("final_margin", std::to_string(last.dpo().reward_margin()));
  RecordProperty("final_accuracy",
                 std::to_string(last.dpo().reward_accuracy()));
}

INSTANTIATE_TEST_SUITE_P(LossTypes, DpoLearnsTest,
                         ::testing::Values("sigmoid", "ipo"));

TEST_F(DpoTrainerTest, ResumedRunEndsWhereAnUninterruptedOneDoes) {
  TrainJob whole = Job("whole", "sigmoid");
  whole.hp.set_batch_size(2);
  whole.hp.set_gradient_accumulation(2);
  whole.hp.set_max_steps(8);
  whole.hp.set_checkpoint_every(4);
  whole.hp.set_gradient_checkpointing(true);
  ASSERT_TRUE(RunTraining(*model_, whole, {}).ok());

  TrainJob broken = Job("broken", "sigmoid");
  broken.hp = whole.hp;
  int steps_seen = 0;
  TrainCallbacks stop_at_6;
  stop_at_6.on_event = [&](const TrainEvent& e) {
    if (e.has_step()) steps_seen = e.step().step();
  };
  stop_at_6.cancelled = [&] { return steps_seen >= 6; };
  EXPECT_EQ(RunTraining(*model_, broken, stop_at_6).code(),
            absl::StatusCode::kCancelled);
  int resumed_from = -1;
  TrainCallbacks resume;
  resume.on_event = [&](const TrainEvent& e) {
    if (e.has_started()) resumed_from = e.started().resumed_from_step();
  };
  ASSERT_TRUE(RunTraining(*model_, broken, resume).ok());
  EXPECT_EQ(resumed_from, 6);
  auto a = ReadFile(whole.adapter_dir + "/adapter_model.safetensors");
  auto b = ReadFile(broken.adapter_dir + "/adapter_model.safetensors");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(*a == *b) << "resumed adapter differs from the uninterrupted one";
}

// Validated on the pairs swapped, the DPO eval loss rises as training
// learns the training pairs: early stopping keeps the first evaluation's
// adapter and stops after `patience` worse ones.
TEST_F(DpoTrainerTest, EarlyStoppingComparesTheDpoEvalLoss) {
  ASSERT_TRUE(WriteFileAtomic(root_ + "/swapped.jsonl", Pairs(true)).ok());
  TrainJob job = Job("early", "sigmoid");
  job.validation_path = root_ + "/swapped.jsonl";
  job.hp.set_eval_every(3);
  job.hp.set_early_stopping_patience(2);
  std::vector<lorad::worker::v1::EvalResult> evals;
  lorad::worker::v1::TrainFinished finished;
  TrainCallbacks cb;
  cb.on_event = [&](const TrainEvent& e) {
    if (e.has_eval()) evals.push_back(e.eval());
    if (e.has_finished()) finished = e.finished();
  };
  ASSERT_TRUE(RunTraining(*model_, job, cb).ok());
  ASSERT_EQ(evals.size(), 3u);
  EXPECT_TRUE(evals[0].best());
  EXPECT_LT(evals[0].eval_loss(), evals[1].eval_loss());
  EXPECT_LT(evals[1].eval_loss(), evals[2].eval_loss());
  EXPECT_LT(evals[2].dpo().reward_margin(), 0.0f);
  EXPECT_TRUE(finished.stopped_early());
  EXPECT_EQ(finished.best_step(), 3);
  EXPECT_EQ(finished.best_eval_loss(), evals[0].eval_loss());
}

// The policy's and the reference's log-probabilities made a few rows at a
// time (a large vocabulary's path, forced here by a chunk of 3 rows): at the
// first step the policy is still the reference, so every reward is exactly
// 0 as on the whole logits, and each step's loss, rewards and the
// evaluation match the whole logits' run.
TEST_F(DpoTrainerTest, ChunkedHeadLossGivesTheWholeLogitsSteps) {
  struct Run {
    std::vector<lorad::worker::v1::TrainStep> steps;
    std::vector<lorad::worker::v1::EvalResult> evals;
  };
  auto train = [&](const std::string& name, int64_t chunk_bytes) {
    ScopedLogitsChunkBytes chunking(chunk_bytes);
    Run run;
    TrainCallbacks cb;
    cb.on_event = [&](const TrainEvent& e) {
      if (e.has_step()) run.steps.push_back(e.step());
      if (e.has_eval()) run.evals.push_back(e.eval());
    };
    TrainJob job = Job(name, "sigmoid");
    job.hp.set_max_steps(12);
    job.hp.set_eval_every(12);
    EXPECT_TRUE(RunTraining(*model_, job, cb).ok());
    return run;
  };
  const Run whole = train("whole", 0);
  const Run chunked = train("chunked", 3 * model_->config().vocab_size * 4);
  ASSERT_EQ(whole.steps.size(), 12u);
  ASSERT_EQ(chunked.steps.size(), 12u);
  EXPECT_EQ(chunked.steps[0].dpo().rewards_chosen(), 0.0f);
  EXPECT_EQ(chunked.steps[0].dpo().rewards_rejected(), 0.0f);
  for (size_t i = 0; i < whole.steps.size(); ++i) {
    SCOPED_TRACE(i + 1);
    const auto& w = whole.steps[i];
    const auto& c = chunked.steps[i];
    EXPECT_NEAR(c.loss(), w.loss(), 1e-3 * w.loss());
    EXPECT_NEAR(c.dpo().logps_chosen(), w.dpo().logps_chosen(),
                1e-3 * std::abs(w.dpo().logps_chosen()));
    EXPECT_NEAR(c.dpo().reward_margin(), w.dpo().reward_margin(),
                1e-3 + 1e-2 * std::abs(w.dpo().reward_margin()));
  }
  EXPECT_GT(whole.steps.back().dpo().reward_margin(), 0.0f);
  ASSERT_EQ(whole.evals.size(), 1u);
  ASSERT_EQ(chunked.evals.size(), 1u);
  EXPECT_NEAR(chunked.evals[0].eval_loss(), whole.evals[0].eval_loss(),
              1e-3 * whole.evals[0].eval_loss());
}

TEST_F(DpoTrainerTest, WrongDatasetKindIsRefusedByName) {
  TrainJob sft = Job("sft_on_pairs", "sigmoid");
  sft.hp.set_method("sft");
  absl::Status st = RunTraining(*model_, sft, {});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("method \"dpo\""), absl::string_view::npos) << st;

  ASSERT_TRUE(WriteFileAtomic(root_ + "/pc.jsonl",
                              "{\"prompt\": \"a\", \"completion\": \"b\"}\n")
                  .ok());
  TrainJob dpo = Job("dpo_on_completions", "sigmoid");
  dpo.training_path = root_ + "/pc.jsonl";
  st = RunTraining(*model_, dpo, {});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("preference pairs"), absl::string_view::npos)
      << st;

  TrainJob bad_loss = Job("bad_loss", "hinge");
  st = RunTraining(*model_, bad_loss, {});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("dpo_loss_type \"hinge\""),
            absl::string_view::npos)
      << st;
}

// The formulas on numbers worked by hand.
TEST(DpoLossTest, SigmoidAndIpoByHand) {
  // Chosen: policy -1 vs reference -2; rejected: -3 vs -2.
  const torch::Tensor policy = torch::tensor({-1.0f, -3.0f});
  const torch::Tensor reference = torch::tensor({-2.0f, -2.0f});
  const torch::Tensor tokens = torch::tensor({2, 4});
  DpoTerms s = DpoLoss(policy, reference, tokens, 0.1, DpoLossType::kSigmoid);
  EXPECT_NEAR(s.loss.item<double>(), -std::log(1 / (1 + std::exp(-0.2))), 1e-6);
  EXPECT_NEAR(s.chosen_rewards.item<double>(), 0.1, 1e-6);
  EXPECT_NEAR(s.rejected_rewards.item<double>(), -0.1, 1e-6);
  EXPECT_NEAR(s.chosen_logps.item<double>(), -1.0, 1e-6);
  // IPO normalises by the completions' lengths: 1/2 - (-1/4) = 0.75.
  DpoTerms i = DpoLoss(policy, reference, tokens, 0.1, DpoLossType::kIpo);
  EXPECT_NEAR(i.loss.item<double>(), (0.75 - 5.0) * (0.75 - 5.0), 1e-4);
  DpoTotals totals;
  totals.Add(s);
  lorad::worker::v1::DpoMetrics m;
  totals.Fill(&m);
  EXPECT_NEAR(m.reward_margin(), 0.2, 1e-6);
  EXPECT_EQ(m.reward_accuracy(), 1.0f);
  EXPECT_FALSE(ParseDpoLossType("hinge").ok());
}

// Uniform logits over 4 ids: each counted token (not the first, which
// nothing predicts) adds log(1/4).
TEST(DpoLossTest, SequenceLogProbsSumTheLabelledTokens) {
  const torch::Tensor logits = torch::zeros({2, 3, 4});
  const torch::Tensor labels =
      torch::tensor({-100, 2, 3, 1, -100, 0}, torch::kLong).view({2, 3});
  const torch::Tensor got = SequenceLogProbs(logits, labels);
  EXPECT_NEAR(got[0].item<double>(), 2 * std::log(0.25), 1e-6);
  EXPECT_NEAR(got[1].item<double>(), std::log(0.25), 1e-6);
}

// A pair is two sequences in one forward: the estimate's activations are
// those of twice the batch.
TEST(DpoMemoryEstimateTest, PairsCountTwoSequences) {
  const model::ModelConfig config = model::TinyModelConfig();
  model::TrainingShape dpo;
  dpo.batch_size = 4;
  dpo.seq_len = 128;
  dpo.preference = true;
  model::TrainingShape doubled = dpo;
  doubled.preference = false;
  doubled.batch_size = 8;
  model::TrainingShape single = doubled;
  single.batch_size = 4;
  const auto a = model::EstimateTrainingMemory(config, dpo);
  const auto b = model::EstimateTrainingMemory(config, doubled);
  const auto c = model::EstimateTrainingMemory(config, single);
  EXPECT_EQ(a.activations, b.activations);
  EXPECT_EQ(a.total, b.total);
  EXPECT_GT(a.activations, c.activations);
}

}  // namespace
}  // namespace lorad::worker
