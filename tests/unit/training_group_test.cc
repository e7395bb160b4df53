// Jobs fused on one base (training_group.h): each job's adapter after a
// fused run equals the adapter it gets training alone, LoRA dropout on (each
// job draws its masks from its own generator, padded or not, recomputed or
// not), for SFT jobs of different sequence lengths, an SFT job beside a DPO
// job and a job with gradient checkpointing; passes really were fused, and
// cut where they would exceed the bound on a fused pass's size; four jobs
// run in two lanes side by side; a job that leaves early does not hold the
// others.
#include "lorad/worker/training_group.h"

#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "lorad/common/files.h"
#include "lorad/worker/lora.h"
#include "lorad/worker/trainer.h"
#include "tiny_model_util.h"

namespace lorad::worker {
namespace {

class TrainingGroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = FreshTestDir("training_group_test");
    auto model = LoadTinyModel(root_);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
    // Short and long examples, so the jobs' batches differ in length.
    std::string short_data, long_data, pairs;
    const char* words[] = {"red",    "yellow", "green", "purple",
                           "orange", "blue",   "brown", "pink"};
    for (const char* w : words) {
      short_data += std::string("{\"prompt\": \"") + w +
                    "\", \"completion\": \" yes\"}\n";
      long_data += std::string("{\"prompt\": \"the colour of the thing is ") +
                   w + " and so\", \"completion\": \" it is " + w +
                   ", as it was " + w + " before\"}\n";
      pairs += std::string("{\"prompt\": \"is it ") + w +
               "?\", \"chosen\": \" yes it is " + w +
               "\", \"rejected\": \" no\"}\n";
    }
    ASSERT_TRUE(WriteFileAtomic(root_ + "/short.jsonl", short_data).ok());
    ASSERT_TRUE(WriteFileAtomic(root_ + "/long.jsonl", long_data).ok());
    ASSERT_TRUE(WriteFileAtomic(root_ + "/pairs.jsonl", pairs).ok());
  }

  TrainJob Job(const std::string& name, const std::string& data) {
    TrainJob job;
    job.job_id = name;
    job.base_model_name = "tiny";
    job.training_path = root_ + "/" + data;
    job.job_dir = root_ + "/jobs/" + name;
    job.adapter_dir = root_ + "/adapters/" + name;
    auto& hp = job.hp;
    hp.set_rank(4);
    hp.set_alpha(8);
    hp.set_dropout(0.1f);  // the job's own masks, fused or alone
    for (const char* t : {"q_proj", "v_proj", "down_proj"}) {
      hp.add_target_modules(t);
    }
    hp.set_learning_rate(1e-2f);
    hp.set_batch_size(4);
    hp.set_gradient_accumulation(2);
    hp.set_max_grad_norm(1.0f);
    hp.set_lr_scheduler("linear");
    hp.set_max_seq_len(64);
    hp.set_seed(7);
    hp.set_max_steps(4);
    return job;
  }

  // Runs `jobs` at once in one group (each on its own thread) and returns
  // each one's status.
  std::vector<absl::Status> RunTogether(std::vector<TrainJob> jobs,
                                        TrainingGroup* group,
                                        std::vector<std::string>* logs) {
    std::vector<absl::Status> status(jobs.size());
    std::vector<std::thread> threads;
    std::mutex log_mu;
    group->ExpectJoins(static_cast<int>(jobs.size()));
    for (size_t i = 0; i < jobs.size(); ++i) {
      threads.emplace_back([&, i] {
        TrainCallbacks cb;
        cb.group = group;
        cb.on_event = [&](const lorad::worker::v1::TrainEvent& e) {
          if (!e.log().empty()) {
            std::lock_guard<std::mutex> lock(log_mu);
            logs->push_back(jobs[i].job_id + ": " + e.log());
          }
        };
        status[i] = RunTraining(*model_, jobs[i], cb);
      });
    }
    for (std::thread& t : threads) t.join();
    return status;
  }

  TrainJob Renamed(TrainJob job, const std::string& name) {
    job.job_id = name;
    job.job_dir = root_ + "/jobs/" + name;
    job.adapter_dir = root_ + "/adapters/" + name;
    return job;
  }

  // The adapter a job wrote equals the one the same job wrote alone.
  void ExpectSameAdapter(const std::string& fused, const std::string& alone) {
    auto a = AdapterSet::LoadPeft(root_ + "/adapters/" + fused,
                                  model_->config(), torch::kCPU);
    auto b = AdapterSet::LoadPeft(root_ + "/adapters/" + alone,
                                  model_->config(), torch::kCPU);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    ASSERT_EQ(a->weights().size(), b->weights().size());
    bool trained = false;
    for (const auto& [key, w] : a->weights()) {
      const LoraWeights* other = b->Find(key);
      ASSERT_NE(other, nullptr) << key;
      EXPECT_TRUE(torch::allclose(w.a, other->a, 1e-4, 1e-5)) << key;
      EXPECT_TRUE(torch::allclose(w.b, other->b, 1e-4, 1e-5))
          << key << " max diff " << (w.b - other->b).abs().max().item<float>();
      trained = trained || w.b.abs().max().item<float>() > 0;
    }
    EXPECT_TRUE(trained) << "B is still zero: nothing was trained";
  }

