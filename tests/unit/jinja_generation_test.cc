// {% generation %} spans (jinja::Template::Render's generation_spans): where
// transformers' apply_chat_template(return_assistant_tokens_mask=True) puts
// them, for blocks in the template body, in loops, in macros, in {% set %}
// blocks and inside each other, around non-ASCII text.
// tests/golden/jinja_generation_peer.py runs transformers.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lorad/model/jinja.h"
#include "nlohmann/json.hpp"

namespace lorad::model::jinja {
namespace {

using nlohmann::json;
using Spans = std::vector<std::pair<size_t, size_t>>;

absl::StatusOr<std::string> Render(const std::string& src, const json& messages,
                                   Spans* spans) {
  auto t = Template::Parse(src);
  if (!t.ok()) return t.status();
  return (*t)->Render(Value::FromJson(json{{"messages", messages},
                                           {"add_generation_prompt", false}}),
                      Limits(), spans);
}

const json kChat = json::parse(R"([
  {"role": "system", "content": "Sé breve."},
  {"role": "user", "content": "Café 你好?"},
  {"role": "assistant", "content": "こんにちは 😀"},
  {"role": "user", "content": "And again"},
  {"role": "assistant", "content": "Ça va 👍"}
])");

const std::string kChatMl =
    "{%- for m in messages %}"
    "{{- '<|im_start|>' + m.role + '\\n' }}"
    "{%- if m.role == 'assistant' %}{% generation %}"
    "{{- m.content + '<|im_end|>' }}{% endgeneration %}"
    "{%- else %}{{- m.content + '<|im_end|>' }}{% endif %}"
    "{{- '\\n' }}{%- endfor %}";

std::vector<std::string> Pieces(const std::string& text, const Spans& spans) {
  std::vector<std::string> out;
  for (const auto& [begin, end] : spans) {
    out.push_back(text.substr(begin, end - begin));
  }
  return out;
}

TEST(JinjaGenerationTest, SpansCoverWhatTheBlocksRendered) {
  Spans spans;
  absl::StatusOr<std::string> text = Render(kChatMl, kChat, &spans);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(Pieces(*text, spans),
            (std::vector<std::string>{"こんにちは 😀<|im_end|>",
                                      "Ça va 👍<|im_end|>"}));
  // The same text without asking, and no spans for a template without
  // blocks.
  absl::StatusOr<std::string> plain = Render(kChatMl, kChat, nullptr);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, *text);
  auto t = Template::Parse(kChatMl);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE((*t)->has_generation());
  auto none = Template::Parse("{{ messages[0].content }}");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE((*none)->has_generation());
  EXPECT_TRUE(Render("{{ messages[0].content }}", kChat, &spans).ok());
  EXPECT_TRUE(spans.empty());
}

