#include "lorad/worker/trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "lorad/common/files.h"
#include "lorad/model/block_linears.h"
#include "lorad/model/memory_estimate.h"
#include "lorad/model/safetensors.h"
#include "lorad/worker/adamw8bit.h"
#include "tiny_model_util.h"

namespace lorad::worker {
namespace {

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = FreshTestDir("trainer_test");
    auto model = LoadTinyModel(root_);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
    std::string data;
    const char* pairs[][2] = {{"red", "apple"},    {"yellow", "banana"},
                              {"green", "lime"},   {"purple", "grape"},
                              {"orange", "mango"}, {"blue", "berry"},
                              {"brown", "kiwi"},   {"pink", "peach"}};
    for (auto& p : pairs) {
      data += std::string("{\"prompt\": \"color ") + p[0] +
              " ->\", \"completion\": \" " + p[1] + "\"}\n";
    }
    ASSERT_TRUE(WriteFileAtomic(root_ + "/train.jsonl", data).ok());
  }

  TrainJob Job(const std::string& name) {
    TrainJob job;
    job.job_id = name;
    job.base_model_name = "tiny";
    job.training_path = root_ + "/train.jsonl";
    job.job_dir = root_ + "/jobs/" + name;
    job.adapter_dir = root_ + "/adapters/" + name;
    auto& hp = job.hp;
    hp.set_rank(8);
    hp.set_alpha(16);
    hp.set_dropout(0.05f);
    for (const char* t : {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                          "up_proj", "down_proj"}) {
      hp.add_target_modules(t);
    }
    hp.set_learning_rate(1e-2f);
    hp.set_batch_size(8);
    hp.set_gradient_accumulation(1);
    hp.set_max_grad_norm(1.0f);
    hp.set_lr_scheduler("cosine");
    hp.set_max_seq_len(64);
    hp.set_seed(42);
    hp.set_max_steps(60);
    return job;
  }

  std::string root_;
  std::unique_ptr<LlamaModel> model_;
};

