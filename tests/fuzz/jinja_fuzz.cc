// Fuzzes the Jinja interpreter: chat templates come from model directories
// (outside input). Every input is parsed as a template and, when it parses,
// rendered against a conversation with tools, under small limits so that
// runaway templates end quickly with an error. Neither may crash, hang or
// trip a sanitizer. Rendered again asking for the {% generation %} spans,
// those must lie inside the text (which is not compared: strftime_now).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lorad/model/jinja.h"

namespace {

const lorad::model::jinja::Value& Context() {
  static const auto* ctx = new lorad::model::jinja::Value(
      lorad::model::jinja::Value::FromJson(nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": "Weather in Paris? é👍"},
      {"role": "assistant", "content": "",
       "tool_calls": [{"id": "call12345", "type": "function",
         "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
      {"role": "tool", "content": "{\"temp\": 21}"},
      {"role": "assistant", "content": "<think>\nhm\n</think>\n\nSunny.",
       "reasoning_content": "hm"},
      {"role": "user", "content": [{"type": "text", "text": "thanks"},
                                   {"type": "image"}]}
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather",
      "description": "d", "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "c"}}}}}],
    "add_generation_prompt": true,
    "bos_token": "<s>", "eos_token": "</s>", "d": {"a": 1, "b": [1, 2]}
  })")));
  return *ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto t = lorad::model::jinja::Template::Parse(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!t.ok()) return 0;
  lorad::model::jinja::Limits limits;
  limits.max_steps = 200'000;
  limits.max_output_bytes = size_t{1} << 20;
  limits.max_alloc_bytes = size_t{16} << 20;
  limits.max_range = 10'000;
  (void)(*t)->Render(Context(), limits);
  std::vector<std::pair<size_t, size_t>> spans;
  absl::StatusOr<std::string> text = (*t)->Render(Context(), limits, &spans);
  for (const auto& [begin, end] : spans) {
    if (!text.ok() || begin > end || end > text->size()) __builtin_trap();
  }
  return 0;
}
