// The OpenAI-compatible API's shape of issue 15's options: "method"
// ({"type": "supervised" | "dpo", ...}) read into lorad's method and
// dpo_beta, lorad's extensions (dpo_loss_type, quantization, optimizer)
// beside OpenAI's hyperparameters, bad values named by their JSON path, and
// the job object's method echoed in the API's shape.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "openai/fine_tuning_json.h"

namespace lorad::server::openai {
namespace {

using nlohmann::json;

struct Read {
  bool ok = false;
  v1::CreateFineTuneJobRequest request;
  std::string message;
  std::string param;
};

Read ReadBody(const json& method, const json& hyperparameters = nullptr) {
  json body = {{"model", "tiny"}, {"training_file", "ds-0123456789abcdef"}};
  if (!method.is_null()) body["method"] = method;
  if (!hyperparameters.is_null()) body["hyperparameters"] = hyperparameters;
  Read r;
  r.ok = ReadCreateJob(body, "tiny", &r.request, &r.message, &r.param);
  return r;
}

TEST(OpenAiTrainingOptionsTest, DpoMethodWithItsHyperparameters) {
  Read r = ReadBody({{"type", "dpo"},
                     {"dpo",
                      {{"hyperparameters",
                        {{"beta", 0.25},
                         {"n_epochs", 2},
                         {"batch_size", 3},
                         {"learning_rate_multiplier", 0.5},
                         {"dpo_loss_type", "ipo"},
                         {"quantization", "int8"},
                         {"optimizer", "paged_adamw_8bit"}}}}}});
  ASSERT_TRUE(r.ok) << r.message;
  const v1::Hyperparameters& hp = r.request.hyperparameters();
  EXPECT_EQ(hp.method(), "dpo");
  EXPECT_FLOAT_EQ(hp.dpo_beta(), 0.25f);
  EXPECT_EQ(hp.dpo_loss_type(), "ipo");
  EXPECT_EQ(hp.quantization(), "int8");
  EXPECT_EQ(hp.optimizer(), "paged_adamw_8bit");
  EXPECT_EQ(hp.epochs(), 2);
  EXPECT_EQ(hp.batch_size(), 3);
  EXPECT_FLOAT_EQ(hp.learning_rate(), 1e-4f);
  EXPECT_EQ(hp.rank(), 8);  // filled as for any API request
}

TEST(OpenAiTrainingOptionsTest, AutoBetaAndNoObjectLeaveTheServersDefault) {
  Read r = ReadBody(
      {{"type", "dpo"}, {"dpo", {{"hyperparameters", {{"beta", "auto"}}}}}});
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.request.hyperparameters().method(), "dpo");
  EXPECT_EQ(r.request.hyperparameters().dpo_beta(), 0);
  r = ReadBody({{"type", "dpo"}});
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.request.hyperparameters().method(), "dpo");
}

TEST(OpenAiTrainingOptionsTest, SupervisedIsSftAndExtensionsStayAccepted) {
  Read r = ReadBody(
      {{"type", "supervised"},
       {"supervised", {{"hyperparameters", {{"optimizer", "paged_adamw"}}}}}},
      {{"quantization", "int8"}});
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.request.hyperparameters().method(), "sft");
  EXPECT_EQ(r.request.hyperparameters().optimizer(), "paged_adamw");
  EXPECT_EQ(r.request.hyperparameters().quantization(), "int8");
  // lorad's own spelling without OpenAI's method object.
  r = ReadBody(nullptr, {{"method", "dpo"}, {"dpo_beta", 0.5}});
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.request.hyperparameters().method(), "dpo");
  EXPECT_FLOAT_EQ(r.request.hyperparameters().dpo_beta(), 0.5f);
}

