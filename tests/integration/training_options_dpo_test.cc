// DPO end to end on the real daemon and worker (issue 15): a preference
// dataset ({"prompt","chosen","rejected"} lines) is stored as format
// "preference", refused for SFT, and a DPO job on it runs to SUCCEEDED
// through loractl, gRPC and the OpenAI-compatible API, with DPO's rewards,
// margin and accuracy on every step and evaluation event.
//
// Needs the worker's DPO trainer and the "preference" dataset format (the
// `dpo` branch): without them the upload or the job fails, and so does this
// test.
#include <cmath>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "training_options_util.h"

namespace lorad::testing {
namespace {

using nlohmann::json;

class DpoJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
    auto daemon =
        StartLogged(dir_.path() + "/data",
                    {absl::StrCat("--worker_binary=", WorkerBinary())},
                    dir_.path() + "/lorad.log");
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = *std::move(daemon);
    client_ = std::make_unique<Client>(daemon_->address());
    pairs_file_ = dir_.path() + "/pairs.jsonl";
    std::ofstream(pairs_file_) << PreferenceJsonl(8);
  }

  TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<Client> client_;
  std::string pairs_file_;
};

bool Near(double a, double b) {
  return std::abs(a - b) <= 1e-3 + 1e-3 * std::abs(b);
}

// DPO's numbers are finite, the margin is chosen - rejected, the accuracy a
// fraction.
void ExpectConsistent(const v1::DpoMetrics& dpo, const std::string& where) {
  for (float v :
       {dpo.rewards_chosen(), dpo.rewards_rejected(), dpo.reward_margin(),
        dpo.reward_accuracy(), dpo.logps_chosen(), dpo.logps_rejected()}) {
    EXPECT_TRUE(std::isfinite(v)) << where;
  }
  EXPECT_TRUE(
      Near(dpo.reward_margin(), dpo.rewards_chosen() - dpo.rewards_rejected()))
      << where << ": margin " << dpo.reward_margin() << ", chosen "
      << dpo.rewards_chosen() << ", rejected " << dpo.rewards_rejected();
  EXPECT_GE(dpo.reward_accuracy(), 0) << where;
  EXPECT_LE(dpo.reward_accuracy(), 1) << where;
  // Summed log-probabilities of whole completions.
  EXPECT_LT(dpo.logps_chosen(), 0) << where;
  EXPECT_LT(dpo.logps_rejected(), 0) << where;
}

