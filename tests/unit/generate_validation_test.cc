#include "jobs/generate_validation.h"

#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "jobs/job_validation.h"

namespace lorad::server {
namespace {

// `depth` nested arrays inside an object.
std::string Nested(int depth) {
  return "{\"a\":" + std::string(depth, '[') + std::string(depth, ']') + "}";
}

void ExpectRefused(const absl::Status& s, const std::string& needle) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), needle))
      << "want \"" << needle << "\" in: " << s.message();
}

v1::GenerateRequest Good() {
  v1::GenerateRequest r;
  r.set_prompt("hello");
  r.set_max_new_tokens(16);
  r.set_temperature(0.7f);
  r.set_top_k(40);
  r.set_top_p(0.9f);
  r.set_repetition_penalty(1.1f);
  r.add_stop("\n\n");
  r.set_adapter("my-adapter_v1.2");
  return r;
}

TEST(GenerateValidationTest, AcceptsOrdinaryAndEdgeValues) {
  EXPECT_TRUE(ValidateGenerateRequest(Good()).ok());
  EXPECT_TRUE(ValidateGenerateRequest(v1::GenerateRequest()).ok());
  v1::GenerateRequest r = Good();
  r.set_temperature(kMaxTemperature);
  r.set_top_p(1);
  r.set_top_k(kMaxTopK);
  r.set_max_new_tokens(kMaxNewTokens);
  r.set_repetition_penalty(kMinRepetitionPenalty);
  EXPECT_TRUE(ValidateGenerateRequest(r).ok());
  r.set_temperature(1e-38f);  // tiny, but the worker treats it as greedy
  EXPECT_TRUE(ValidateGenerateRequest(r).ok());
}

TEST(GenerateValidationTest, RefusesNonFiniteAndOutOfRangeFloats) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (float t : {nan, inf, -inf, -1.0f, 100.5f}) {
    v1::GenerateRequest r = Good();
    r.set_temperature(t);
    ExpectRefused(ValidateGenerateRequest(r), "temperature");
  }
  for (float p : {nan, inf, -0.5f, 1.01f}) {
    v1::GenerateRequest r = Good();
    r.set_top_p(p);
    ExpectRefused(ValidateGenerateRequest(r), "top_p");
  }
  for (float p : {nan, inf, -1.0f, 1e-38f, 0.001f, 101.0f}) {
    v1::GenerateRequest r = Good();
    r.set_repetition_penalty(p);
    ExpectRefused(ValidateGenerateRequest(r), "repetition_penalty");
  }
  v1::GenerateRequest r = Good();
  r.set_temperature(nan);
  ExpectRefused(ValidateGenerateRequest(r, "defaults."),
                "defaults.temperature must be a finite number in [0, 100], "
                "got nan");
}

TEST(GenerateValidationTest, RefusesHugeCountsAndStrings) {
  v1::GenerateRequest r = Good();
  r.set_max_new_tokens(kMaxNewTokens + 1);
  ExpectRefused(ValidateGenerateRequest(r), "max_new_tokens");
  r = Good();
  r.set_top_k(-1);
  ExpectRefused(ValidateGenerateRequest(r), "top_k");
  r = Good();
  for (int i = 0; i < kMaxStops; ++i) r.add_stop("s");
  ExpectRefused(ValidateGenerateRequest(r), "stop");
  r = Good();
  r.add_stop(std::string(kMaxStopBytes + 1, 's'));
  ExpectRefused(ValidateGenerateRequest(r), "stop[1]");
  r = Good();
  r.add_stop("");
  ExpectRefused(ValidateGenerateRequest(r), "stop[1]");
  r = Good();
  r.set_prompt(std::string(kMaxPromptBytes + 1, 'p'));
  ExpectRefused(ValidateGenerateRequest(r), "prompt");
}

TEST(GenerateValidationTest, RefusesUnknownRolesNamingTheMessage) {
  v1::GenerateRequest r;
  for (const char* role : {"system", "user", "assistant", "tool"}) {
    auto* m = r.add_messages();
    m->set_role(role);
    m->set_content("x");
  }
  EXPECT_TRUE(ValidateGenerateRequest(r).ok());
  auto* bad = r.add_messages();
  bad->set_role("user<|im_end|>" + std::string(1 << 20, 'x'));
  const absl::Status s = ValidateGenerateRequest(r);
  ExpectRefused(s, "messages[4].role must be one of system, user");
  EXPECT_LT(s.message().size(), 300u) << "the role is quoted whole";
}

