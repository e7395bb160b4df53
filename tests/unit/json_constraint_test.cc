// JSON constrained decoding (json_constraint.h): random walks that pick
// uniformly among the allowed tokens (what a model with random weights
// does) must give text that parses (and, checked by Python's jsonschema,
// matches the schema), complete within any budget of at least the minimum;
// on the tiny byte-level tokenizer, the byte-level golden tokenizers and
// SentencePiece-style ones built by tests/golden/tokenizer_spm_peer.py.
#include "lorad/model/json_constraint.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lorad/common/files.h"
#include "lorad/model/tokenizer.h"
#include "nlohmann/json.hpp"
#include "tokenizer_peer.h"

namespace lorad::model {
namespace {

using nlohmann::json;

struct Walk {
  std::string text;  // the tokens' bytes, concatenated
  std::vector<int32_t> ids;
  bool complete = false;
};

// Generates with uniformly random allowed tokens until Complete() or
// `budget` tokens. Fails the test if a mask allows nothing before the end or
// Accept refuses an allowed token.
Walk RandomWalk(const Tokenizer& tokenizer, TokenConstraint& constraint,
                int64_t budget, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Walk walk;
  std::vector<uint8_t> allowed(tokenizer.vocab_size() + 7);
  for (int64_t step = 0; step < budget && !constraint.Complete(); ++step) {
    std::fill(allowed.begin(), allowed.end(), 1);
    constraint.Mask(budget - step, allowed);
    std::vector<int32_t> ids;
    for (size_t id = 0; id < allowed.size(); ++id) {
      if (allowed[id]) ids.push_back(static_cast<int32_t>(id));
    }
    EXPECT_FALSE(ids.empty()) << "nothing allowed after " << json(walk.text);
    if (ids.empty()) break;
    const int32_t id = ids[rng() % ids.size()];
    const absl::Status accepted = constraint.Accept(id);
    EXPECT_TRUE(accepted.ok()) << accepted;
    walk.text += tokenizer.TokenBytes(id, walk.ids.empty()).value_or("?");
    walk.ids.push_back(id);
  }
  walk.complete = constraint.Complete();
  return walk;
}

std::unique_ptr<Tokenizer> Load(const std::string& json_text) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> t =
      Tokenizer::FromJson(json_text, "tokenizer.json");
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

std::unique_ptr<Tokenizer> Golden(const std::string& name) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> t = Tokenizer::FromFile(
      std::string(LORAD_GOLDEN_DIR) + "/tokenizer/" + name + ".tokenizer.json");
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

// Schemas the random walks cover, each with a list of the features used.
const std::vector<std::string>& Schemas() {
  static const auto* const kSchemas = new std::vector<std::string>{
      R"({"type":"object","properties":{"name":{"type":"string"},
          "age":{"type":"integer"},"ok":{"type":"boolean"}},
          "required":["name","age"],"additionalProperties":false})",
      R"({"type":"object","properties":{
          "color":{"enum":["red","green","blue",null,1.5]},
          "tags":{"type":"array","items":{"type":"string"},"minItems":1,
                  "maxItems":3},
          "point":{"type":"object","properties":{"x":{"type":"number"},
                   "y":{"type":"number"}},"required":["x","y"]}},
          "required":["color","point"]})",
      R"({"anyOf":[{"type":"string"},{"type":"integer"},
          {"type":"object","properties":{"a":{"const":"b"}},
           "required":["a"]},{"type":"null"}]})",
      R"({"$defs":{"item":{"type":"object","properties":{
            "id":{"type":"integer"},"label":{"type":["string","null"]}},
            "required":["id"]}},
          "type":"array","items":{"$ref":"#/$defs/item"},"maxItems":4})",
      R"({"type":"object","properties":{
          "kind":{"oneOf":[{"const":"a"},{"const":"b"},{"type":"number"}]},
          "any":{},"free":{"type":"object"},"list":{"type":"array"},
          "n":{"type":"number","description":"ignored","format":"float"}},
          "required":["kind","any","free","list","n"]})",
      R"({"type":"number"})",
      R"({"type":"integer"})",
      R"({"enum":[1,12,123]})",
      R"({"type":"string","title":"t"})",
      R"({"type":"object","properties":{"é":{"type":"boolean"},
          "b\"q":{"type":"string"}},"required":["é"]})",
      R"({"definitions":{"pair":{"type":"array","items":{"type":"integer"},
          "minItems":2,"maxItems":2}},"type":"object","properties":{
          "p":{"$ref":"#/definitions/pair"},"q":{"$ref":"#/definitions/pair"}},
          "required":["p","q"]})",
  };
  return *kSchemas;
}