  // Trains each of `jobs` again alone; its adapter equals the fused one.
  void ExpectEachEqualsItsSoloRun(const std::vector<TrainJob>& jobs) {
    TrainCallbacks alone;
    for (const TrainJob& job : jobs) {
      const std::string solo = job.job_id + "_alone";
      ASSERT_TRUE(RunTraining(*model_, Renamed(job, solo), alone).ok());
      ExpectSameAdapter(job.job_id, solo);
    }
  }

  std::string root_;
  std::unique_ptr<LlamaModel> model_;
};

TEST_F(TrainingGroupTest, FusedSftJobsOfDifferentLengthsEqualTheirSoloRuns) {
  TrainJob a = Job("a", "short.jsonl");
  TrainJob b = Job("b", "long.jsonl");
  b.hp.set_seed(11);
  b.hp.set_learning_rate(5e-3f);
  b.hp.set_rank(8);
  TrainingGroup group(model_.get(), nullptr);
  std::vector<std::string> logs;
  for (const absl::Status& s : RunTogether({a, b}, &group, &logs)) {
    ASSERT_TRUE(s.ok()) << s;
  }
  // 4 steps x 2 micro-batches, every one fused.
  EXPECT_EQ(group.passes(), 8);
  EXPECT_EQ(group.fused_passes(), 8);
  bool said = false;
  for (const std::string& l : logs) {
    said = said || l == "a: micro-batches fused with job b on the same base "
                        "(one forward and backward for 2 jobs)";
  }
  EXPECT_TRUE(said) << "no log said that job a was fused with job b";

  TrainCallbacks alone;
  ASSERT_TRUE(RunTraining(*model_, Renamed(a, "a_alone"), alone).ok());
  ASSERT_TRUE(RunTraining(*model_, Renamed(b, "b_alone"), alone).ok());
  ExpectSameAdapter("a", "a_alone");
  ExpectSameAdapter("b", "b_alone");
}

TEST_F(TrainingGroupTest, SftBesideDpoAndCheckpointingEqualTheirSoloRuns) {
  TrainJob sft = Job("sft", "short.jsonl");
  sft.hp.set_gradient_checkpointing(true);
  TrainJob dpo = Job("dpo", "pairs.jsonl");
  dpo.hp.set_method("dpo");
  dpo.hp.set_dpo_beta(0.1f);
  dpo.hp.set_dpo_loss_type("sigmoid");
  dpo.hp.set_seed(3);
  TrainingGroup group(model_.get(), nullptr);
  std::vector<std::string> logs;
  for (const absl::Status& s : RunTogether({sft, dpo}, &group, &logs)) {
    ASSERT_TRUE(s.ok()) << s;
  }
  EXPECT_EQ(group.fused_passes(), 8);
  TrainCallbacks alone;
  ASSERT_TRUE(RunTraining(*model_, Renamed(sft, "sft_alone"), alone).ok());
  ASSERT_TRUE(RunTraining(*model_, Renamed(dpo, "dpo_alone"), alone).ok());
  ExpectSameAdapter("sft", "sft_alone");
  ExpectSameAdapter("dpo", "dpo_alone");
}

// A bound on a fused pass's widest activation cuts the micro-batches
// handed in into passes, in the order of the jobs' ids: room for two jobs'
// rows of 64 positions (every long example fills 64), not three.
TEST_F(TrainingGroupTest, PassesStayWithinTheFusedBound) {
  const model::ModelConfig& c = model_->config();
  const int64_t widest_bytes =
      std::max(c.hidden_size, c.intermediate_size) *
      static_cast<int64_t>(c10::elementSize(model_->dtype()));
  const int64_t two_jobs = 2 * 4 * 64 * widest_bytes;
  std::vector<TrainJob> jobs;
  for (const char* name : {"c1", "c2", "c3"}) {
    jobs.push_back(Job(name, "long.jsonl"));
    jobs.back().hp.set_seed(static_cast<uint64_t>(name[1]));
  }
  TrainingGroup group(model_.get(), nullptr, two_jobs);
  std::vector<std::string> logs;
  for (const absl::Status& s : RunTogether(jobs, &group, &logs)) {
    ASSERT_TRUE(s.ok()) << s;
  }
  // 8 rounds of micro-batches, each c1 and c2 fused, then c3 alone.
  EXPECT_EQ(group.passes(), 16);
  EXPECT_EQ(group.fused_passes(), 8);
  int c1_logs = 0, c3_logs = 0;
  for (const std::string& l : logs) {
    if (l.rfind("c1: micro-batches", 0) == 0) {
      ++c1_logs;
      EXPECT_EQ(l,
                "c1: micro-batches fused with job c2 on the same base (one "
                "forward and backward for 2 jobs)");
    }
    if (l.rfind("c3: micro-batches", 0) == 0) ++c3_logs;
  }
  EXPECT_EQ(c1_logs, 1);
  EXPECT_EQ(c3_logs, 0) << "c3 ran alone throughout";
  ExpectEachEqualsItsSoloRun(jobs);
}

