// The OpenAI sampling extras of Inference.Generate against the real daemon
// and worker: each bad presence_penalty, frequency_penalty, logprobs /
// top_logprobs and response_format is refused with InvalidArgument naming
// the field (and the daemon goes on serving); logprobs come back aligned
// with token_ids; penalties reach the worker.
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client_util.h"
#include "daemon_process.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"

namespace lorad::testing {
namespace {

struct Result {
  grpc::Status status;
  std::vector<v1::GenerateResponse> responses;
  std::vector<int32_t> tokens;
};

class SamplingExtrasDaemonTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!WorkerBuilt()) return;
    dir_ = new TempDir();
    auto daemon = StartWithWorker(dir_->path() + "/data");
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = daemon->release();
    client_ = new Client(daemon_->address());
  }
  static void TearDownTestSuite() {
    if (daemon_ != nullptr) {
      EXPECT_EQ(daemon_->Terminate(), 0) << "lorad did not exit cleanly";
    }
    delete client_;
    delete daemon_;
    delete dir_;
    client_ = nullptr;
    daemon_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
    ASSERT_NE(daemon_, nullptr);
  }

  static Result Generate(const v1::GenerateRequest& request) {
    Result r;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(120));
    auto reader = client_->inference->Generate(&context, request);
    v1::GenerateResponse response;
    while (reader->Read(&response)) {
      r.responses.push_back(response);
      r.tokens.insert(r.tokens.end(), response.token_ids().begin(),
                      response.token_ids().end());
    }
    r.status = reader->Finish();
    return r;
  }

  static v1::GenerateRequest Prompt(const std::string& prompt, int max_new) {
    v1::GenerateRequest r;
    r.set_prompt(prompt);
    r.set_max_new_tokens(max_new);
    return r;
  }

  static TempDir* dir_;
  static DaemonProcess* daemon_;
  static Client* client_;
};

TempDir* SamplingExtrasDaemonTest::dir_ = nullptr;
DaemonProcess* SamplingExtrasDaemonTest::daemon_ = nullptr;
Client* SamplingExtrasDaemonTest::client_ = nullptr;

TEST_F(SamplingExtrasDaemonTest, EveryBadNewFieldIsRefusedByName) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  struct Case {
    std::string name;
    std::function<void(v1::GenerateRequest&)> edit;
    std::string needle;
  };
  auto format = [](std::string type, std::string schema) {
    return [type, schema](v1::GenerateRequest& r) {
      r.mutable_response_format()->set_type(type);
      r.mutable_response_format()->set_json_schema(schema);
    };
  };
  const std::vector<Case> cases = {
      {"presence 2.5", [](auto& r) { r.set_presence_penalty(2.5f); },
       "presence_penalty"},
      {"presence -2.01", [](auto& r) { r.set_presence_penalty(-2.01f); },
       "presence_penalty"},
      {"presence nan", [&](auto& r) { r.set_presence_penalty(nan); },
       "presence_penalty"},
      {"frequency inf", [&](auto& r) { r.set_frequency_penalty(inf); },
       "frequency_penalty"},
      {"frequency -3", [](auto& r) { r.set_frequency_penalty(-3); },
       "frequency_penalty"},
      {"top_logprobs 21",
       [](auto& r) {
         r.set_logprobs(true);
         r.set_top_logprobs(21);
       },
       "top_logprobs"},
      {"top_logprobs -1",
       [](auto& r) {
         r.set_logprobs(true);
         r.set_top_logprobs(-1);
       },
       "top_logprobs"},
      {"top_logprobs without logprobs", [](auto& r) { r.set_top_logprobs(3); },
       "top_logprobs needs logprobs"},
      {"unknown type", format("yaml", ""), "response_format.type"},
      {"schema missing", format("json_schema", ""),
       "response_format.json_schema"},
      {"schema not JSON", format("json_schema", "{\"type\": "),
       "response_format.json_schema"},
      {"schema not an object", format("json_schema", "[1, 2]"),
       "response_format.json_schema"},
      {"schema too big",
       format("json_schema", absl::StrCat("{\"description\": \"",
                                          std::string(70000, 'x'), "\"}")),
       "response_format.json_schema"},
      {"schema for json_object", format("json_object", "{}"),
       "response_format.json_schema"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::GenerateRequest r = Prompt("hello", 4);
    c.edit(r);
    Result got = Generate(r);
    EXPECT_EQ(got.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << Describe(got.status);
    EXPECT_TRUE(absl::StrContains(got.status.error_message(), c.needle))
        << got.status.error_message().substr(0, 300);
    EXPECT_TRUE(got.tokens.empty());
  }
  // And the daemon still serves.
  Result after = Generate(Prompt("still serving", 3));
  EXPECT_TRUE(after.status.ok()) << Describe(after.status);
  EXPECT_FALSE(after.tokens.empty());
}

TEST_F(SamplingExtrasDaemonTest, LogprobsComeAlignedWithTheTokens) {
  v1::GenerateRequest r = Prompt("The quick brown fox", 12);
  r.set_logprobs(true);
  r.set_top_logprobs(4);
  Result got = Generate(r);
  ASSERT_TRUE(got.status.ok()) << Describe(got.status);
  ASSERT_FALSE(got.tokens.empty());
  int total = 0;
  for (const v1::GenerateResponse& m : got.responses) {
    ASSERT_EQ(m.logprobs_size(), m.token_ids_size());
    for (int i = 0; i < m.logprobs_size(); ++i) {
      const v1::TokenLogprob& lp = m.logprobs(i);
      EXPECT_EQ(lp.token_id(), m.token_ids(i));
      EXPECT_LE(lp.logprob(), 0.0f);
      ASSERT_EQ(lp.top_logprobs_size(), 4);
      // Greedy: the chosen token is the most likely one.
      EXPECT_EQ(lp.top_logprobs(0).token_id(), lp.token_id());
      EXPECT_FLOAT_EQ(lp.top_logprobs(0).logprob(), lp.logprob());
      for (int j = 1; j < 4; ++j) {
        EXPECT_LE(lp.top_logprobs(j).logprob(),
                  lp.top_logprobs(j - 1).logprob());
      }
      ++total;
    }
  }
  EXPECT_EQ(total, static_cast<int>(got.tokens.size()));
  // Without logprobs, none.
  Result plain = Generate(Prompt("The quick brown fox", 12));
  ASSERT_TRUE(plain.status.ok()) << Describe(plain.status);
  EXPECT_EQ(plain.tokens, got.tokens);
  for (const auto& m : plain.responses) EXPECT_EQ(m.logprobs_size(), 0);
}

TEST_F(SamplingExtrasDaemonTest, PenaltiesReachTheWorker) {
  Result plain = Generate(Prompt("abcabcabc", 24));
  ASSERT_TRUE(plain.status.ok()) << Describe(plain.status);
  v1::GenerateRequest r = Prompt("abcabcabc", 24);
  r.set_presence_penalty(1.5f);
  r.set_frequency_penalty(1.0f);
  Result penalised = Generate(r);
  ASSERT_TRUE(penalised.status.ok()) << Describe(penalised.status);
  EXPECT_FALSE(penalised.tokens.empty());
  EXPECT_NE(penalised.tokens, plain.tokens);
}

}  // namespace
}  // namespace lorad::testing