TEST_F(TrainerTest, MemorisesSmallDatasetAndWritesPeftAdapter) {
  std::vector<float> losses;
  bool started = false, finished = false;
  TrainCallbacks cb;
  cb.on_event = [&](const lorad::worker::v1::TrainEvent& e) {
    if (e.has_started()) {
      started = true;
      EXPECT_EQ(e.started().total_steps(), 60);
      EXPECT_GT(e.started().memory_estimate().total_bytes(), 0);
      EXPECT_NEAR(e.started().base_bytes_per_param(), 0.516, 0.01);
    }
    if (e.has_step()) losses.push_back(e.step().loss());
    if (e.has_finished()) finished = true;
  };
  TrainJob job = Job("memorise");
  job.hp.set_gradient_checkpointing(true);
  ASSERT_TRUE(RunTraining(*model_, job, cb).ok());
  ASSERT_TRUE(started && finished);
  ASSERT_EQ(losses.size(), 60u);
  float first = 0, last = 0;
  for (int i = 0; i < 5; ++i) {
    first += losses[i] / 5;
    last += losses[losses.size() - 1 - i] / 5;
  }
  EXPECT_LT(last, 0.5f * first) << "first " << first << " last " << last;
  auto file = model::SafetensorsFile::Open(job.adapter_dir +
                                           "/adapter_model.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  const model::TensorInfo* a = (*file)->Find(
      "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{8, 64}));
  EXPECT_TRUE(
      std::filesystem::exists(job.adapter_dir + "/adapter_config.json"));
}

TEST_F(TrainerTest, ResumedRunEndsWhereAnUninterruptedOneDoes) {
  TrainJob whole = Job("whole");
  whole.hp.set_max_steps(8);
  whole.hp.set_checkpoint_every(4);
  ASSERT_TRUE(RunTraining(*model_, whole, {}).ok());

  TrainJob broken = Job("broken");
  broken.hp = whole.hp;
  int steps_seen = 0;
  TrainCallbacks stop_at_6;
  stop_at_6.on_event = [&](const lorad::worker::v1::TrainEvent& e) {
    if (e.has_step()) steps_seen = e.step().step();
  };
  stop_at_6.cancelled = [&] { return steps_seen >= 6; };
  EXPECT_EQ(RunTraining(*model_, broken, stop_at_6).code(),
            absl::StatusCode::kCancelled);
  int resumed_from = -1;
  TrainCallbacks resume;
  resume.on_event = [&](const lorad::worker::v1::TrainEvent& e) {
    if (e.has_started()) resumed_from = e.started().resumed_from_step();
  };
  torch::manual_seed(12345);  // unrelated random state must not matter
  ASSERT_TRUE(RunTraining(*model_, broken, resume).ok());
  // Stopped between steps 6 and 7, the run saved step 6 on its way out
  // (the periodic checkpoint was at 4).
  EXPECT_EQ(resumed_from, 6);

  auto a = ReadFile(whole.adapter_dir + "/adapter_model.safetensors");
  auto b = ReadFile(broken.adapter_dir + "/adapter_model.safetensors");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(*a == *b) << "resumed adapter differs from the uninterrupted one";
}

// Events sent before an interruption may never reach the caller (a kill of
// either process). A resumed run sends again what its checkpoint holds from
// after the caller's last recorded step, as it was first sent, before
// TrainStarted; from a step the caller has, it sends nothing again.
TEST_F(TrainerTest, ResumeSendsAgainTheEventsTheCallerDidNotRecord) {
  using lorad::worker::v1::TrainEvent;
  TrainJob first = Job("resend");
  first.hp.set_max_steps(8);
  first.hp.set_checkpoint_every(4);
  std::vector<TrainEvent> sent;
  int steps_seen = 0;
  TrainCallbacks stop_at_6;
  stop_at_6.on_event = [&](const TrainEvent& e) {
    sent.push_back(e);
    if (e.has_step()) steps_seen = e.step().step();
  };
  stop_at_6.cancelled = [&] { return steps_seen >= 6; };
  ASSERT_EQ(RunTraining(*model_, first, stop_at_6).code(),
            absl::StatusCode::kCancelled);
  // The same checkpoints for a second resume, from another recorded step.
  TrainJob second = first;
  second.job_dir = root_ + "/jobs/resend-copy";
  second.adapter_dir = root_ + "/adapters/resend-copy";
  std::filesystem::copy(first.job_dir, second.job_dir);

  // What the first run sent after step 3: step 4, the checkpoint at 4,
  // steps 5 and 6.
  std::vector<std::string> expected;
  bool after_3 = false;
  for (const TrainEvent& e : sent) {
    if (after_3) expected.push_back(e.SerializeAsString());
    if (e.has_step() && e.step().step() == 3) after_3 = true;
  }
  ASSERT_EQ(expected.size(), 4u);

  auto resume = [&](TrainJob job, int64_t recorded) {
    job.recorded_step = recorded;
    std::vector<TrainEvent> events;
    TrainCallbacks cb;
    cb.on_event = [&](const TrainEvent& e) { events.push_back(e); };
    EXPECT_TRUE(RunTraining(*model_, job, cb).ok());
    return events;
  };
  std::vector<TrainEvent> events = resume(first, 3);
  auto started =
      std::find_if(events.begin(), events.end(),
                   [](const TrainEvent& e) { return e.has_started(); });
  ASSERT_NE(started, events.end());
  EXPECT_EQ(started->started().resumed_from_step(), 6);
  std::vector<std::string> again;
  for (auto it = events.begin(); it != started; ++it) {
    if (!it->has_log()) again.push_back(it->SerializeAsString());
  }
  EXPECT_EQ(again, expected) << "not the events of steps 4 to 6 as first sent";
  ASSERT_TRUE(started != events.begin() && (started - 1)->has_log());
  EXPECT_NE((started - 1)->log().find("steps 4 to 6"), std::string::npos)
      << (started - 1)->log();
  auto next = std::find_if(started, events.end(),
                           [](const TrainEvent& e) { return e.has_step(); });
  ASSERT_NE(next, events.end());
  EXPECT_EQ(next->step().step(), 7);

  events = resume(second, 6);
  for (const TrainEvent& e : events) {
    if (e.has_started()) break;
    EXPECT_FALSE(e.has_step() || e.has_checkpoint_step() || e.has_log())
        << "sent again although step 6 was recorded: " << e.ShortDebugString();
  }
}

TEST_F(TrainerTest, BadDatasetIsInvalidArgumentNamingTheLine) {
  ASSERT_TRUE(
      WriteFileAtomic(root_ + "/bad.jsonl", "{\"text\": \"ok\"}\n{oops}\n")
          .ok());
  TrainJob job = Job("bad");
  job.training_path = root_ + "/bad.jsonl";
  absl::Status st = RunTraining(*model_, job, {});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("line 2"), absl::string_view::npos) << st;
}