TEST_F(DpoJobTest, PreferenceDatasetsAreStoredAsSuchAndRefusedForSft) {
  v1::Dataset pairs;
  grpc::Status s = Upload(*client_, "pairs.jsonl", PreferenceJsonl(8), &pairs);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(pairs.format(), "preference");
  EXPECT_EQ(pairs.num_examples(), 8);
  v1::Dataset sft;
  s = Upload(*client_, "sft.jsonl", PromptCompletionJsonl(8), &sft);
  ASSERT_TRUE(s.ok()) << Describe(s);

  v1::FineTuneJob job;
  s = CreateJob(*client_, TinyJobRequest(pairs.id(), 2, 0), &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
  EXPECT_TRUE(absl::StrContains(
      s.error_message(),
      absl::StrCat("training_file: dataset ", pairs.id(),
                   " is in format \"preference\", which needs method "
                   "\"dpo\"")))
      << s.error_message();
  v1::CreateFineTuneJobRequest request = TinyJobRequest(sft.id(), 2, 0);
  request.set_validation_file(pairs.id());
  s = CreateJob(*client_, request, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "validation_file: dataset"))
      << s.error_message();
  request = TinyJobRequest(pairs.id(), 2, 0);
  request.mutable_hyperparameters()->set_method("dpo");
  request.set_validation_file(sft.id());
  s = CreateJob(*client_, request, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
  EXPECT_TRUE(absl::StrContains(
      s.error_message(), absl::StrCat("validation_file: dataset ", sft.id(),
                                      " is in format \"prompt_completion\"")))
      << s.error_message();
}

TEST_F(DpoJobTest, LoractlRunsADpoJobToTheEndWithRewardsOnEveryStep) {
  constexpr int kSteps = 8;
  Ran run = RunLoractl(
      dir_.path(), daemon_->address(),
      absl::StrCat("finetune ", pairs_file_,
                   " --method dpo --dpo-beta 0.2 --rank 8 --lr 1e-2 "
                   "--dropout 0 --batch-size 4 --max-seq-len 64 --max-steps ",
                   kSteps, " --validation-split 0.25 --eval-every 4 --seed 7"));
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  // The watch lines: DPO's numbers on steps and evaluations.
  EXPECT_TRUE(absl::StrContains(run.out, "(preference, 8 examples)"))
      << run.out;
  EXPECT_TRUE(absl::StrContains(
      run.out, absl::StrCat("step ", kSteps, "/", kSteps, " loss ")))
      << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, " rewards chosen ")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, " margin ")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, " acc ")) << run.out;
  size_t eval = run.out.find("eval step ");
  ASSERT_NE(eval, std::string::npos) << run.out;
  EXPECT_NE(run.out.find(" rewards chosen ", eval), std::string::npos)
      << run.out;

  v1::ListFineTuneJobsRequest list_request;
  v1::ListFineTuneJobsResponse list;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(
        client_->fine_tuning->ListJobs(&context, list_request, &list).ok());
  }
  ASSERT_EQ(list.jobs_size(), 1);
  v1::FineTuneJob job;
  ASSERT_TRUE(GetJob(*client_, list.jobs(0).id(), &job).ok());
  ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.error().message();
  EXPECT_EQ(job.hyperparameters().method(), "dpo");
  EXPECT_FLOAT_EQ(job.hyperparameters().dpo_beta(), 0.2f);
  EXPECT_EQ(job.hyperparameters().dpo_loss_type(), "sigmoid");
  EXPECT_EQ(job.step(), kSteps);

  std::vector<v1::JobEvent> events;
  grpc::Status s = Watch(*client_, job.id(), 0, &events);
  ASSERT_TRUE(s.ok()) << Describe(s);
  const std::vector<v1::TrainStep> steps = Steps(events);
  ASSERT_EQ(steps.size(), static_cast<size_t>(kSteps));
  for (const v1::TrainStep& step : steps) {
    ASSERT_TRUE(step.has_dpo()) << "step " << step.step();
    ExpectConsistent(step.dpo(), absl::StrCat("step ", step.step()));
  }
  // The first step's policy is the reference (LoRA's B starts at zero):
  // rewards 0 and the sigmoid loss -log(sigmoid(0)) = ln 2.
  EXPECT_NEAR(steps[0].dpo().rewards_chosen(), 0, 1e-3);
  EXPECT_NEAR(steps[0].dpo().rewards_rejected(), 0, 1e-3);
  EXPECT_NEAR(steps[0].loss(), std::log(2.0), 1e-3);
  // Training prefers the chosen completions.
  EXPECT_GT(steps.back().dpo().reward_margin(), steps[0].dpo().reward_margin());
  EXPECT_LT(steps.back().loss(), steps[0].loss());
  int evals = 0;
  for (const v1::JobEvent& e : events) {
    if (!e.has_eval()) continue;
    ++evals;
    ASSERT_TRUE(e.eval().has_dpo()) << "eval at step " << e.eval().step();
    ExpectConsistent(e.eval().dpo(),
                     absl::StrCat("eval at step ", e.eval().step()));
  }
  EXPECT_GE(evals, 2);

  Ran get = RunLoractl(dir_.path(), daemon_->address(), "get " + job.id());
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(Row(get.out, "method"), "dpo (beta 0.2, loss sigmoid)") << get.out;
  Ran jobs = RunLoractl(dir_.path(), daemon_->address(), "jobs");
  ASSERT_EQ(jobs.exit_code, 0) << jobs.err;
  EXPECT_TRUE(absl::StrContains(jobs.out, "dpo beta 0.2 sigmoid")) << jobs.out;

  // The OpenAI-compatible API shows the same job in its shape.
  const std::string http = daemon_->http_address();
  HttpReply got =
      Http(dir_.path(), http, "GET", "/fine_tuning/jobs/" + job.id());
  ASSERT_EQ(got.status, 200) << got.raw;
  EXPECT_EQ(got.body["method"]["type"], "dpo") << got.raw;
  EXPECT_NEAR(
      got.body["method"]["dpo"]["hyperparameters"]["beta"].get<double>(), 0.2,
      1e-6)
      << got.raw;
  EXPECT_EQ(got.body["dpo_loss_type"], "sigmoid") << got.raw;
  HttpReply listed =
      Http(dir_.path(), http, "GET",
           "/fine_tuning/jobs/" + job.id() + "/events?limit=100");
  ASSERT_EQ(listed.status, 200) << listed.raw;
  int with_rewards = 0;
  for (const json& e : listed.body["data"]) {
    if (e["data"].contains("reward_margin")) ++with_rewards;
  }
  EXPECT_EQ(with_rewards, kSteps + evals) << listed.raw;
}

