// loractl and the int8 base: --quantization reaches the job's
// hyperparameters (and a bad value is refused naming the flag); a job's
// details show its quantization and bytes per base parameter.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "job_view.h"
#include "request_flags.h"

namespace lorad::client {
namespace {

absl::StatusOr<FineTuneOptions> ParseFineTune(
    const std::vector<std::string>& args) {
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, FineTuneFlags());
  if (!parsed.ok()) return parsed.status();
  return ParseFineTuneOptions(*parsed);
}

TEST(LoractlInt8Test, QuantizationFlagReachesTheJob) {
  auto int8 = ParseFineTune({"--train", "t", "--quantization", "int8"});
  ASSERT_TRUE(int8.ok()) << int8.status();
  EXPECT_EQ(int8->request.hyperparameters().quantization(), "int8");
  auto unset = ParseFineTune({"--train", "t"});
  ASSERT_TRUE(unset.ok());
  EXPECT_EQ(unset->request.hyperparameters().quantization(), "");
  auto bad = ParseFineTune({"--train", "t", "--quantization", "int4"});
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "--quantization"))
      << bad.status();
}

TEST(LoractlInt8Test, JobDetailsShowTheInt8Base) {
  lorad::v1::FineTuneJob job;
  job.set_id("ftjob-1");
  job.mutable_hyperparameters()->set_quantization("int8");
  job.set_base_bytes_per_param(1.0451);
  const std::string text = RenderJobDetails(job);
  EXPECT_TRUE(absl::StrContains(text, "quantization int8")) << text;
  EXPECT_TRUE(absl::StrContains(text, "1.0451 (8.36 bits)")) << text;
  job.mutable_hyperparameters()->set_quantization("nf4");
  EXPECT_FALSE(absl::StrContains(RenderJobDetails(job), "quantization"));
}

}  // namespace
}  // namespace lorad::client
