// Issue 15's job options refused when bad, on the real daemon and worker:
// every bad method / DPO / quantization / optimizer value through gRPC
// (INVALID_ARGUMENT naming the field), through loractl (its own flag checks
// and the server's refusal), and through the OpenAI-compatible API (400
// naming the field); no job is created, and the daemon and worker then run
// a job with the new options' defaults spelled out.
#include <cmath>
#include <functional>
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

class TrainingOptionsTest : public ::testing::Test {
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
    grpc::Status s = UploadPairs(*client_, &sft_data_);
    ASSERT_TRUE(s.ok()) << Describe(s);
  }

  int JobCount() {
    v1::ListFineTuneJobsRequest request;
    v1::ListFineTuneJobsResponse response;
    grpc::ClientContext context;
    grpc::Status s =
        client_->fine_tuning->ListJobs(&context, request, &response);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return response.jobs_size();
  }

  TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<Client> client_;
  v1::Dataset sft_data_;
};

struct BadRequest {
  std::string what;
  std::function<void(v1::CreateFineTuneJobRequest&)> change;
  std::string field;  // the message starts with or holds this
};

std::vector<BadRequest> BadRequests(const std::string& sft_dataset) {
  using R = v1::CreateFineTuneJobRequest;
  return {
      {"method ppo",
       [](R& r) { r.mutable_hyperparameters()->set_method("ppo"); },
       "hyperparameters.method must be one of sft, dpo"},
      {"dpo_beta -1",
       [](R& r) {
         r.mutable_hyperparameters()->set_method("dpo");
         r.mutable_hyperparameters()->set_dpo_beta(-1);
       },
       "hyperparameters.dpo_beta must be a finite number in (0, 100]"},
      {"dpo_beta nan",
       [](R& r) {
         r.mutable_hyperparameters()->set_method("dpo");
         r.mutable_hyperparameters()->set_dpo_beta(std::nanf(""));
       },
       "hyperparameters.dpo_beta must be a finite number"},
      {"dpo_beta 101",
       [](R& r) {
         r.mutable_hyperparameters()->set_method("dpo");
         r.mutable_hyperparameters()->set_dpo_beta(101);
       },
       "hyperparameters.dpo_beta must be a finite number in (0, 100], got 101"},
      {"dpo_loss_type hinge",
       [](R& r) {
         r.mutable_hyperparameters()->set_method("dpo");
         r.mutable_hyperparameters()->set_dpo_loss_type("hinge");
       },
       "hyperparameters.dpo_loss_type must be one of sigmoid, ipo"},
      {"dpo_beta with sft",
       [](R& r) { r.mutable_hyperparameters()->set_dpo_beta(0.1f); },
       "hyperparameters.dpo_beta must be unset unless method is dpo"},
      {"dpo_loss_type with sft",
       [](R& r) { r.mutable_hyperparameters()->set_dpo_loss_type("ipo"); },
       "hyperparameters.dpo_loss_type must be unset unless method is dpo"},
      {"packing with dpo",
       [](R& r) {
         r.mutable_hyperparameters()->set_method("dpo");
         r.mutable_hyperparameters()->set_packing(true);
       },
       "hyperparameters.packing must be false with method dpo"},
      {"quantization fp8",
       [](R& r) { r.mutable_hyperparameters()->set_quantization("fp8"); },
       "hyperparameters.quantization must be one of nf4, int8"},
      {"optimizer paged_lion",
       [](R& r) { r.mutable_hyperparameters()->set_optimizer("paged_lion"); },
       "hyperparameters.optimizer must be one of adamw, adamw_8bit, "
       "paged_adamw, paged_adamw_8bit"},
      {"dpo on a prompt_completion training file",
       [](R& r) { r.mutable_hyperparameters()->set_method("dpo"); },
       absl::StrCat("training_file: dataset ", sft_dataset,
                    " is in format \"prompt_completion\", but method \"dpo\" "
                    "needs format \"preference\"")},
  };
}

