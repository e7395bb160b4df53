#include "jobs/batch_input.h"

#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace lorad::server {
namespace {

v1::GenerateRequest Defaults() {
  v1::GenerateRequest d;
  d.set_max_new_tokens(16);
  d.set_temperature(0.5f);
  d.set_adapter("base-adapter");
  return d;
}

TEST(BatchInputTest, ParsesPromptsChatsAndSettings) {
  const std::string jsonl =
      "\xEF\xBB\xBF{\"id\": \"x\", \"prompt\": \"hi\"}\r\n"
      "\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"yo\"}], "
      "\"adapter\": \"a\", \"max_new_tokens\": 3, \"top_k\": 5, \"top_p\": "
      "0.9, \"seed\": 7, \"stop\": [\"\\n\"], \"repetition_penalty\": 1.1, "
      "\"temperature\": 0}\n"
      "{\"id\": 17, \"prompt\": \"z\", \"stop\": \"END\"}";
  auto lines = ParseBatchInput(jsonl, Defaults());
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_EQ(lines->size(), 3u);
  const BatchLine& first = (*lines)[0];
  EXPECT_EQ(first.index, 0);
  EXPECT_EQ(first.line, 1);
  EXPECT_EQ(first.id_json, "\"x\"");
  EXPECT_EQ(first.request.prompt(), "hi");
  EXPECT_EQ(first.request.max_new_tokens(), 16);
  EXPECT_EQ(first.request.adapter(), "base-adapter");
  const BatchLine& chat = (*lines)[1];
  EXPECT_EQ(chat.index, 1);
  EXPECT_EQ(chat.line, 3);
  ASSERT_EQ(chat.request.messages_size(), 1);
  EXPECT_EQ(chat.request.messages(0).content(), "yo");
  EXPECT_EQ(chat.request.adapter(), "a");
  EXPECT_EQ(chat.request.max_new_tokens(), 3);
  EXPECT_EQ(chat.request.top_k(), 5);
  EXPECT_FLOAT_EQ(chat.request.top_p(), 0.9f);
  EXPECT_EQ(chat.request.seed(), 7u);
  EXPECT_EQ(chat.request.temperature(), 0);
  ASSERT_EQ(chat.request.stop_size(), 1);
  EXPECT_EQ((*lines)[2].id_json, "17");
  EXPECT_EQ((*lines)[2].request.stop(0), "END");
}

TEST(BatchInputTest, ErrorsNameTheLineAndField) {
  struct Case {
    std::string jsonl, want;
  };
  const Case cases[] = {
      {"{\"prompt\": \"a\"}\nnot json\n", "line 2: not valid JSON"},
      {"[1]\n", "line 1: not a JSON object"},
      {"{\"prompt\": 1}\n", "line 1: field \"prompt\" must be a string"},
      {"{\"prompt\": \"a\", \"messages\": []}\n", "field \"messages\""},
      {"{\"id\": 1}\n", "exactly one of field \"prompt\" and \"messages\""},
      {"{\"messages\": [{\"role\": \"bot\", \"content\": \"x\"}]}\n",
       "field \"messages[0].role\""},
      {"{\"prompt\": \"a\", \"max_new_tokens\": 0}\n",
       "field \"max_new_tokens\""},
      {"{\"prompt\": \"a\", \"top_p\": 1.5}\n", "field \"top_p\""},
      {"{\"prompt\": \"a\", \"seed\": -1}\n", "field \"seed\""},
      {"{\"prompt\": \"a\", \"stop\": [1]}\n", "field \"stop\""},
      {"{\"prompt\": \"a\", \"temp\": 1}\n", "unknown field \"temp\""},
      {" \n\n", "no requests"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.jsonl);
    auto lines = ParseBatchInput(c.jsonl, Defaults());
    ASSERT_FALSE(lines.ok());
    EXPECT_TRUE(absl::IsInvalidArgument(lines.status()));
    EXPECT_NE(lines.status().message().find(c.want), std::string::npos)
        << lines.status().message();
  }
}

TEST(BatchInputTest, ResultLinesCarryIndexAndId) {
  BatchLine line;
  line.index = 4;
  line.id_json = "{\"k\":[1,2]}";
  v1::GenerateUsage usage;
  usage.set_completion_tokens(3);
  const std::string ok = BatchResultJson(line, "t\xC3\xA9xt", "length", usage);
  nlohmann::json j = nlohmann::json::parse(ok);
  EXPECT_EQ(j["index"], 4);
  EXPECT_EQ(j["id"]["k"][1], 2);
  EXPECT_EQ(j["text"], "t\xC3\xA9xt");
  EXPECT_EQ(j["usage"]["completion_tokens"], 3);
  EXPECT_EQ(ok.find('\n'), std::string::npos);
  EXPECT_FALSE(IsBatchErrorJson(ok));
  const std::string bad =
      BatchErrorJson(line, absl::NotFoundError("adapter x not found"));
  EXPECT_TRUE(IsBatchErrorJson(bad));
  EXPECT_EQ(nlohmann::json::parse(bad)["error"]["code"], "NOT_FOUND");
  // Invalid UTF-8 from a model never breaks the JSON.
  EXPECT_TRUE(nlohmann::json::accept(
      BatchResultJson(line, std::string("\xFF\xFE"), "stop", usage)));
}

}  // namespace
}  // namespace lorad::server