// Four jobs in two lanes: two fused passes side by side each round (jobs
// dealt in the order of their ids: l1 with l3, l2 with l4), each job's
// adapter still the one it trains alone.
TEST_F(TrainingGroupTest, FourJobsInTwoLanesEqualTheirSoloRuns) {
  std::vector<TrainJob> jobs;
  for (const char* name : {"l1", "l2", "l3", "l4"}) {
    jobs.push_back(Job(name, name[1] % 2 == 0 ? "long.jsonl" : "short.jsonl"));
    jobs.back().hp.set_seed(static_cast<uint64_t>(name[1]));
  }
  TrainingGroup group(model_.get(), nullptr,
                      TrainingGroup::kDefaultMaxFusedBytes, 2);
  EXPECT_EQ(group.lanes(), 2);
  std::vector<std::string> logs;
  for (const absl::Status& s : RunTogether(jobs, &group, &logs)) {
    ASSERT_TRUE(s.ok()) << s;
  }
  // 8 rounds of micro-batches, each two passes of two jobs.
  EXPECT_EQ(group.widest_round(), 2);
  EXPECT_EQ(group.passes(), 16);
  EXPECT_EQ(group.fused_passes(), 16);
  bool l1_with_l3 = false, l2_with_l4 = false;
  for (const std::string& l : logs) {
    l1_with_l3 = l1_with_l3 || l == "l1: micro-batches fused with job l3 on "
                                    "the same base (one forward and "
                                    "backward for 2 jobs)";
    l2_with_l4 = l2_with_l4 || l == "l2: micro-batches fused with job l4 on "
                                    "the same base (one forward and "
                                    "backward for 2 jobs)";
  }
  EXPECT_TRUE(l1_with_l3) << "no log said that l1 was fused with l3";
  EXPECT_TRUE(l2_with_l4) << "no log said that l2 was fused with l4";
  ExpectEachEqualsItsSoloRun(jobs);
}

// Three jobs make one lane: a lane fuses at least two.
TEST_F(TrainingGroupTest, ThreeJobsMakeOneLane) {
  std::vector<TrainJob> jobs;
  for (const char* name : {"t1", "t2", "t3"}) {
    jobs.push_back(Job(name, "short.jsonl"));
    jobs.back().hp.set_max_steps(1);
  }
  TrainingGroup group(model_.get(), nullptr,
                      TrainingGroup::kDefaultMaxFusedBytes, 2);
  std::vector<std::string> logs;
  for (const absl::Status& s : RunTogether(jobs, &group, &logs)) {
    ASSERT_TRUE(s.ok()) << s;
  }
  EXPECT_EQ(group.widest_round(), 1);
  EXPECT_EQ(group.passes(), 2);
  EXPECT_EQ(group.fused_passes(), 2);
}

TEST_F(TrainingGroupTest, AJobThatLeavesEarlyDoesNotHoldTheOthers) {
  TrainJob stays = Job("stays", "short.jsonl");
  stays.hp.set_max_steps(6);
  TrainJob leaves = Job("leaves", "long.jsonl");
  leaves.hp.set_max_steps(100);
  TrainingGroup group(model_.get(), nullptr);
  group.ExpectJoins(2);
  absl::Status stays_status, leaves_status;
  std::atomic<int> polls{0};
  std::thread t1([&] {
    TrainCallbacks cb;
    cb.group = &group;
    stays_status = RunTraining(*model_, stays, cb);
  });
  std::thread t2([&] {
    TrainCallbacks cb;
    cb.group = &group;
    // Cancelled at its fourth micro-batch.
    cb.cancelled = [&] { return ++polls > 3; };
    leaves_status = RunTraining(*model_, leaves, cb);
  });
  t1.join();
  t2.join();
  EXPECT_TRUE(absl::IsCancelled(leaves_status)) << leaves_status;
  ASSERT_TRUE(stays_status.ok()) << stays_status;
  // Three passes fused, then "stays" went on alone for its other nine.
  EXPECT_EQ(group.fused_passes(), 3);
  EXPECT_EQ(group.passes(), 12);
}

}  // namespace
}  // namespace lorad::worker
