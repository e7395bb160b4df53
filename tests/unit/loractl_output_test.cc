#include <gtest/gtest.h>

#include "job_view.h"
#include "lorad/v1/lorad.pb.h"
#include "nlohmann/json.hpp"
#include "output.h"

namespace lorad::client {
namespace {

TEST(ExitCodeTest, MapsStatusCodes) {
  EXPECT_EQ(ExitCodeFor(absl::OkStatus()), kExitOk);
  EXPECT_EQ(ExitCodeFor(absl::NotFoundError("x")), kExitFailure);
  EXPECT_EQ(ExitCodeFor(absl::InvalidArgumentError("x")), kExitFailure);
  EXPECT_EQ(ExitCodeFor(absl::UnavailableError("x")), kExitUnavailable);
  EXPECT_EQ(ExitCodeFor(absl::DeadlineExceededError("x")), kExitUnavailable);
}

TEST(ErrorLineTest, NamesTheCode) {
  EXPECT_EQ(ErrorLine(absl::NotFoundError("job ft-1 not found")),
            "loractl: NOT_FOUND: job ft-1 not found");
  nlohmann::json j = ErrorJson(absl::InvalidArgumentError("bad"));
  EXPECT_EQ(j["error"]["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(j["error"]["message"], "bad");
}

TEST(MessageToJsonLineTest, OneLineWithProtoNamesAndZeros) {
  lorad::v1::FineTuneJob job;
  job.set_id("ft-1");
  job.set_state(lorad::v1::RUNNING);
  job.set_peak_memory_bytes(5);
  std::string line = MessageToJsonLine(job);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  nlohmann::json j = nlohmann::json::parse(line);
  EXPECT_EQ(j["id"], "ft-1");
  EXPECT_EQ(j["state"], "RUNNING");
  EXPECT_EQ(j["peak_memory_bytes"], "5");  // int64 as a string, per proto3.
  EXPECT_EQ(j["step"], 0);
}

TEST(JobViewTest, JobsTableColumns) {
  lorad::v1::ListFineTuneJobsResponse list;
  auto* job = list.add_jobs();
  job->set_id("ft-1");
  job->set_state(lorad::v1::SUCCEEDED);
  job->set_model("tiny");
  job->set_step(100);
  job->set_total_steps(100);
  job->set_last_loss(1.5f);
  job->set_adapter_path("/a/ft-1");
  job->mutable_hyperparameters()->set_method("sft");
  std::string table = RenderJobsTable(list);
  EXPECT_TRUE(
      table.starts_with("ID    STATE      MODEL  METHOD  STEP/TOTAL  "
                        "LOSS    CREATED  ADAPTER\n"))
      << table;
  EXPECT_NE(table.find("ft-1  SUCCEEDED  tiny   sft     100/100     1.5000  -"),
            std::string::npos)
      << table;
}

TEST(JobViewTest, JobsTableShowsDpoAndInt8) {
  lorad::v1::ListFineTuneJobsResponse list;
  auto* dpo = list.add_jobs();
  dpo->set_id("ft-dpo");
  dpo->mutable_hyperparameters()->set_method("dpo");
  dpo->mutable_hyperparameters()->set_dpo_beta(0.25f);
  dpo->mutable_hyperparameters()->set_dpo_loss_type("ipo");
  dpo->mutable_hyperparameters()->set_quantization("int8");
  auto* old = list.add_jobs();  // stored before jobs had a method
  old->set_id("ft-old");
  auto* nf4 = list.add_jobs();
  nf4->set_id("ft-std");
  nf4->mutable_hyperparameters()->set_method("sft");
  nf4->mutable_hyperparameters()->set_quantization("nf4");
  std::string table = RenderJobsTable(list);
  EXPECT_NE(table.find("dpo beta 0.25 ipo, int8"), std::string::npos) << table;
  EXPECT_NE(table.find("ft-old  UNSPECIFIED  -      sft "), std::string::npos)
      << table;
  EXPECT_EQ(table.find("nf4"), std::string::npos) << table;
}

TEST(JobViewTest, DetailsShowMethodQuantizationAndPageableBytes) {
  lorad::v1::FineTuneJob job;
  job.set_id("ft-2");
  lorad::v1::Hyperparameters* hp = job.mutable_hyperparameters();
  hp->set_method("sft");
  hp->set_quantization("nf4");
  std::string details = RenderJobDetails(job);
  EXPECT_NE(details.find("\nmethod           sft\n"), std::string::npos)
      << details;
  EXPECT_EQ(details.find("quantization"), std::string::npos) << details;
  EXPECT_EQ(details.find("pageable"), std::string::npos) << details;

  hp->set_method("dpo");
  hp->set_dpo_beta(0.1f);
  hp->set_dpo_loss_type("sigmoid");
  hp->set_quantization("int8");
  hp->set_optimizer("paged_adamw_8bit");
  job.mutable_memory_estimate()->set_total_bytes(int64_t{4} << 20);
  job.mutable_memory_estimate()->set_pageable_bytes(int64_t{3} << 20);
  details = RenderJobDetails(job);
  EXPECT_NE(details.find("\nmethod           dpo (beta 0.1, loss sigmoid)\n"),
            std::string::npos)
      << details;
  EXPECT_NE(details.find("\nquantization     int8 (LLM.int8 base)\n"),
            std::string::npos)
      << details;
  EXPECT_NE(details.find("optimizer paged_adamw_8bit"), std::string::npos)
      << details;
  EXPECT_NE(details.find("; pageable optimizer state 3.0 MiB)"),
            std::string::npos)
      << details;
}

TEST(JobViewTest, PeakBesideEstimate) {
  lorad::v1::FineTuneJob job;
  EXPECT_EQ(RenderPeakVsEstimate(job), "-");
  job.mutable_memory_estimate()->set_total_bytes(int64_t{2} << 30);
  EXPECT_EQ(RenderPeakVsEstimate(job), "estimate 2.0 GiB");
  job.set_peak_memory_bytes(int64_t{3} << 29);
  EXPECT_EQ(RenderPeakVsEstimate(job), "peak 1.5 GiB (estimate 2.0 GiB, -25%)");
}

TEST(JobViewTest, SummaryNamesAdapterAndError) {
  lorad::v1::FineTuneJob job;
  job.set_id("ft-9");
  job.set_state(lorad::v1::FAILED);
  job.mutable_error()->set_code("RESOURCE_EXHAUSTED");
  job.mutable_error()->set_message("needs 3 GiB");
  std::string summary = RenderJobSummary(job);
  EXPECT_NE(summary.find("ft-9 FAILED"), std::string::npos);
  EXPECT_NE(summary.find("RESOURCE_EXHAUSTED: needs 3 GiB"), std::string::npos);
  job.set_state(lorad::v1::SUCCEEDED);
  job.clear_error();
  job.set_adapter_path("/adapters/ft-9");
  EXPECT_NE(RenderJobSummary(job).find("/adapters/ft-9"), std::string::npos);
}

TEST(JobViewTest, StateChangeLine) {
  lorad::v1::StateChange change;
  change.set_state(lorad::v1::QUEUED);
  EXPECT_EQ(RenderStateChange(change), "state QUEUED");
  change.set_message("waiting for the worker");
  EXPECT_EQ(RenderStateChange(change), "state QUEUED: waiting for the worker");
}

}  // namespace
}  // namespace lorad::client