TEST_F(TrainingOptionsTest, BadValuesAreRefusedNamingTheFieldOverGrpc) {
  for (const BadRequest& bad : BadRequests(sft_data_.id())) {
    v1::CreateFineTuneJobRequest request = TinyJobRequest(sft_data_.id(), 2, 0);
    bad.change(request);
    v1::FineTuneJob job;
    grpc::Status s = CreateJob(*client_, request, &job);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << bad.what << ": " << Describe(s);
    EXPECT_TRUE(absl::StrContains(s.error_message(), bad.field))
        << bad.what << ": " << s.error_message();
  }
  EXPECT_EQ(JobCount(), 0);

  // Still serving: a job with the new options' defaults spelled out runs to
  // the end, and the job echoes them.
  v1::CreateFineTuneJobRequest request = TinyJobRequest(sft_data_.id(), 2, 0);
  request.mutable_hyperparameters()->set_method("sft");
  request.mutable_hyperparameters()->set_quantization("nf4");
  request.mutable_hyperparameters()->set_optimizer("adamw");
  v1::FineTuneJob job;
  grpc::Status s = CreateJob(*client_, request, &job);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(job.hyperparameters().method(), "sft");
  EXPECT_EQ(job.hyperparameters().quantization(), "nf4");
  EXPECT_EQ(job.hyperparameters().dpo_beta(), 0);
  std::vector<v1::JobEvent> events;
  s = Watch(*client_, job.id(), 0, &events);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_TRUE(GetJob(*client_, job.id(), &job).ok());
  EXPECT_EQ(job.state(), v1::SUCCEEDED) << job.error().message();
  const std::vector<v1::TrainStep> steps = Steps(events);
  ASSERT_EQ(steps.size(), 2u);
  for (const v1::TrainStep& step : steps) EXPECT_FALSE(step.has_dpo());
}

TEST_F(TrainingOptionsTest, LoractlChecksItsFlagsAndShowsTheServersRefusal) {
  const std::string base =
      absl::StrCat("finetune ", sft_data_.id(),
                   " --no-follow --max-steps 2 --rank 8 --lr 1e-2 ");
  const std::vector<std::pair<std::string, std::string>> bad_flags = {
      {"--method ppo", "--method: expected one of sft, dpo"},
      {"--method dpo --dpo-beta 0", "--dpo-beta: must be above 0"},
      {"--method dpo --dpo-beta -2", "--dpo-beta: must be between 0 and 100"},
      {"--method dpo --dpo-beta nan", "--dpo-beta"},
      {"--method dpo --dpo-beta 500", "--dpo-beta: must be between 0 and 100"},
      {"--method dpo --dpo-loss-type hinge",
       "--dpo-loss-type: expected one of sigmoid, ipo"},
      {"--quantization fp8", "--quantization: expected one of nf4, int8"},
      {"--optimizer paged_lion",
       "--optimizer: expected one of adamw, adamw_8bit, paged_adamw, "
       "paged_adamw_8bit"},
  };
  for (const auto& [flags, needle] : bad_flags) {
    Ran r = RunLoractl(dir_.path(), daemon_->address(), base + flags);
    EXPECT_NE(r.exit_code, 0) << flags;
    EXPECT_TRUE(absl::StrContains(r.err, needle)) << flags << ": " << r.err;
  }
  // What only the server knows: the combination, and the dataset's format.
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"--dpo-beta 0.5",
       "INVALID_ARGUMENT: hyperparameters.dpo_beta must be "
       "unset unless method is dpo"},
      {"--method dpo --packing",
       "INVALID_ARGUMENT: hyperparameters.packing must be false with method "
       "dpo"},
      {"--method dpo",
       absl::StrCat("INVALID_ARGUMENT: training_file: dataset ", sft_data_.id(),
                    " is in format \"prompt_completion\"")},
  };
  for (const auto& [flags, needle] : refused) {
    Ran r = RunLoractl(dir_.path(), daemon_->address(), base + flags);
    EXPECT_EQ(r.exit_code, 1) << flags << ": " << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, needle)) << flags << ": " << r.err;
  }
  EXPECT_EQ(JobCount(), 0);
  Ran help = RunLoractl(dir_.path(), daemon_->address(), "finetune --help");
  const std::string usage = help.out + help.err;
  for (const char* flag : {"--method", "--dpo-beta", "--dpo-loss-type",
                           "--quantization", "paged_adamw_8bit"}) {
    EXPECT_TRUE(absl::StrContains(usage, flag)) << flag << "\n" << usage;
  }

  // A good job through loractl shows the options in `get` and `jobs`.
  Ran created = RunLoractl(
      dir_.path(), daemon_->address(),
      base + "--quantization nf4 --optimizer adamw --method sft --json");
  ASSERT_EQ(created.exit_code, 0) << created.err;
  json job = json::parse(created.out, nullptr, false);
  ASSERT_TRUE(job.is_object()) << created.out;
  const std::string id = job["id"].get<std::string>();
  Ran get = RunLoractl(dir_.path(), daemon_->address(), "get " + id);
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(Row(get.out, "method"), "sft") << get.out;
  EXPECT_FALSE(absl::StrContains(get.out, "quantization")) << get.out;
  Ran jobs = RunLoractl(dir_.path(), daemon_->address(), "jobs");
  ASSERT_EQ(jobs.exit_code, 0) << jobs.err;
  EXPECT_TRUE(absl::StrContains(jobs.out, "METHOD")) << jobs.out;
  Ran watch = RunLoractl(dir_.path(), daemon_->address(), "watch " + id);
  EXPECT_EQ(watch.exit_code, 0) << watch.err;
  EXPECT_FALSE(absl::StrContains(watch.out, "rewards")) << watch.out;
}

