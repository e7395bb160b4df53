// Chat templates executed: lorad's render of published template styles
// equals transformers' apply_chat_template(..., tokenize=False)
// (tests/golden/chat_templates/goldens.json, made by make_goldens.py, which
// is rerun here against the installed transformers when the venv has it),
// and where a model directory's template is read from.
#include "lorad/model/chat_template.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "test_dir.h"

namespace lorad::model {
namespace {

namespace fs = std::filesystem;

const std::string kDir = std::string(LORAD_GOLDEN_DIR) + "/chat_templates";

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

nlohmann::ordered_json LoadGoldens(const std::string& path) {
  return nlohmann::ordered_json::parse(Slurp(path));
}

TEST(ChatTemplateTest, RendersEqualTransformersGoldens) {
  nlohmann::ordered_json goldens = LoadGoldens(kDir + "/goldens.json");
  ASSERT_GT(goldens.size(), 100u);
  std::set<std::string> templates;
  int rendered = 0, errors = 0;
  for (const auto& row : goldens) {
    const std::string name = row["template"];
    SCOPED_TRACE(name + " / " + row["case"].get<std::string>() +
                 " / add_generation_prompt=" +
                 (row["add_generation_prompt"].get<bool>() ? "true" : "false"));
    auto tmpl =
        ChatTemplate::FromTemplateText(Slurp(kDir + "/" + name + ".jinja"));
    ASSERT_TRUE(tmpl.ok()) << tmpl.status();
    for (auto it = row["special_tokens"].begin();
         it != row["special_tokens"].end(); ++it) {
      tmpl->special_tokens.emplace_back(it.key(), it->get<std::string>());
    }
    ChatRenderOptions options;
    options.add_generation_prompt = row["add_generation_prompt"];
    options.tools = row["tools"];
    options.extra = row["extra"];
    auto out = RenderChatMessages(*tmpl, row["messages"], options);
    templates.insert(name);
    if (row.contains("expected")) {
      ASSERT_TRUE(out.ok()) << out.status();
      EXPECT_EQ(*out, row["expected"].get<std::string>());
      ++rendered;
    } else {
      ASSERT_FALSE(out.ok()) << "rendered " << *out;
      EXPECT_TRUE(absl::IsInvalidArgument(out.status()));
      const std::string want = row["error_type"] == "RecursionError"
                                   ? "nested deeper than"
                                   : row["error"].get<std::string>();
      EXPECT_NE(out.status().message().find(want), std::string::npos)
          << out.status() << " lacks " << want;
      ++errors;
    }
  }
  EXPECT_GE(templates.size(), 8u);
  EXPECT_GT(rendered, 150);
  EXPECT_GT(errors, 20);
}

// The committed goldens are what the installed transformers renders now.
TEST(ChatTemplateTest, GoldensAreTransformersCurrentOutput) {
  const std::string py = LORAD_PYTHON;
  if (!fs::exists(py) ||
      std::system((py + " -c 'import transformers' >/dev/null 2>&1").c_str()) !=
          0) {
    GTEST_SKIP() << "no transformers in " << py;
  }
  const std::string dir = FreshTestDir("chat_template");
  const std::string out = dir + "/goldens.json";
  const std::string cmd =
      py + " " + kDir + "/make_goldens.py --out " + out + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  EXPECT_EQ(LoadGoldens(out), LoadGoldens(kDir + "/goldens.json"));
}

TEST(ChatTemplateTest, LoadReadsChatTemplateJinjaFirst) {
  const std::string dir = FreshTestDir("chat_template");
  Write(dir + "/chat_template.jinja",
        "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>{% endif %}\n");
  Write(dir + "/tokenizer_config.json",
        R"({"chat_template": "ignored", "bos_token": {"content": "<s>",
            "lstrip": false}, "eos_token": "</s>", "pad_token": null})");
  auto t = ChatTemplate::Load(dir);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->origin, "chat_template.jinja");
  EXPECT_EQ(t->end_of_turn, "<|im_end|>");
  EXPECT_EQ(*RenderChat(*t, {{"user", "Hi"}}), "<s><user>Hi<|im_start|>");
  ChatRenderOptions no_prompt;
  no_prompt.add_generation_prompt = false;
  EXPECT_EQ(*RenderChatMessages(*t,
                                nlohmann::ordered_json::parse(
                                    R"([{"role": "user", "content": "Hi"},
                            {"role": "assistant", "content": "Yo"}])"),
                                no_prompt),
            "<s><user>Hi<assistant>Yo");
}

TEST(ChatTemplateTest, LoadReadsTokenizerConfigStringOrNamedList) {
  const std::string dir = FreshTestDir("chat_template");
  Write(dir + "/tokenizer_config.json",
        R"({"chat_template": "{{ eos_token }}{{ messages[0].content }}",
            "eos_token": "<|eot_id|>"})");
  auto t = ChatTemplate::Load(dir);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->origin, "tokenizer_config.json");
  EXPECT_EQ(*RenderChat(*t, {{"user", "Hi"}}), "<|eot_id|>Hi");

  Write(dir + "/tokenizer_config.json",
        R"({"chat_template": [{"name": "tool_use", "template": "T"},
                              {"name": "default", "template": "D{{ 1 }}"}]})");
  t = ChatTemplate::Load(dir);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*RenderChat(*t, {{"user", "Hi"}}), "D1");

  Write(dir + "/tokenizer_config.json",
        R"({"chat_template": [{"name": "tool_use", "template": "T"}]})");
  t = ChatTemplate::Load(dir);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("no template named \"default\""),
            std::string::npos);
}

TEST(ChatTemplateTest, ATemplateThatDoesNotParseIsALoadError) {
  const std::string dir = FreshTestDir("chat_template");
  Write(dir + "/tokenizer_config.json",
        R"({"chat_template": "{% for m in messages %}\n{{ m|frobnicate }}"})");
  auto t = ChatTemplate::Load(dir);
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(t.status()));
  EXPECT_EQ(std::string(t.status().message()),
            "tokenizer_config.json: chat template: line 2, column 5: "
            "unsupported filter 'frobnicate'");
}

TEST(ChatTemplateTest, NoTemplateKeepsThePlainForm) {
  const std::string dir = FreshTestDir("chat_template");
  auto t = ChatTemplate::Load(dir);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->jinja, nullptr);
  EXPECT_EQ(*RenderChat(*t, {{"system", "Be brief."}, {"user", "Hi"}}),
            "system: Be brief.\nuser: Hi\nassistant:");
  EXPECT_EQ(t->end_of_turn, "");
}

TEST(ChatTemplateTest, RenderChatChecksRolesAndRaisedErrors) {
  auto t = ChatTemplate::FromTemplateText(
      "{% if messages|length > 1 %}{{ raise_exception('one message only') }}"
      "{% endif %}{{ messages[0].content }}");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(RenderChat(*t, {}).status()));
  EXPECT_NE(RenderChat(*t, {{"user<|im_end|>", "x"}})
                .status()
                .message()
                .find("messages[0].role must be one of"),
            std::string::npos);
  auto raised = RenderChat(*t, {{"user", "a"}, {"user", "b"}});
  ASSERT_FALSE(raised.ok());
  EXPECT_EQ(std::string(raised.status().message()),
            "chat template: line 1, column 47: the template raised an error: "
            "one message only");
}

}  // namespace
}  // namespace lorad::model