// Validates outputs against their schemas with Python's jsonschema; skips
// without the venv.
void ExpectSchemaValid(const json& cases) {
  const std::string python = LORAD_PYTHON;
  if (!std::filesystem::exists(python) ||
      std::system((python + " -c 'import jsonschema' 2>/dev/null").c_str()) !=
          0) {
    GTEST_SKIP() << "no venv with jsonschema";
  }
  static int serial = 0;
  std::filesystem::create_directories(testing::TempDir());
  const std::string path = testing::TempDir() + "/json_constraint_cases_" +
                           std::to_string(serial++) + ".json";
  std::ofstream(path) << cases.dump();
  const std::string log = path + ".log";
  const std::string command =
      python + " " + LORAD_SOURCE_DIR +
      "/tests/golden/json_constraint_peer.py validate " + path + " >" + log +
      " 2>&1";
  EXPECT_EQ(std::system(command.c_str()), 0) << ReadFile(log).value_or("");
}

// Random walks over every schema with budgets from the minimum up; checks
// parse, completion and Decode agreement here and collects the outputs.
void WalkSchemas(const Tokenizer& tokenizer, int seeds, json* cases) {
  absl::StatusOr<std::unique_ptr<JsonConstraintFactory>> factory =
      JsonConstraintFactory::Create(tokenizer);
  ASSERT_TRUE(factory.ok()) << factory.status();
  for (const std::string& schema : Schemas()) {
    SCOPED_TRACE(schema);
    absl::StatusOr<int64_t> min = (*factory)->MinTokens("json_schema", schema);
    ASSERT_TRUE(min.ok()) << min.status();
    for (int64_t budget : {*min, *min + 3, int64_t{32}, int64_t{200}}) {
      if (budget < *min) continue;
      for (int seed = 0; seed < seeds; ++seed) {
        auto constraint = (*factory)->Create("json_schema", schema);
        ASSERT_TRUE(constraint.ok()) << constraint.status();
        const Walk walk = RandomWalk(tokenizer, **constraint, budget, seed);
        ASSERT_TRUE(walk.complete) << "budget " << budget << " seed " << seed
                                   << ": " << json(walk.text);
        ASSERT_LE(static_cast<int64_t>(walk.ids.size()), budget);
        EXPECT_EQ(tokenizer.Decode(walk.ids, true), walk.text);
        const json parsed = json::parse(walk.text, nullptr, false);
        ASSERT_FALSE(parsed.is_discarded()) << json(walk.text);
        cases->push_back(
            {{"schema", json::parse(schema)}, {"output", walk.text}});
      }
    }
  }
}