// Early stopping: a validation set that contradicts the training data gets
// worse as the adapter learns, so patience runs out; the adapter on disk is
// the best evaluation's, the same bytes a run stopped at that step writes.
TEST_F(TrainerTest, EarlyStoppingKeepsTheBestEvaluationsAdapter) {
  std::string contrary;
  const char* pairs[][2] = {{"red", "kiwi"},     {"yellow", "peach"},
                            {"green", "grape"},  {"purple", "apple"},
                            {"orange", "berry"}, {"blue", "lime"}};
  for (auto& p : pairs) {
    contrary += std::string("{\"prompt\": \"color ") + p[0] +
                " ->\", \"completion\": \" " + p[1] + "\"}\n";
  }
  ASSERT_TRUE(WriteFileAtomic(root_ + "/contrary.jsonl", contrary).ok());
  TrainJob job = Job("early");
  job.validation_path = root_ + "/contrary.jsonl";
  job.hp.set_lr_scheduler("constant");
  job.hp.set_dropout(0);
  job.hp.set_eval_every(1);
  job.hp.set_early_stopping_patience(3);
  job.hp.set_max_steps(60);
  std::vector<std::pair<int, float>> evals;
  int best_flagged = 0, last_step = 0;
  lorad::worker::v1::TrainFinished finished;
  TrainCallbacks cb;
  cb.on_event = [&](const lorad::worker::v1::TrainEvent& e) {
    if (e.has_eval()) {
      evals.push_back({e.eval().step(), e.eval().eval_loss()});
      if (e.eval().best()) best_flagged = e.eval().step();
    }
    if (e.has_step()) last_step = e.step().step();
    if (e.has_finished()) finished = e.finished();
  };
  ASSERT_TRUE(RunTraining(*model_, job, cb).ok());
  ASSERT_TRUE(finished.stopped_early()) << "ran " << last_step << " steps";
  ASSERT_LT(last_step, 60);
  ASSERT_GT(finished.best_step(), 0);
  EXPECT_EQ(best_flagged, finished.best_step());
  // The best is the lowest eval loss, and exactly `patience` evaluations
  // came after it, none lower.
  float lowest = evals.front().second;
  for (const auto& [step, loss] : evals) lowest = std::min(lowest, loss);
  EXPECT_EQ(finished.best_eval_loss(), lowest);
  EXPECT_EQ(evals.back().first, last_step);
  EXPECT_EQ(last_step - finished.best_step(), 3);

  TrainJob plain = Job("plain");
  plain.hp = job.hp;
  plain.hp.set_early_stopping_patience(0);
  plain.hp.set_eval_every(0);
  plain.hp.set_max_steps(finished.best_step());
  ASSERT_TRUE(RunTraining(*model_, plain, {}).ok());
  auto a = ReadFile(job.adapter_dir + "/adapter_model.safetensors");
  auto b = ReadFile(plain.adapter_dir + "/adapter_model.safetensors");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(*a == *b) << "the kept adapter is not step "
                        << finished.best_step() << "'s";
}

