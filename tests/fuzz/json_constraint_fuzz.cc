// Fuzzes JSON constrained decoding: the input is a JSON Schema (outside
// input: every response_format) compiled for the tiny byte-level tokenizer
// or the GPT-2 golden one (first byte); a schema that compiles is then
// walked with random allowed tokens, seeded by the input. Traps when a
// mask allows nothing before the end, Accept refuses an allowed token, the
// output is not complete within a budget of its minimum length, or the
// output does not parse.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "lorad/model/json_constraint.h"
#include "lorad/model/tokenizer.h"
#include "nlohmann/json.hpp"

namespace {

using lorad::model::JsonConstraintFactory;
using lorad::model::Tokenizer;

struct Loaded {
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<JsonConstraintFactory> factory;
};

const Loaded& Load(int which) {
  static Loaded cache[2];
  Loaded& l = cache[which];
  if (!l.factory) {
    auto t = which == 0
                 ? Tokenizer::FromJson(
                       lorad::model::MakeByteLevelTokenizerJson(), "tiny")
                 : Tokenizer::FromFile(LORAD_GOLDEN_DIR
                                       "/tokenizer/gpt2.tokenizer.json");
    if (!t.ok()) __builtin_trap();
    l.tokenizer = *std::move(t);
    auto f = JsonConstraintFactory::Create(*l.tokenizer);
    if (!f.ok()) __builtin_trap();
    l.factory = *std::move(f);
  }
  return l;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Loaded& l = Load(data[0] & 1);
  const std::string_view schema(reinterpret_cast<const char*>(data) + 1,
                                size - 1);
  const bool object = (data[0] & 2) != 0;
  const char* type = object ? "json_object" : "json_schema";
  auto min = l.factory->MinTokens(type, schema);
  auto constraint = l.factory->Create(type, schema);
  if (min.ok() != constraint.ok()) __builtin_trap();
  if (!constraint.ok()) return 0;
  // Short walks keep 50000 inputs within CI's time; the unit test walks
  // longer ones.
  if (*min > 64) return 0;
  const int64_t budget = *min + (data[0] >> 4);
  std::mt19937_64 rng(std::hash<std::string_view>()(schema));
  const Tokenizer& tok = *l.tokenizer;
  std::vector<uint8_t> allowed(tok.vocab_size() + 2);
  std::string text;
  for (int64_t step = 0; step < budget && !(*constraint)->Complete(); ++step) {
    std::fill(allowed.begin(), allowed.end(), 1);
    (*constraint)->Mask(budget - step, allowed);
    std::vector<int32_t> ids;
    for (size_t id = 0; id < allowed.size(); ++id) {
      if (allowed[id]) ids.push_back(static_cast<int32_t>(id));
    }
    if (ids.empty()) __builtin_trap();
    const int32_t id = ids[rng() % ids.size()];
    if (!(*constraint)->Accept(id).ok()) __builtin_trap();
    text += tok.TokenBytes(id, step == 0).value_or("");
  }
  if (!(*constraint)->Complete()) __builtin_trap();
  const auto parsed = nlohmann::json::parse(text, nullptr, false);
  if (parsed.is_discarded()) __builtin_trap();
  if (object && !parsed.is_object()) __builtin_trap();
  return 0;
}