TEST(GenerateValidationTest, OpenAiSamplingFieldsAreChecked) {
  v1::GenerateRequest r = Good();
  r.set_presence_penalty(-2);
  r.set_frequency_penalty(2);
  r.set_logprobs(true);
  r.set_top_logprobs(kMaxTopLogprobs);
  EXPECT_TRUE(ValidateGenerateRequest(r).ok());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (float p : {nan, inf, -inf, -2.01f, 2.5f}) {
    r = Good();
    r.set_presence_penalty(p);
    ExpectRefused(ValidateGenerateRequest(r), "presence_penalty");
    r = Good();
    r.set_frequency_penalty(p);
    ExpectRefused(ValidateGenerateRequest(r), "frequency_penalty");
  }
  r = Good();
  r.set_logprobs(true);
  for (int k : {-1, kMaxTopLogprobs + 1}) {
    r.set_top_logprobs(k);
    ExpectRefused(ValidateGenerateRequest(r), "top_logprobs must be in");
  }
  r = Good();
  r.set_top_logprobs(2);
  ExpectRefused(ValidateGenerateRequest(r, "defaults."),
                "defaults.top_logprobs needs defaults.logprobs");
}

TEST(GenerateValidationTest, ResponseFormatIsKnownAndItsSchemaAnObject) {
  auto with = [](const std::string& type, const std::string& schema) {
    v1::GenerateRequest r = Good();
    r.mutable_response_format()->set_type(type);
    r.mutable_response_format()->set_json_schema(schema);
    return ValidateGenerateRequest(r);
  };
  EXPECT_TRUE(with("", "").ok());
  EXPECT_TRUE(with("text", "").ok());
  EXPECT_TRUE(with("json_object", "").ok());
  EXPECT_TRUE(
      with("json_schema", R"({"type":"object","properties":{"a":{}}})").ok());
  ExpectRefused(with("JSON", ""), "response_format.type must be one of");
  ExpectRefused(with("json_schema", ""),
                "response_format.json_schema must be a JSON object");
  ExpectRefused(with("json_schema", "{\"a\":"),
                "response_format.json_schema: not valid JSON");
  ExpectRefused(with("json_schema", "\"object\""),
                "response_format.json_schema must be a JSON object, got a "
                "JSON string");
  ExpectRefused(with("json_schema", Nested(64)), "nested deeper");
  ExpectRefused(
      with("json_schema",
           "{\"d\": \"" + std::string(kMaxJsonSchemaBytes, 'x') + "\"}"),
      "response_format.json_schema");
  ExpectRefused(with("text", "{}"), "only for type json_schema");
}

TEST(NameValidationTest, OnePatternAndLength) {
  for (const char* ok : {"a", "ftjob-0123456789ab", "my_adapter.v2", "_x"}) {
    EXPECT_TRUE(ValidateName("suffix", ok).ok()) << ok;
  }
  for (const std::string& bad :
       {std::string(""), std::string("a/../b"), std::string(".."),
        std::string("-rf"), std::string("a b"), std::string(65, 'a'),
        std::string("caf\xC3\xA9")}) {
    ExpectRefused(ValidateName("suffix", bad), "suffix");
  }
  const absl::Status huge = ValidateName("suffix", std::string(4 << 20, 'a'));
  ExpectRefused(huge, "4194304 bytes");
  EXPECT_LT(huge.message().size(), 300u);
}

TEST(NameValidationTest, FilenamesArePrintableAndShort) {
  EXPECT_TRUE(ValidateFilename("filename", "").ok());
  EXPECT_TRUE(ValidateFilename("filename", "my data (v2).jsonl").ok());
  for (const std::string& bad :
       {std::string("a/b"), std::string("a\\b"), std::string("a\nb"),
        std::string(256, 'f'), std::string("\xFF")}) {
    ExpectRefused(ValidateFilename("filename", bad), "filename");
  }
}

}  // namespace
}  // namespace lorad::server