TEST(OpenAiTrainingOptionsTest, BadValuesNameTheirField) {
  struct Case {
    json method;
    json hyperparameters;
    std::string param;
    std::string needle;
  };
  const Case cases[] = {
      {{{"type", "reinforcement"}}, nullptr, "method.type", "\"dpo\""},
      {{{"type", 7}}, nullptr, "method.type", "supervised"},
      {"dpo", nullptr, "method", "object"},
      {{{"type", "dpo"}, {"dpo", {{"hyperparameters", {{"beta", -1}}}}}},
       nullptr,
       "method.dpo.hyperparameters.beta",
       "positive number"},
      {{{"type", "dpo"}, {"dpo", {{"hyperparameters", {{"beta", "high"}}}}}},
       nullptr,
       "method.dpo.hyperparameters.beta",
       "'beta'"},
      {{{"type", "dpo"}, {"dpo", {{"hyperparameters", {{"beta", 1000}}}}}},
       nullptr,
       "method.dpo.hyperparameters.beta",
       "at most 100"},
      {{{"type", "dpo"},
        {"dpo", {{"hyperparameters", {{"beta", 0.2}, {"dpo_beta", 0.3}}}}}},
       nullptr,
       "method.dpo.hyperparameters.beta",
       "contradicts"},
      {{{"type", "dpo"}, {"dpo", {{"hyperparameters", {{"temperature", 1}}}}}},
       nullptr,
       "method.dpo.hyperparameters",
       "temperature"},
      {{{"type", "dpo"}, {"dpo", 5}}, nullptr, "method.dpo", "object"},
      {{{"type", "dpo"}, {"supervised", json::object()}},
       nullptr,
       "method.supervised",
       "method.type \"dpo\""},
      {{{"type", "supervised"}},
       {{"method", "dpo"}},
       "hyperparameters.method",
       "contradicts"},
      {{{"type", "supervised"},
        {"supervised", {{"hyperparameters", {{"method", "dpo"}}}}}},
       nullptr,
       "method.supervised.hyperparameters.method",
       "contradicts"},
      {nullptr, {{"dpo_loss_type", 3}}, "hyperparameters", "dpo_loss_type"},
  };
  for (const Case& c : cases) {
    Read r = ReadBody(c.method, c.hyperparameters);
    EXPECT_FALSE(r.ok) << c.param;
    EXPECT_EQ(r.param, c.param) << r.message;
    EXPECT_NE(r.message.find(c.needle), std::string::npos)
        << c.param << ": " << r.message;
  }
}

TEST(OpenAiTrainingOptionsTest, JobObjectEchoesTheMethodInTheApisShape) {
  v1::FineTuneJob job;
  job.set_id("ftjob-1");
  v1::Hyperparameters* hp = job.mutable_hyperparameters();
  hp->set_method("sft");
  hp->set_epochs(2);
  hp->set_batch_size(4);
  hp->set_learning_rate(4e-4f);
  hp->set_quantization("nf4");
  json o = JobObject(job);
  EXPECT_EQ(o["method"]["type"], "supervised");
  EXPECT_EQ(o["method"]["supervised"]["hyperparameters"]["n_epochs"], 2);
  EXPECT_EQ(o["method"]["supervised"]["hyperparameters"]["batch_size"], 4);
  EXPECT_FALSE(o["method"].contains("dpo"));
  EXPECT_EQ(o["quantization"], "nf4");
  EXPECT_TRUE(o["dpo_loss_type"].is_null());

  hp->set_method("dpo");
  hp->set_dpo_beta(0.5f);
  hp->set_dpo_loss_type("ipo");
  hp->set_quantization("int8");
  o = JobObject(job);
  EXPECT_EQ(o["method"]["type"], "dpo");
  EXPECT_EQ(o["method"]["dpo"]["hyperparameters"]["beta"], 0.5);
  EXPECT_EQ(o["method"]["dpo"]["hyperparameters"]["n_epochs"], 2);
  EXPECT_FALSE(o["method"].contains("supervised"));
  EXPECT_EQ(o["dpo_loss_type"], "ipo");
  EXPECT_EQ(o["quantization"], "int8");
  // Read back, the object's method makes the same job.
  json body = {{"model", "tiny"},
               {"training_file", "ds-0123456789abcdef"},
               {"method", o["method"]}};
  v1::CreateFineTuneJobRequest again;
  std::string message, param;
  ASSERT_TRUE(ReadCreateJob(body, "tiny", &again, &message, &param)) << message;
  EXPECT_EQ(again.hyperparameters().method(), "dpo");
  EXPECT_FLOAT_EQ(again.hyperparameters().dpo_beta(), 0.5f);
  EXPECT_EQ(again.hyperparameters().epochs(), 2);
}

TEST(OpenAiTrainingOptionsTest, DpoEventsCarryRewards) {
  v1::JobEvent step;
  step.set_seq(1);
  step.mutable_step()->set_step(1);
  step.mutable_step()->mutable_dpo()->set_reward_margin(0.5f);
  step.mutable_step()->mutable_dpo()->set_reward_accuracy(0.75f);
  v1::JobEvent eval;
  eval.set_seq(2);
  eval.mutable_eval()->set_step(1);
  eval.mutable_eval()->mutable_dpo()->set_rewards_chosen(0.25f);
  v1::JobEvent plain;
  plain.set_seq(3);
  plain.mutable_step()->set_step(2);
  auto objects = EventObjects("ftjob-1", {step, eval, plain});
  ASSERT_EQ(objects.size(), 3u);  // newest first
  EXPECT_FALSE(objects[0]["data"].contains("reward_margin"));
  EXPECT_EQ(objects[1]["data"]["rewards_chosen"], 0.25);
  EXPECT_EQ(objects[2]["data"]["reward_margin"], 0.5);
  EXPECT_EQ(objects[2]["data"]["reward_accuracy"], 0.75);
}

}  // namespace
}  // namespace lorad::server::openai
