// The OpenAI-compatible API through the real `openai` Python SDK (and curl)
// against the real lorad + worker, with API tokens: models, chat and text
// completions streamed and not, for the base and two adapters at once
// (equal to gRPC Generate's greedy output), usage, files, fine-tuning jobs
// followed to the end and then served, and the API's error statuses from
// real bad requests.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "auth_util.h"
#include "client_util.h"
#include "daemon_process.h"
#include "grpcpp/create_channel.h"
#include "serving_util.h"

namespace lorad::testing {
namespace {

constexpr char kAdmin[] = "tok-admin-0123456789";
constexpr char kReader[] = "tok-reader-0123456789";

std::string Script() {
  return std::string(LORAD_SOURCE_DIR) + "/tests/integration/openai_client.py";
}

// Runs a scenario of openai_client.py; its JSON output.
nlohmann::json RunScenario(const std::vector<std::string>& args) {
  CommandResult r = RunCommand(absl::StrCat(LORAD_PYTHON, " ", Script(), " ",
                                            absl::StrJoin(args, " "), " 2>&1"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  if (r.exit_code != 0) return nullptr;
  // The JSON object is the last line.
  std::string text = r.output;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  const size_t line = text.rfind('\n');
  nlohmann::json out = nlohmann::json::parse(
      line == std::string::npos ? text : text.substr(line + 1), nullptr, false);
  EXPECT_FALSE(out.is_discarded()) << r.output;
  return out;
}

class OpenAiApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteTokensFile(dir_.path() + "/tokens",
                    {{kAdmin, "alice admin"}, {kReader, "rita reader"}});
    auto daemon = StartLogged(
        dir_.path() + "/data",
        {absl::StrCat("--worker_binary=", WorkerBinary()),
         absl::StrCat("--auth_tokens_file=", dir_.path(), "/tokens"),
         "--http_max_body_bytes=1048576"},
        dir_.path() + "/lorad.log");
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = *std::move(daemon);
    ASSERT_FALSE(daemon_->http_address().empty());
    base_url_ = absl::StrCat("http://", daemon_->http_address(), "/v1");
    channel_ = grpc::CreateChannel(daemon_->address(),
                                   grpc::InsecureChannelCredentials());
  }

  // Greedy gRPC Generate of openai_client.py's chat, 12 tokens at most.
  std::string GrpcChat(const std::string& adapter) {
    auto stub = v1::Inference::NewStub(channel_);
    v1::GenerateRequest req;
    req.set_adapter(adapter);
    req.set_max_new_tokens(12);
    auto* sys = req.add_messages();
    sys->set_role("system");
    sys->set_content("You are terse.");
    auto* user = req.add_messages();
    user->set_role("user");
    user->set_content("Say something about adapters.");
    auto ctx = AuthContext(kAdmin, absl::Minutes(5));
    auto reader = stub->Generate(ctx.get(), req);
    std::string text;
    v1::GenerateResponse m;
    while (reader->Read(&m)) text += m.text();
    EXPECT_TRUE(reader->Finish().ok());
    return text;
  }

  TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::string base_url_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(OpenAiApiTest, SdkChatsWithTheBaseAndTwoAdaptersAsGrpcDoes) {
  auto adapters = v1::Adapters::NewStub(channel_);
  for (const auto& [name, seed] : std::vector<std::pair<std::string, uint64_t>>{
           {"alpha", 1}, {"beta", 7}}) {
    AdapterSpec spec;
    spec.seed = seed;
    v1::Adapter adapter;
    grpc::Status s = UploadAdapter(*adapters, name, MakeTinyAdapter(spec),
                                   &adapter, 700, kAdmin);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  nlohmann::json out =
      RunScenario({"chat", base_url_, kAdmin, "tiny", "alpha", "beta"});
  ASSERT_TRUE(out.is_object());
  std::set<std::string> texts;
  for (const std::string model : {"tiny", "alpha", "beta"}) {
    ASSERT_TRUE(out.contains(model)) << out;
    const std::string grpc_text = GrpcChat(model == "tiny" ? "" : model);
    EXPECT_EQ(out[model]["text"].get<std::string>(), grpc_text) << model;
    EXPECT_GT(out[model]["prompt_tokens"].get<int>(), 0);
    texts.insert(grpc_text);
  }
  // The adapters change the output: three different answers.
  EXPECT_EQ(texts.size(), 3u);
}
TEST_F(OpenAiApiTest, SdkFineTunesFollowsEventsAndChatsWithTheResult) {
  const std::string train = dir_.path() + "/train.jsonl";
  std::ofstream(train) << PromptCompletionJsonl(8);
  nlohmann::json out = RunScenario({"finetune", base_url_, kAdmin, train});
  ASSERT_TRUE(out.is_object());
  EXPECT_EQ(out["model"], "oa-ft");
  EXPECT_GE(out["checkpoints"].get<int>(), 1);
  // The job is lorad's own: gRPC sees it succeeded, and its adapter serves
  // the same text over gRPC.
  auto stub = v1::FineTuning::NewStub(channel_);
  v1::GetFineTuneJobRequest get;
  get.set_job_id(out["job"].get<std::string>());
  v1::FineTuneJob job;
  auto ctx = AuthContext(kAdmin);
  ASSERT_TRUE(stub->GetJob(ctx.get(), get, &job).ok());
  EXPECT_EQ(job.state(), v1::SUCCEEDED);
  EXPECT_EQ(job.step(), 4);
}

TEST_F(OpenAiApiTest, BadRequestsGetTheApisErrorStatusesAndTheDaemonServes) {
  const std::string bad = dir_.path() + "/bad.jsonl";
  std::ofstream(bad) << "{\"prompt\": \"a\", \"completion\": \"b\"}\n"
                     << "{\"nothing\": 1}\n";
  nlohmann::json out = RunScenario({"errors", base_url_, kAdmin, kReader, bad});
  ASSERT_TRUE(out.is_object());
  // The messages say what was wrong.
  EXPECT_NE(out["400"].get<std::string>().find("temperature"),
            std::string::npos);
  EXPECT_NE(out["404"].get<std::string>().find("no-such-adapter"),
            std::string::npos);
  EXPECT_NE(out["413"].get<std::string>().find("1048576"), std::string::npos);
  EXPECT_NE(out["422"].get<std::string>().find("line 2"), std::string::npos)
      << out["422"];
}

TEST_F(OpenAiApiTest, JsonModeAlwaysParsesAndSchemasAreAlwaysMatched) {
  nlohmann::json out = RunScenario({"json", base_url_, kAdmin});
  ASSERT_TRUE(out.is_object());
  EXPECT_EQ(out["objects"], 50);
  EXPECT_EQ(out["schemas"], 20);
}

TEST_F(OpenAiApiTest, LogprobsAndPenaltiesInBothShapes) {
  nlohmann::json out = RunScenario({"logprobs", base_url_, kAdmin});
  ASSERT_TRUE(out.is_object());
  EXPECT_FALSE(out["tokens"].empty());
}

TEST_F(OpenAiApiTest, CurlStreamsServerSentEventsEndingInDone) {
  CommandResult r = RunCommand(
      absl::StrCat("curl -sN --max-time 120 -H 'Authorization: Bearer ", kAdmin,
                   "' ", base_url_,
                   "/chat/completions -d '{\"model\":\"tiny\",\"stream\":true,"
                   "\"max_tokens\":5,\"temperature\":0,\"messages\":[{\"role\":"
                   "\"user\",\"content\":\"hi\"}]}'"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("data: {"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"finish_reason\":\"length\""), std::string::npos)
      << r.output;
  const std::string done = "data: [DONE]\n\n";
  ASSERT_GE(r.output.size(), done.size());
  EXPECT_EQ(r.output.substr(r.output.size() - done.size()), done);
  CommandResult health = RunCommand(
      absl::StrCat("curl -s http://", daemon_->http_address(), "/health"));
  EXPECT_NE(health.output.find("ok"), std::string::npos);
}

TEST(OpenAiApiRateTest, OverTheRateLimitIs429WithRetryAfter) {
  TempDir dir;
  WriteTokensFile(dir.path() + "/tokens", {{kAdmin, "alice admin"}});
  auto daemon =
      StartLogged(dir.path() + "/data",
                  {absl::StrCat("--worker_binary=", WorkerBinary()),
                   absl::StrCat("--auth_tokens_file=", dir.path(), "/tokens"),
                   "--rate_limit_per_token=0.05", "--rate_burst_per_token=3"},
                  dir.path() + "/lorad.log");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  nlohmann::json out = RunScenario(
      {"ratelimit", absl::StrCat("http://", (*daemon)->http_address(), "/v1"),
       kAdmin});
  ASSERT_TRUE(out.is_object());
  EXPECT_GE(std::stoi(out["retry_after"].get<std::string>()), 1);
}

}  // namespace
}  // namespace lorad::testing
