// The Jinja interpreter on its own: semantics jinja2 has that the goldens
// (chat_template_test) may not reach, every error path, and the limits that
// keep a hostile template from hanging or exhausting memory.
#include "lorad/model/jinja.h"

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "test_dir.h"

namespace lorad::model::jinja {
namespace {

absl::StatusOr<std::string> Render(const std::string& src,
                                   const nlohmann::ordered_json& ctx = {},
                                   const Limits& limits = Limits()) {
  auto t = Template::Parse(src);
  if (!t.ok()) return t.status();
  return (*t)->Render(
      Value::FromJson(ctx.is_null() ? nlohmann::ordered_json::object() : ctx),
      limits);
}

std::string Ok(const std::string& src, const nlohmann::ordered_json& ctx = {}) {
  auto r = Render(src, ctx);
  EXPECT_TRUE(r.ok()) << src << " -> " << r.status();
  return r.ok() ? *r : "<error>";
}

std::string Err(const std::string& src, const nlohmann::ordered_json& ctx = {},
                const Limits& limits = Limits()) {
  auto r = Render(src, ctx, limits);
  EXPECT_FALSE(r.ok()) << src << " rendered " << *r;
  if (r.ok()) return "";
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  return std::string(r.status().message());
}

const std::string kSnippets =
    std::string(LORAD_GOLDEN_DIR) + "/chat_templates/snippets.json";

nlohmann::ordered_json LoadJson(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::ordered_json::parse(ss.str());
}

// Filters, tests, methods, operators, slices, loops and macros one at a
// time, against jinja2 as transformers sets it up (make_snippet_goldens.py).
TEST(JinjaTest, SnippetsRenderAsJinja2Does) {
  nlohmann::ordered_json rows = LoadJson(kSnippets);
  ASSERT_GT(rows.size(), 40u);
  for (const auto& row : rows) {
    const std::string src = row["src"];
    auto r = Render(src);
    if (row.contains("expected")) {
      ASSERT_TRUE(r.ok()) << src << ": " << r.status();
      EXPECT_EQ(*r, row["expected"].get<std::string>()) << src;
    } else {
      EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << src;
    }
  }
}

TEST(JinjaTest, SnippetGoldensAreJinja2sCurrentOutput) {
  const std::string py = LORAD_PYTHON;
  if (!std::filesystem::exists(py) ||
      std::system((py + " -c 'import transformers' >/dev/null 2>&1").c_str()) !=
          0) {
    GTEST_SKIP() << "no transformers in " << py;
  }
  const std::string out = FreshTestDir("jinja") + "/snippets.json";
  const std::string cmd = py + " " + std::string(LORAD_GOLDEN_DIR) +
                          "/chat_templates/make_snippet_goldens.py --out " +
                          out + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  EXPECT_EQ(LoadJson(out), LoadJson(kSnippets));
}

TEST(JinjaTest, WhitespaceControlAsTransformersSetsIt) {
  // trim_blocks drops the newline after a block tag; lstrip_blocks the
  // indentation before one; neither touches {{ }}.
  EXPECT_EQ(Ok("{% if true %}\n  a\n  {% endif %}\nb"), "  a\nb");
  EXPECT_EQ(Ok("x  {{ 1 }}  \ny"), "x  1  \ny");
  EXPECT_EQ(Ok("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  EXPECT_EQ(Ok("a {{- 1 -}} b"), "a1b");
  EXPECT_EQ(Ok("  {%+ if true %}x{% endif %}"), "  x");
  EXPECT_EQ(Ok("{# comment #}\nx"), "x");
  EXPECT_EQ(Ok("a\n    {# c #}\nb"), "a\nb");
  // One trailing newline of the template is dropped; CRLF becomes LF.
  EXPECT_EQ(Ok("a\r\nb\n"), "a\nb");
  EXPECT_EQ(Ok("a\n\n"), "a\n");
}

TEST(JinjaTest, UndefinedBehavesAsJinja2DefaultUndefined) {
  EXPECT_EQ(Ok("[{{ nope }}]"), "[]");
  EXPECT_EQ(Ok("{% for x in nope %}x{% else %}none{% endfor %}"), "none");
  EXPECT_EQ(Ok("{{ nope is defined }} {{ nope is undefined }}"), "False True");
  EXPECT_EQ(Ok("{{ m.missing is defined }}", {{"m", {{"a", 1}}}}), "False");
  EXPECT_EQ(Ok("{{ nope|length }} {{ nope|default('d') }} {{ not nope }}"),
            "0 d True");
  EXPECT_EQ(Ok("{{ 'a' ~ nope ~ 'b' }} {{ nope == nope2 }}"), "ab True");
  // None's missing attribute is undefined, not an error.
  EXPECT_EQ(Ok("{{ x.y is defined }}", {{"x", nullptr}}), "False");
  // Anything else on undefined is an error naming it and the place.
  EXPECT_EQ(Err("\n  {{ nope.attr }}"),
            "line 2, column 10: 'nope' is undefined");
  EXPECT_NE(Err("{{ nope + 1 }}").find("'nope' is undefined"),
            std::string::npos);
  EXPECT_NE(Err("{{ nope() }}").find("'nope' is undefined"), std::string::npos);
}

TEST(JinjaTest, ScopingOfLoopsSetAndNamespaces) {
  EXPECT_EQ(Ok("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}"
               "{{ x }}"),
            "1");
  EXPECT_EQ(Ok("{% set ns = namespace(x=1) %}{% for i in [1, 2] %}"
               "{% set ns.x = ns.x + i %}{% endfor %}{{ ns.x }}"),
            "4");
  EXPECT_EQ(Ok("{% if true %}{% set x = 5 %}{% endif %}{{ x }}"), "5");
  EXPECT_EQ(Ok("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }},{% endfor %}"),
            "3,7,");
  EXPECT_EQ(Ok("{% for k, v in d.items() %}{{ k }}{{ v }}{% endfor %}",
               {{"d", {{"z", 1}, {"a", 2}}}}),
            "z1a2");
  EXPECT_EQ(Ok("{% for x in [1, 2, 3, 4] if x is even %}{{ loop.index }}:{{ x "
               "}}/{{ loop.length }} {% endfor %}"),
            "1:2/2 2:4/2 ");
  EXPECT_EQ(Ok("{% macro f(a, b='B') %}{{ a }}{{ b }}{{ g }}{% endmacro %}"
               "{% set g = 'G' %}{{ f(1) }} {{ f(b=2, a=3) }}"),
            "1BG 32G");
  EXPECT_NE(Err("{% set ns = namespace() %}{% set ns.self = [ns] %}")
                .find("cannot hold a namespace"),
            std::string::npos);
  EXPECT_NE(Err("{% set s = 'x' %}{% set s.a = 1 %}").find("not a namespace"),
            std::string::npos);
}

TEST(JinjaTest, PythonValueSemantics) {
  EXPECT_EQ(Ok("{{ 1 == 1.0 }} {{ true == 1 }} {{ [1, 'a'] }} {{ 1.0 }} "
               "{{ 1e16 }} {{ 1.5e-5 }} {{ 2 ** 62 }} {{ 10 // -3 }}"),
            "True True [1, 'a'] 1.0 1e+16 1.5e-05 4611686018427387904 -4");
  EXPECT_EQ(Ok("{{ 'é👍x'|length }} {{ 'é👍x'[1] }} {{ 'é👍x'[::-1] }}"),
            "3 👍 x👍é");
  EXPECT_EQ(Ok("{{ d|tojson }}",
               {{"d", {{"b", "é\u2028\x01"}, {"a", {1.5, nullptr}}}}}),
            "{\"b\": \"é\u2028\\u0001\", \"a\": [1.5, null]}");
  EXPECT_EQ(Ok("{{ d|tojson(indent=2, sort_keys=true) }}",
               {{"d", {{"b", 1}, {"a", {1}}}}}),
            "{\n  \"a\": [\n    1\n  ],\n  \"b\": 1\n}");
  EXPECT_EQ(Ok("{{ 'x'|tojson(ensure_ascii=true) }} {{ 'é'|tojson(true) }}"),
            "\"x\" \"\\u00e9\"");
  EXPECT_NE(Err("{{ 2 ** 64 }}").find("integer overflow"), std::string::npos);
  EXPECT_NE(Err("{{ 1 // 0 }}").find("division or modulo by zero"),
            std::string::npos);
  EXPECT_NE(Err("{{ 'a' + 1 }}").find("unsupported operand types for +"),
            std::string::npos);
  EXPECT_NE(Err("{{ nope|tojson }}").find("not JSON serializable"),
            std::string::npos);
}

TEST(JinjaTest, RaiseExceptionCarriesTheMessageAndPlace) {
  EXPECT_EQ(Err("a\n{{ raise_exception('Roles must alternate!') }}"),
            "line 2, column 19: the template raised an error: Roles must "
            "alternate!");
}

TEST(JinjaTest, StrftimeNowFormatsTheLocalDate) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char year[8];
  std::strftime(year, sizeof year, "%Y", &tm);
  EXPECT_EQ(Ok("{{ strftime_now('%Y') }}"), year);
}

TEST(JinjaTest, UnsupportedConstructsNameTheLine) {
  EXPECT_EQ(Err("ok\n\n  {% include 'x.jinja' %}"),
            "line 3, column 6: unsupported tag 'include'");
  EXPECT_EQ(Err("{{ x }}\n{{ x|wordwrap }}"),
            "line 2, column 5: unsupported filter 'wordwrap'");
  EXPECT_EQ(Err("{{ x is prime }}"),
            "line 1, column 6: unsupported test 'prime'");
  EXPECT_EQ(Err("{{ 'a {}'.format(1) }}"),
            "line 1, column 17: str.format() is not supported");
  EXPECT_EQ(Err("{{ lipsum(2) }}"), "line 1, column 10: 'lipsum' is undefined");
  EXPECT_EQ(Err("{% for x in y %}"), "line 1, column 17: missing {% endfor %}");
  EXPECT_EQ(Err("{% if %}"), "line 1, column 7: unexpected '%}'");
  EXPECT_EQ(Err("{{ 'abc }}"),
            "line 1, column 4: string literal is not closed");
  EXPECT_EQ(Err("{{ (1 }}"), "line 1, column 7: unexpected '}'");
  EXPECT_EQ(Err("{% break %}"), "line 1, column 4: 'break' outside a for loop");
  EXPECT_EQ(Err("{{ 1 }"), "line 1, column 6: unexpected '}'");
  EXPECT_EQ(Err("{% for x in y %}{% else %}{% break %}{% endfor %}"),
            "line 1, column 30: 'break' outside a for loop");
  EXPECT_EQ(Err("{% for x in y %}{% macro m() %}{% continue %}{% endmacro %}"
                "{% endfor %}"),
            "line 1, column 35: 'continue' outside a for loop");
}

TEST(JinjaTest, RunawayMacroRecursionErrorsInsteadOfOverflowing) {
  const std::string msg =
      Err("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_NE(msg.find("nested deeper than"), std::string::npos) << msg;
}

TEST(JinjaTest, LimitsStopHostileTemplates) {
  Limits small;
  small.max_steps = 10'000;
  EXPECT_NE(Err("{% for i in range(1000) %}{% for j in range(1000) %}"
                "{% endfor %}{% endfor %}",
                {}, small)
                .find("more than 10000 steps"),
            std::string::npos);
  // Doubling a string 64 times would need 2^64 bytes.
  EXPECT_NE(Err("{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
                "{% set ns.s = ns.s + ns.s %}{% endfor %}")
                .find("bytes of values"),
            std::string::npos);
  EXPECT_NE(Err("{{ 'x' * 9000000000000000000 }}").find("bytes of values"),
            std::string::npos);
  Limits out_limit;
  out_limit.max_output_bytes = 100;
  EXPECT_NE(Err("{% for i in range(100) %}xx{% endfor %}", {}, out_limit)
                .find("the output passed 100 bytes"),
            std::string::npos);
  EXPECT_NE(Err("{{ range(100000000) }}").find("more than 1000000 elements"),
            std::string::npos);
  EXPECT_NE(Err("{% set ns = namespace(l=[]) %}{% for i in range(100) %}"
                "{% set ns.l = [ns.l] %}{% endfor %}")
                .find("nested deeper than 64"),
            std::string::npos);
  // Work on big values counts too: a scan per iteration of a 10 MB string,
  // a loop over a 20 MB string, a quadratic unique.
  EXPECT_NE(Err("{% set s = 'x' * 10000000 %}{% for i in range(1000000) %}"
                "{{ s[i] }}{% endfor %}")
                .find("bytes of values"),
            std::string::npos);
  EXPECT_NE(
      Err("{% for c in 'x' * 20000000 %}{% endfor %}").find("bytes of values"),
      std::string::npos);
  EXPECT_NE(Err("{{ range(200000)|unique|list|length }}").find("steps"),
            std::string::npos);
  // Printing a list that holds one big string many times is bounded before
  // the text is built, however it is printed.
  for (const std::string& print :
       {"{{ l }}", "{{ l ~ '' }}", "{{ l|tojson }}", "{{ l|string }}",
        "{{ l|join }}", "{{ {'k': l}|tojson(indent=2) }}"}) {
    EXPECT_NE(Err("{% set s = 'x' * 1000000 %}{% set l = [s] * 1000 %}" + print)
                  .find("bytes of values"),
              std::string::npos)
        << print;
  }
  EXPECT_EQ(Ok("{% set l = ['x' * 1000000] * 1000 %}{{ {}[l] is defined }}"),
            "False");
  // Long operator, filter and postfix chains build deep trees too.
  std::string sum = "{{ 1", filters = "{{ 'x'", attrs = "{{ x";
  for (int i = 0; i < 100000; ++i) {
    sum += "+1";
    filters += "|trim";
    attrs += ".a";
  }
  for (const std::string& chain : {sum, filters, attrs}) {
    EXPECT_NE(Err(chain + " }}").find("expression nested deeper than"),
              std::string::npos);
  }
  std::string deep(300, '(');
  EXPECT_NE(Err("{{ " + deep + "1" + std::string(300, ')') + " }}")
                .find("nested deeper than"),
            std::string::npos);
}

TEST(JinjaTest, ParseIsSafeOnTruncatedInput) {
  const std::string src =
      "{%- for m in messages if m.role != 'x' -%}{{ m['content'] | trim | "
      "tojson(indent=2) }}{% set ns.a = (1, [2], {'k': -3 ** 2}) %}"
      "{% endfor %}";
  for (size_t n = 0; n <= src.size(); ++n) {
    auto t = Template::Parse(src.substr(0, n));
    if (t.ok()) (void)(*t)->Render(Value::Dict({}));
  }
}

}  // namespace
}  // namespace lorad::model::jinja