// Where transformers' tracker does not see the block's own position (inside
// a macro, a set block or another block) the span starts where the
// top-level output holding it begins, with the block's length in
// characters: "é" is one character, two bytes.
TEST(JinjaGenerationTest, NestedBlocksStartWhereTransformersSees) {
  Spans spans;
  absl::StatusOr<std::string> text = Render(
      "{% macro m(x) %}[{% generation %}{{ x }}{% endgeneration %}]"
      "{% endmacro %}ab{{ m('éé') }}cd",
      kChat, &spans);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "ab[éé]cd");
  // Two characters from byte 2: "[é".
  EXPECT_EQ(spans, (Spans{{2, 5}}));
  text = Render(
      "x{% generation %}é{% generation %}yz{% endgeneration %}"
      "{% endgeneration %}",
      kChat, &spans);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "xéyz");
  // The inner block ("yz", two characters) from where the outer one
  // starts: "éy"; the outer one: "éyz".
  EXPECT_EQ(spans, (Spans{{1, 4}, {1, 5}}));
  // A block whose text never reaches the output: six characters from where
  // the output began, clipped to it (transformers' span runs past the end).
  text = Render(
      "{% macro m() %}{% generation %}abcdef{% endgeneration %}{% endmacro %}"
      "{% set x = m() %}xy",
      kChat, &spans);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "xy");
  EXPECT_EQ(spans, (Spans{{0, 2}}));
}

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Character offsets of byte spans of `text`.
Spans ToChars(const std::string& text, const Spans& spans) {
  const auto chars = [&](size_t bytes) {
    size_t n = 0;
    for (size_t i = 0; i < bytes; ++i) {
      n += (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
    }
    return n;
  };
  Spans out;
  for (const auto& [begin, end] : spans) {
    out.emplace_back(chars(begin), chars(end));
  }
  return out;
}

TEST(JinjaGenerationTest, SpansMatchTransformers) {
  if (!std::filesystem::exists(LORAD_PYTHON)) GTEST_SKIP() << "no venv";
  const std::vector<std::string> templates = {
      kChatMl,
      // Whitespace control on the tags, a block per turn that also holds
      // the header, and one that renders nothing.
      "{%- for m in messages -%}{%- if m.role == 'assistant' -%}"
      "{%- generation -%}  <a>{{ m.content }}</a>\n  {%- endgeneration -%}"
      "{%- else %}<{{ m.role }}>{{ m.content }}\n{% endif -%}"
      "{%- endfor %}{% generation %}{% endgeneration %}end",
      // In a macro, in a set block, nested.
      "{% macro turn(m) %}<{{ m.role }}>{% generation %}{{ m.content }}"
      "{% endgeneration %}</>{% endmacro %}"
      "{% for m in messages %}{% if m.role == 'assistant' %}{{ turn(m) }}"
      "{% else %}{{ m.content }}{% endif %}{% endfor %}"
      "{% set tail %}T{% generation %}ü{% endgeneration %}{% endset %}"
      "{{ tail }}{% generation %}Ж{% generation %}ж{% endgeneration %}"
      "{% endgeneration %}",
      // What a block sets stays in it (jinja2 renders it as a caller
      // macro); a namespace changes; loop variables are seen.
      "{% set x = 1 %}{% set ns = namespace(a=1) %}"
      "{% for m in messages %}{% generation %}{% set x = loop.index %}"
      "{% set ns.a = ns.a + x %}{% set y = 3 %}{{ x }}{{ y }}"
      "{% endgeneration %}{% endfor %}|{{ x }}{{ y }}{{ ns.a }}"
      "{% generation %}{% set x = 9 %}{% set z = 4 %}[{{ x }}]"
      "{% endgeneration %}{{ x }}{{ z }}",
  };
  json cases = json::array();
  for (const std::string& t : templates) {
    cases.push_back({{"template", t}, {"messages", kChat}});
  }
  const std::string path = ::testing::TempDir() + "/jinja_generation.json";
  std::ofstream(path) << cases.dump();
  const std::string command =
      absl::StrCat(LORAD_PYTHON, " ", LORAD_SOURCE_DIR,
                   "/tests/golden/jinja_generation_peer.py ", path);
  std::FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0;) {
    output.append(buffer, n);
  }
  ASSERT_EQ(pclose(pipe), 0) << output;
  const json want = json::parse(output, nullptr, false);
  ASSERT_TRUE(want.is_array()) << output;
  ASSERT_EQ(want.size(), templates.size());
  for (size_t i = 0; i < templates.size(); ++i) {
    SCOPED_TRACE(templates[i]);
    Spans spans;
    absl::StatusOr<std::string> text = Render(templates[i], kChat, &spans);
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, want[i]["text"].get<std::string>());
    Spans want_spans;
    for (const json& s : want[i]["spans"]) {
      want_spans.emplace_back(s[0].get<size_t>(), s[1].get<size_t>());
    }
    EXPECT_FALSE(want_spans.empty());
    EXPECT_EQ(ToChars(*text, spans), want_spans);
  }
}

}  // namespace
}  // namespace lorad::model::jinja