TEST_F(DpoJobTest, OpenAiDpoMethodWithIpoRunsToTheEnd) {
  v1::Dataset pairs;
  grpc::Status s = Upload(*client_, "pairs.jsonl", PreferenceJsonl(8), &pairs);
  ASSERT_TRUE(s.ok()) << Describe(s);
  const std::string http = daemon_->http_address();
  json body = {{"model", "tiny"},
               {"training_file", pairs.id()},
               {"suffix", "oa-dpo"},
               {"method",
                {{"type", "dpo"},
                 {"dpo",
                  {{"hyperparameters",
                    {{"beta", 0.5},
                     {"batch_size", 4},
                     {"max_steps", 3},
                     {"max_seq_len", 64},
                     {"dpo_loss_type", "ipo"}}}}}}}};
  HttpReply created =
      Http(dir_.path(), http, "POST", "/fine_tuning/jobs", body);
  ASSERT_EQ(created.status, 200) << created.raw;
  EXPECT_EQ(created.body["method"]["type"], "dpo") << created.raw;
  EXPECT_EQ(created.body["method"]["dpo"]["hyperparameters"]["beta"], 0.5)
      << created.raw;
  EXPECT_EQ(created.body["method"]["dpo"]["hyperparameters"]["batch_size"], 4)
      << created.raw;
  EXPECT_EQ(created.body["dpo_loss_type"], "ipo") << created.raw;
  const std::string id = created.body["id"].get<std::string>();
  std::vector<v1::JobEvent> events;
  s = Watch(*client_, id, 0, &events);
  ASSERT_TRUE(s.ok()) << Describe(s);
  v1::FineTuneJob job;
  ASSERT_TRUE(GetJob(*client_, id, &job).ok());
  ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.error().message();
  EXPECT_EQ(job.hyperparameters().dpo_loss_type(), "ipo");
  const std::vector<v1::TrainStep> steps = Steps(events);
  ASSERT_EQ(steps.size(), 3u);
  for (const v1::TrainStep& step : steps) {
    ASSERT_TRUE(step.has_dpo());
    ExpectConsistent(step.dpo(), absl::StrCat("step ", step.step()));
  }
  // IPO's loss at the reference: (0 - 1/(2 beta))^2 = 1 for beta 0.5.
  EXPECT_NEAR(steps[0].loss(), 1.0, 1e-3);
  HttpReply got = Http(dir_.path(), http, "GET", "/fine_tuning/jobs/" + id);
  ASSERT_EQ(got.status, 200) << got.raw;
  EXPECT_EQ(got.body["status"], "succeeded") << got.raw;
  EXPECT_EQ(got.body["fine_tuned_model"], "oa-dpo") << got.raw;
}

// The `openai` SDK's own `method` argument, with API tokens: a bad beta and
// SFT on pairs refused (400 naming the field), a DPO job run to the end, its
// method read back in the SDK's types and DPO's numbers in its events.
TEST(DpoOpenAiSdkTest, SdkRunsADpoJobThroughItsMethodArgument) {
  if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
  constexpr char kToken[] = "tok-admin-0123456789";
  TempDir dir;
  WriteTokensFile(dir.path() + "/tokens", {{kToken, "alice admin"}});
  auto daemon =
      StartLogged(dir.path() + "/data",
                  {absl::StrCat("--worker_binary=", WorkerBinary()),
                   absl::StrCat("--auth_tokens_file=", dir.path(), "/tokens")},
                  dir.path() + "/lorad.log");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::string pairs = dir.path() + "/pairs.jsonl";
  std::ofstream(pairs) << PreferenceJsonl(8);
  CommandResult r = RunCommand(absl::StrCat(
      LORAD_PYTHON, " ", LORAD_SOURCE_DIR,
      "/tests/integration/openai_dpo_client.py http://",
      (*daemon)->http_address(), "/v1 ", kToken, " ", pairs, " 2>&1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string last = r.output;
  while (!last.empty() && last.back() == '\n') last.pop_back();
  last = last.substr(
      last.rfind('\n') == std::string::npos ? 0 : last.rfind('\n') + 1);
  json out = json::parse(last, nullptr, false);
  ASSERT_TRUE(out.is_object()) << r.output;
  EXPECT_EQ(out["beta"], 0.25);
  EXPECT_TRUE(absl::StrContains(out["bad"].get<std::string>(), "beta")) << out;
  // Two steps, each with DPO's numbers.
  ASSERT_EQ(out["metrics"].size(), 2u) << out;
  for (const json& m : out["metrics"]) {
    EXPECT_TRUE(Near(m["reward_margin"].get<double>(),
                     m["rewards_chosen"].get<double>() -
                         m["rewards_rejected"].get<double>()))
        << m;
  }
}

}  // namespace
}  // namespace lorad::testing