// Whether `text` is well-formed UTF-8 (what Decode leaves as it is).
bool IsValidUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<uint8_t>(text[i]);
    const size_t n = c < 0x80                 ? 1
                     : c >= 0xC2 && c <= 0xDF ? 2
                     : c >= 0xE0 && c <= 0xEF ? 3
                     : c >= 0xF0 && c <= 0xF4 ? 4
                                              : 0;
    if (n == 0 || i + n > text.size()) return false;
    const auto c1 = static_cast<uint8_t>(n > 1 ? text[i + 1] : 0x80);
    if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) ||
        (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F)) {
      return false;
    }
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<uint8_t>(text[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

// Tokenizer::TokenBytes against Decode: pairs of tokens decode to the first
// one's `first` bytes and the second one's others.
void ExpectTokenBytesMatchDecode(const Tokenizer& tokenizer) {
  std::mt19937_64 rng(7);
  const auto vocab = static_cast<int32_t>(tokenizer.vocab_size());
  int checked = 0;
  for (int i = 0; i < 20000 && checked < 3000; ++i) {
    const std::vector<int32_t> ids = {static_cast<int32_t>(rng() % vocab),
                                      static_cast<int32_t>(rng() % vocab)};
    const auto first = tokenizer.TokenBytes(ids[0], true);
    const auto second = tokenizer.TokenBytes(ids[1], false);
    if (!first.has_value() || !second.has_value()) continue;  // added
    const std::string text = *first + *second;
    if (!IsValidUtf8(text)) continue;  // Decode repairs those
    EXPECT_EQ(tokenizer.Decode(ids, true), text) << ids[0] << " " << ids[1];
    ++checked;
  }
  EXPECT_GT(checked, 1000);
}

TEST(JsonConstraintTest, TokenBytesMatchDecode) {
  ExpectTokenBytesMatchDecode(*Load(MakeByteLevelTokenizerJson()));
  for (const char* name : {"gpt2", "llama3", "qwen2"}) {
    SCOPED_TRACE(name);
    ExpectTokenBytesMatchDecode(*Golden(name));
  }
  LORAD_REQUIRE_PEER();
  for (const char* kind :
       {"llama2", "metaspace_first", "metaspace_always_split",
        "metaspace_never", "gemma", "unigram"}) {
    SCOPED_TRACE(kind);
    auto tokenizer = Tokenizer::FromFile(tokenizer_peer::Peer().dir + "/" +
                                         kind + "/tokenizer.json");
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    ExpectTokenBytesMatchDecode(**tokenizer);
  }
}

TEST(JsonConstraintTest, JsonObjectWalksParseAsObjectsOnTheTinyTokenizer) {
  auto tokenizer = Load(MakeByteLevelTokenizerJson());
  ASSERT_NE(tokenizer, nullptr);
  auto factory = JsonConstraintFactory::Create(*tokenizer);
  ASSERT_TRUE(factory.ok()) << factory.status();
  EXPECT_EQ((*factory)->MinTokens("json_object", "").value_or(-1), 2);
  for (int64_t budget : {2, 3, 8, 32, 200}) {
    for (int seed = 0; seed < 200; ++seed) {
      auto constraint = (*factory)->Create("json_object", "");
      ASSERT_TRUE(constraint.ok());
      const Walk walk = RandomWalk(*tokenizer, **constraint, budget, seed);
      ASSERT_TRUE(walk.complete) << budget << " " << json(walk.text);
      EXPECT_EQ(tokenizer->Decode(walk.ids, true), walk.text);
      const json parsed = json::parse(walk.text, nullptr, false);
      ASSERT_TRUE(parsed.is_object()) << json(walk.text);
    }
  }
}

TEST(JsonConstraintTest, SchemaWalksMatchTheSchemaOnByteLevelTokenizers) {
  json cases = json::array();
  for (const char* name : {"tiny", "gpt2", "llama3", "qwen2"}) {
    SCOPED_TRACE(name);
    auto tokenizer = std::string(name) == "tiny"
                         ? Load(MakeByteLevelTokenizerJson())
                         : Golden(name);
    ASSERT_NE(tokenizer, nullptr);
    WalkSchemas(*tokenizer, 10, &cases);
  }
  ExpectSchemaValid(cases);
}

class JsonConstraintSpmTest : public testing::TestWithParam<std::string> {};

TEST_P(JsonConstraintSpmTest, WalksParseAndMatchTheSchema) {
  LORAD_REQUIRE_PEER();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromFile(
      tokenizer_peer::Peer().dir + "/" + GetParam() + "/tokenizer.json");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  json cases = json::array();
  WalkSchemas(**tokenizer, 8, &cases);
  ExpectSchemaValid(cases);
}

INSTANTIATE_TEST_SUITE_P(Kinds, JsonConstraintSpmTest,
                         testing::Values("llama2", "metaspace_first",
                                         "metaspace_always_split",
                                         "metaspace_never", "gemma",
                                         "unigram"));

TEST(JsonConstraintTest, SentencePieceFirstTokenLosesItsSpace) {
  LORAD_REQUIRE_PEER();
  auto tokenizer = Tokenizer::FromFile(tokenizer_peer::Peer().dir +
                                       "/llama2/tokenizer.json");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const std::optional<int32_t> space_brace = (*tokenizer)->TokenToId("<0x7B>");
  ASSERT_TRUE(space_brace.has_value());
  EXPECT_EQ((*tokenizer)->TokenBytes(*space_brace, true), "{");
  const std::optional<int32_t> meta = (*tokenizer)->TokenToId("\u2581");
  ASSERT_TRUE(meta.has_value());
  EXPECT_EQ((*tokenizer)->TokenBytes(*meta, true), "");
  EXPECT_EQ((*tokenizer)->TokenBytes(*meta, false), " ");
  auto factory = JsonConstraintFactory::Create(**tokenizer);
  ASSERT_TRUE(factory.ok()) << factory.status();
  auto constraint = (*factory)->Create("json_object", "");
  ASSERT_TRUE(constraint.ok());
  std::vector<uint8_t> allowed((*tokenizer)->vocab_size(), 1);
  (*constraint)->Mask(100, allowed);
  EXPECT_FALSE(allowed[*meta]) << "a first token that adds nothing";
  EXPECT_TRUE(allowed[*space_brace]);
  EXPECT_TRUE((*constraint)->Accept(*space_brace).ok());
  std::fill(allowed.begin(), allowed.end(), 1);
  (*constraint)->Mask(100, allowed);
  EXPECT_TRUE(allowed[*meta]) << "whitespace after {";
}

TEST(JsonConstraintTest, VocabularyWithoutAOneByteTokenIsRefused) {
  // The tiny tokenizer without "}" (GPT-2's map keeps it as itself).
  json tiny = json::parse(MakeByteLevelTokenizerJson());
  ASSERT_EQ(tiny["model"]["vocab"].erase("}"), 1u);
  auto tokenizer = Load(tiny.dump());
  ASSERT_NE(tokenizer, nullptr);
  auto factory = JsonConstraintFactory::Create(*tokenizer);
  ASSERT_FALSE(factory.ok());
  EXPECT_EQ(factory.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(factory.status().message().find("single byte 0x7D"),
            std::string::npos)
      << factory.status();
}

TEST(JsonConstraintTest, UnsupportedSchemasAreRefusedWithThePointer) {
  auto tokenizer = Load(MakeByteLevelTokenizerJson());
  auto factory = JsonConstraintFactory::Create(*tokenizer);
  ASSERT_TRUE(factory.ok());
  const std::pair<const char*, const char*> kCases[] = {
      {R"({"type":"object","properties":{"age":{"type":"integer",
          "minimum":0}}})",
       "/properties/age/minimum: unsupported keyword \"minimum\""},
      {R"({"type":"string","pattern":"a+"})", "/pattern: unsupported"},
      {R"({"type":"string","minLength":2})", "/minLength: unsupported"},
      {R"({"type":"strin"})", "/type: unknown type \"strin\""},
      {R"({"type":["string",3]})", "/type/1: unknown type 3"},
      {R"({"type":"object","properties":{"a":{}},"required":["b"]})",
       "/required/0: required property \"b\" is not in properties"},
      {R"({"type":"object","additionalProperties":{"type":"string"}})",
       "/additionalProperties: only true or false"},
      {R"({"type":"array","items":[{"type":"string"}]})",
       "/items: items as a list"},
      {R"({"$defs":{"n":{"type":"object","properties":{"n":
          {"$ref":"#/$defs/n"}}}},"$ref":"#/$defs/n"})",
       "/$defs/n/properties/n/$ref: recursive $ref \"#/$defs/n\""},
      {R"({"$ref":"#/$defs/missing"})", "at /$ref: $ref \"#/$defs/missing\""},
      {R"({"$ref":"http://x/y"})", "is not supported"},
      {R"({"oneOf":[{"type":"string"},{"enum":["a",1]}]})",
       "/oneOf/1: oneOf branches 0 and 1 may both match"},
      {R"({"type":"array","minItems":3,"maxItems":2})", "/minItems: above"},
      {R"({"type":"array","minItems":-1})", "/minItems: must be a non-neg"},
      {R"({"enum":[]})", "/enum: enum must be a non-empty list"},
      {R"({"type":"string","enum":[1,2]})", "no value has the schema's type"},
      {R"({"enum":["a"],"properties":{}})",
       "/properties: \"properties\" beside"},
      {R"({"anyOf":[{"type":"string"}],"type":"string"})",
       "/type: \"type\" beside \"anyOf\""},
      {R"(false)", "matches nothing"},
      {R"({"not":{}})", "at /not: unsupported keyword \"not\""},
      {R"({"type":"array","minItems":9999999})", "shortest output"},
      {R"({"type":)", "json_schema: not valid JSON"},
  };
  for (const auto& [schema, want] : kCases) {
    SCOPED_TRACE(schema);
    auto constraint = (*factory)->Create("json_schema", schema);
    ASSERT_FALSE(constraint.ok());
    EXPECT_EQ(constraint.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(constraint.status().message().find(want), std::string::npos)
        << constraint.status();
  }
  auto other = (*factory)->Create("text", "");
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(JsonConstraintTest, MaskedTokenIsRefusedAndTheStateKept) {
  auto tokenizer = Load(MakeByteLevelTokenizerJson());
  auto factory = JsonConstraintFactory::Create(*tokenizer);
  ASSERT_TRUE(factory.ok());
  auto constraint = (*factory)->Create(
      "json_schema", R"({"type":"object","properties":{"a":{"type":"integer"}},
                        "required":["a"]})");
  ASSERT_TRUE(constraint.ok()) << constraint.status();
  TokenConstraint& c = **constraint;
  const int64_t vocab = tokenizer->vocab_size();
  std::vector<uint8_t> before(vocab + 3, 1);
  c.Mask(100, before);
  for (int32_t id = 0; id < vocab + 3; ++id) {
    EXPECT_EQ(before[id] != 0, id == '{') << id;
  }
  EXPECT_FALSE(c.Accept(' ').ok()) << "no leading whitespace";
  EXPECT_FALSE(c.Accept(257).ok()) << "EOS";
  EXPECT_FALSE(c.Accept(vocab + 1).ok());
  std::vector<uint8_t> again(vocab + 3, 1);
  c.Mask(100, again);
  EXPECT_EQ(again, before);
  ASSERT_TRUE(c.Accept('{').ok());
  for (char ch : std::string("\"a\":")) ASSERT_TRUE(c.Accept(ch).ok());
  // Steering: with 2 tokens left only a closing path fits ("0}"), so "1"
  // (which may go on) still fits but a second digit after it would not.
  std::vector<uint8_t> tight(vocab, 1);
  c.Mask(2, tight);
  EXPECT_TRUE(tight['0']);
  EXPECT_TRUE(tight['7']);
  EXPECT_FALSE(tight[' ']) << "whitespace leaves no room for the close";
  EXPECT_FALSE(c.Accept(' ').ok());
  ASSERT_TRUE(c.Accept('7').ok());
  std::vector<uint8_t> last(vocab, 1);
  c.Mask(1, last);
  for (int32_t id = 0; id < vocab; ++id) {
    EXPECT_EQ(last[id] != 0, id == '}') << id;
  }
  ASSERT_TRUE(c.Accept('}').ok());
  EXPECT_TRUE(c.Complete());
  std::vector<uint8_t> done(vocab, 1);
  c.Mask(5, done);
  EXPECT_EQ(std::count(done.begin(), done.end(), 1), 0);
  EXPECT_FALSE(c.Accept('}').ok());
}

TEST(JsonConstraintTest, WhitespaceRunsAndStringsAreBounded) {
  auto tokenizer = Load(MakeByteLevelTokenizerJson());
  auto factory = JsonConstraintFactory::Create(*tokenizer);
  ASSERT_TRUE(factory.ok());
  auto constraint = (*factory)->Create("json_object", "");
  ASSERT_TRUE(constraint.ok());
  TokenConstraint& c = **constraint;
  ASSERT_TRUE(c.Accept('{').ok());
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(c.Accept(i % 2 ? '\n' : ' ').ok());
  EXPECT_FALSE(c.Accept(' ').ok()) << "a ninth whitespace byte";
  ASSERT_TRUE(c.Accept('"').ok());
  EXPECT_FALSE(c.Accept('\n').ok()) << "raw control character in a string";
  EXPECT_FALSE(c.Accept(0x80).ok()) << "lone continuation byte";
  EXPECT_FALSE(c.Accept(0xC0).ok()) << "overlong lead byte";
  ASSERT_TRUE(c.Accept(0xE0).ok());
  EXPECT_FALSE(c.Accept(0x80).ok()) << "overlong 3-byte form";
  ASSERT_TRUE(c.Accept(0xA0).ok());
  EXPECT_FALSE(c.Accept('"').ok()) << "character cut short";
  ASSERT_TRUE(c.Accept(0x80).ok());
  ASSERT_TRUE(c.Accept('\\').ok());
  EXPECT_FALSE(c.Accept('x').ok()) << "bad escape";
  ASSERT_TRUE(c.Accept('u').ok());
  ASSERT_TRUE(c.Accept('D').ok());
  EXPECT_FALSE(c.Accept('8').ok()) << "surrogate escape";
  ASSERT_TRUE(c.Accept('7').ok());
  for (char ch : std::string("ff\":-0.5e+12}")) {
    ASSERT_TRUE(c.Accept(ch).ok()) << ch;
  }
  EXPECT_TRUE(c.Complete());
}

TEST(JsonConstraintTest, TopLevelNumberEndsAtOneWhitespaceByte) {
  auto tokenizer = Load(MakeByteLevelTokenizerJson());
  auto factory = JsonConstraintFactory::Create(*tokenizer);
  ASSERT_TRUE(factory.ok());
  auto constraint = (*factory)->Create("json_schema", R"({"type":"number"})");
  ASSERT_TRUE(constraint.ok());
  TokenConstraint& c = **constraint;
  ASSERT_TRUE(c.Accept('4').ok());
  ASSERT_TRUE(c.Accept('2').ok());
  EXPECT_FALSE(c.Complete());
  ASSERT_TRUE(c.Accept('\n').ok());
  EXPECT_TRUE(c.Complete());
  // An integer's "0" can not go on: complete at once.
  auto zero = (*factory)->Create("json_schema", R"({"type":"integer"})");
  ASSERT_TRUE(zero.ok());
  ASSERT_TRUE((*zero)->Accept('0').ok());
  EXPECT_TRUE((*zero)->Complete());
}

}  // namespace
}  // namespace lorad::model