// adamw_8bit trains (rank 64 makes every q/k/v/o tensor 8-bit) and its
// state shows in the memory estimate.
TEST_F(TrainerTest, EightBitAdamWTrains) {
  std::vector<float> losses;
  int64_t optimizer_bytes = 0;
  TrainCallbacks cb;
  cb.on_event = [&](const lorad::worker::v1::TrainEvent& e) {
    if (e.has_step()) losses.push_back(e.step().loss());
    if (e.has_started()) {
      optimizer_bytes = e.started().memory_estimate().optimizer_bytes();
    }
  };
  TrainJob job = Job("eight");
  job.hp.set_optimizer("adamw_8bit");
  job.hp.set_rank(64);
  job.hp.clear_target_modules();
  for (const char* t : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
    job.hp.add_target_modules(t);
  }
  job.hp.set_max_steps(30);
  ASSERT_TRUE(RunTraining(*model_, job, cb).ok());
  ASSERT_EQ(losses.size(), 30u);
  EXPECT_LT(losses.back(), 0.5f * losses.front());
  // The estimate counts what the optimizer will hold, tensor by tensor.
  int64_t held = 0;
  for (const model::BlockLinear& l : model::BlockLinears(model_->config())) {
    if (l.name == "gate_proj" || l.name == "up_proj" || l.name == "down_proj") {
      continue;
    }
    held += AdamW8bit::StateBytesFor(64 * l.in) +
            AdamW8bit::StateBytesFor(l.out * 64);
  }
  EXPECT_EQ(optimizer_bytes, held * model_->config().num_hidden_layers);
  model::TrainingShape s;
  s.rank = 64;
  s.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj"};
  const int64_t full =
      model::EstimateTrainingMemory(model_->config(), s).optimizer;
  EXPECT_LT(optimizer_bytes * 2, full);
}

// A job whose head and loss run a few rows at a time (a large vocabulary's
// path, forced here by a chunk of 5 rows) trains as the same job on the
// whole logits: the same loss at each step and the same adapter, and its
// estimate counts the chunks instead of the logits.
TEST_F(TrainerTest, ChunkedHeadLossTrainsAsTheWholeLogitsDo) {
  struct Run {
    std::vector<float> losses;
    int64_t activation_bytes = 0;
    std::string chunk_log;
  };
  auto train = [&](const std::string& name, int64_t chunk_bytes) {
    ScopedLogitsChunkBytes chunking(chunk_bytes);
    Run run;
    TrainCallbacks cb;
    cb.on_event = [&](const lorad::worker::v1::TrainEvent& e) {
      if (e.has_step()) run.losses.push_back(e.step().loss());
      if (e.has_started()) {
        run.activation_bytes = e.started().memory_estimate().activation_bytes();
      }
      if (e.has_log() && absl::StrContains(e.log(), "positions at a time")) {
        run.chunk_log = e.log();
      }
    };
    TrainJob job = Job(name);
    job.hp.set_max_steps(20);
    job.hp.set_gradient_checkpointing(true);
    EXPECT_TRUE(RunTraining(*model_, job, cb).ok());
    return run;
  };
  const Run whole = train("whole", 0);
  const Run chunked = train("chunked", 5 * model_->config().vocab_size * 4);
  ASSERT_EQ(whole.losses.size(), 20u);
  ASSERT_EQ(chunked.losses.size(), 20u);
  for (size_t i = 0; i < whole.losses.size(); ++i) {
    EXPECT_NEAR(chunked.losses[i], whole.losses[i], 1e-3 * whole.losses[i])
        << "step " << i + 1;
  }
  EXPECT_LT(whole.losses.back(), 0.5f * whole.losses.front());
  EXPECT_LT(chunked.activation_bytes, whole.activation_bytes);
  EXPECT_EQ(whole.chunk_log, "");
  EXPECT_TRUE(absl::StartsWith(chunked.chunk_log,
                               "the head and its loss run 5 positions at a "
                               "time"))
      << chunked.chunk_log;
  auto read = [&](const std::string& name) {
    auto file = model::SafetensorsFile::Open(root_ + "/adapters/" + name +
                                             "/adapter_model.safetensors");
    EXPECT_TRUE(file.ok()) << file.status();
    if (!file.ok()) return std::vector<float>();
    const model::TensorInfo* b = (*file)->Find(
        "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
    EXPECT_NE(b, nullptr);
    if (b == nullptr) return std::vector<float>();
    return *model::ToFloat32(*b);
  };
  const std::vector<float> a = read("whole"), b = read("chunked");
  ASSERT_EQ(a.size(), b.size());
  float largest = 0, differs = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    largest = std::max(largest, std::abs(a[i]));
    differs = std::max(differs, std::abs(a[i] - b[i]));
  }
  EXPECT_GT(largest, 0.0f);
  EXPECT_LT(differs, 1e-3f * largest);
}

}  // namespace
}  // namespace lorad::worker