TEST_F(TrainingOptionsTest, OpenAiApiRefusesBadValuesWith400NamingTheField) {
  const std::string http = daemon_->http_address();
  ASSERT_FALSE(http.empty());
  struct Case {
    std::string what;
    json method;
    json hyperparameters;
    std::string param;   // null when the server's validation answers
    std::string needle;  // in the message
  };
  const std::vector<Case> cases = {
      {"type ppo", {{"type", "ppo"}}, nullptr, "method.type", "method.type"},
      {"beta -1",
       {{"type", "dpo"}, {"dpo", {{"hyperparameters", {{"beta", -1}}}}}},
       nullptr,
       "method.dpo.hyperparameters.beta",
       "'beta'"},
      {"beta 500",
       {{"type", "dpo"}, {"dpo", {{"hyperparameters", {{"beta", 500}}}}}},
       nullptr,
       "method.dpo.hyperparameters.beta",
       "at most 100"},
      {"dpo_loss_type hinge",
       {{"type", "dpo"},
        {"dpo", {{"hyperparameters", {{"dpo_loss_type", "hinge"}}}}}},
       nullptr,
       "",
       "hyperparameters.dpo_loss_type must be one of sigmoid, ipo"},
      {"quantization fp8",
       nullptr,
       {{"quantization", "fp8"}},
       "",
       "hyperparameters.quantization must be one of nf4, int8"},
      {"optimizer paged_lion",
       {{"type", "supervised"},
        {"supervised", {{"hyperparameters", {{"optimizer", "paged_lion"}}}}}},
       nullptr,
       "",
       "hyperparameters.optimizer must be one of"},
      {"dpo on prompt_completion",
       {{"type", "dpo"}},
       nullptr,
       "",
       "training_file: dataset " + sft_data_.id()},
  };
  for (const Case& c : cases) {
    json body = {{"model", "tiny"}, {"training_file", sft_data_.id()}};
    if (!c.method.is_null()) body["method"] = c.method;
    if (!c.hyperparameters.is_null())
      body["hyperparameters"] = c.hyperparameters;
    HttpReply reply =
        Http(dir_.path(), http, "POST", "/fine_tuning/jobs", body);
    EXPECT_EQ(reply.status, 400) << c.what << ": " << reply.raw;
    ASSERT_TRUE(reply.body.is_object()) << c.what << ": " << reply.raw;
    const json& error = reply.body["error"];
    EXPECT_TRUE(absl::StrContains(error.value("message", ""), c.needle))
        << c.what << ": " << reply.raw;
    if (!c.param.empty()) {
      EXPECT_EQ(error["param"], c.param) << c.what << ": " << reply.raw;
    }
  }
  EXPECT_EQ(JobCount(), 0);
  HttpReply list = Http(dir_.path(), http, "GET", "/fine_tuning/jobs");
  EXPECT_EQ(list.status, 200) << list.raw;
  EXPECT_EQ(list.body["data"].size(), 0u) << list.raw;

  // A supervised job with lorad's extensions: accepted, and echoed in the
  // API's shape.
  json body = {{"model", "tiny"},
               {"training_file", sft_data_.id()},
               {"method",
                {{"type", "supervised"},
                 {"supervised",
                  {{"hyperparameters",
                    {{"n_epochs", 1},
                     {"max_steps", 2},
                     {"quantization", "nf4"},
                     {"optimizer", "adamw"}}}}}}}};
  HttpReply created =
      Http(dir_.path(), http, "POST", "/fine_tuning/jobs", body);
  ASSERT_EQ(created.status, 200) << created.raw;
  EXPECT_EQ(created.body["method"]["type"], "supervised") << created.raw;
  EXPECT_EQ(created.body["method"]["supervised"]["hyperparameters"]["n_epochs"],
            1)
      << created.raw;
  EXPECT_EQ(created.body["quantization"], "nf4") << created.raw;
  EXPECT_TRUE(created.body["dpo_loss_type"].is_null()) << created.raw;
  std::vector<v1::JobEvent> events;
  grpc::Status s =
      Watch(*client_, created.body["id"].get<std::string>(), 0, &events);
  ASSERT_TRUE(s.ok()) << Describe(s);
}

}  // namespace
}  // namespace lorad::testing
