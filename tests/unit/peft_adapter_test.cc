// The one PEFT adapter rule set (model::PeftAdapterSpec): adapter_config.json
// parsing, tensor names, shape checks and the writer; and the block linears
// it is built on.
#include "lorad/model/peft_adapter.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "lorad/model/block_linears.h"
#include "lorad/model/tiny_model.h"
#include "nlohmann/json.hpp"

namespace lorad::model {
namespace {

using Json = nlohmann::json;

Json Config() {
  return {{"peft_type", "LORA"},
          {"r", 4},
          {"lora_alpha", 16},
          {"target_modules", {"v_proj", "q_proj"}}};
}

absl::StatusOr<PeftAdapterSpec> Parse(const Json& j) {
  return PeftAdapterSpec::Parse(j.dump());
}

void ExpectRefused(const absl::StatusOr<PeftAdapterSpec>& spec,
                   const std::string& needle) {
  ASSERT_FALSE(spec.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(spec.status())) << spec.status();
  EXPECT_TRUE(absl::StartsWith(spec.status().message(), "adapter_config.json"))
      << spec.status();
  EXPECT_TRUE(absl::StrContains(spec.status().message(), needle))
      << "want \"" << needle << "\" in: " << spec.status();
}

TEST(BlockLinearsTest, OneListWithShapesFromTheConfig) {
  const ModelConfig c = TinyModelConfig();
  const auto linears = BlockLinears(c);
  ASSERT_EQ(linears.size(), 7u);
  for (int i = 0; i < kNumBlockLinears; ++i) {
    EXPECT_STREQ(linears[i].name, kBlockLinearNames[i]);
    EXPECT_EQ(BlockLinearIndex(linears[i].name), i);
  }
  EXPECT_STREQ(linears[0].path, "self_attn.q_proj");
  EXPECT_EQ(linears[0].in, c.hidden_size);
  EXPECT_EQ(linears[0].out, c.num_attention_heads * c.head_dim);
  EXPECT_EQ(linears[1].out, c.num_key_value_heads * c.head_dim);
  EXPECT_STREQ(linears[6].path, "mlp.down_proj");
  EXPECT_EQ(linears[6].in, c.intermediate_size);
  EXPECT_EQ(linears[6].out, c.hidden_size);
  EXPECT_FALSE(BlockLinearIndex("qkv_proj").has_value());
  EXPECT_EQ(BlockLinearKey(3, "mlp.up_proj"), "model.layers.3.mlp.up_proj");
  EXPECT_EQ(BlockLinearNameList(),
            "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj");
}

TEST(PeftAdapterSpecTest, ParsesAConfig) {
  Json j = Config();
  j["lora_dropout"] = 0.1;
  j["base_model_name_or_path"] = "meta/Llama";
  j["use_dora"] = false;
  j["rank_pattern"] = Json::object();
  auto spec = Parse(j);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->rank, 4);
  EXPECT_EQ(spec->alpha, 16);
  EXPECT_DOUBLE_EQ(spec->dropout, 0.1);
  EXPECT_DOUBLE_EQ(spec->scale(), 4);
  EXPECT_EQ(spec->target_modules,
            (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_EQ(spec->base_model_name_or_path, "meta/Llama");
}

TEST(PeftAdapterSpecTest, AlphaDefaultsToPeftsAndMustBeFinitePositive) {
  Json j = Config();
  j.erase("lora_alpha");
  auto spec = Parse(j);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->alpha, kPeftDefaultLoraAlpha);
  EXPECT_EQ(spec->alpha, 8);
  EXPECT_EQ(spec->dropout, 0);

  for (const Json& alpha : {Json(0), Json(-1), Json("16"), Json(nullptr)}) {
    SCOPED_TRACE(alpha.dump());
    j["lora_alpha"] = alpha;
    ExpectRefused(Parse(j), "lora_alpha");
  }
  // JSON has no infinity; a literal too large for a double is refused too.
  auto huge = PeftAdapterSpec::Parse(
      R"({"r": 4, "lora_alpha": 1e999, "target_modules": ["q_proj"]})");
  EXPECT_TRUE(absl::IsInvalidArgument(huge.status())) << huge.status();
}

TEST(PeftAdapterSpecTest, RefusesBadRankDropoutAndOptions) {
  struct Case {
    const char* key;
    Json value;
    const char* needle;
  } cases[] = {
      {"r", 0, "key \"r\""},
      {"r", 1025, "[1, 1024]"},
      {"r", 4.5, "key \"r\""},
      {"r", "4", "key \"r\""},
      {"lora_dropout", 1, "lora_dropout"},
      {"lora_dropout", -0.1, "lora_dropout"},
      {"peft_type", "IA3", "peft_type"},
      {"use_dora", true, "use_dora"},
      {"use_rslora", true, "use_rslora"},
      {"rank_pattern", {{"q_proj", 8}}, "rank_pattern"},
      {"base_model_name_or_path", 7, "base_model_name_or_path"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.key);
    Json j = Config();
    j[c.key] = c.value;
    ExpectRefused(Parse(j), c.needle);
  }
  Json j = Config();
  j.erase("r");
  ExpectRefused(Parse(j), "key \"r\"");
  ExpectRefused(PeftAdapterSpec::Parse("[1, 2]"), "not a JSON object");
  ExpectRefused(PeftAdapterSpec::Parse("{\"r\": 4,"), "not valid JSON");
}

TEST(PeftAdapterSpecTest, TargetModules) {
  Json j = Config();
  j["target_modules"] = "all-linear";
  auto spec = Parse(j);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(
      spec->target_modules,
      (std::vector<std::string>{"down_proj", "gate_proj", "k_proj", "o_proj",
                                "q_proj", "up_proj", "v_proj"}));
  j["target_modules"] = {"q_proj", "q_proj"};
  spec = Parse(j);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->target_modules, std::vector<std::string>{"q_proj"});

  j["target_modules"] = {"q_proj", "qkv_proj"};
  ExpectRefused(Parse(j),
                "unknown module \"qkv_proj\" (the base model has "
                "q_proj, k_proj");
  j["target_modules"] = {"q_proj", 3};
  ExpectRefused(Parse(j), "unknown module 3");
  for (const Json& modules : {Json::array(), Json(".*proj"), Json()}) {
    SCOPED_TRACE(modules.dump());
    j["target_modules"] = modules;
    ExpectRefused(Parse(j), "target_modules");
  }
}

TEST(PeftAdapterSpecTest, RefusesDeepAndHugeInputWithoutCrashing) {
  const int depth = 200000;
  std::string deep = R"({"r": 4, "target_modules": ["q_proj"], "x": )";
  deep += std::string(depth, '[') + std::string(depth, ']') + "}";
  ExpectRefused(PeftAdapterSpec::Parse(deep), "nested deeper than 16");
  ExpectRefused(PeftAdapterSpec::Parse(std::string(depth, '{')),
                "nested deeper");

  // Brackets inside strings are text, not nesting.
  Json j = Config();
  j["note"] = std::string(100, '[') + "\\\"{{{";
  EXPECT_TRUE(Parse(j).ok());

  std::string huge = Config().dump();
  huge.insert(
      1, "\"pad\": \"" + std::string(kMaxAdapterConfigBytes, 'x') + "\", ");
  ExpectRefused(PeftAdapterSpec::Parse(huge), "more than");
}

TEST(PeftAdapterSpecTest, WritesWhatItReads) {
  PeftAdapterSpec spec;
  spec.rank = 16;
  spec.alpha = 32;
  spec.dropout = 0.05;
  spec.target_modules = {"down_proj", "q_proj"};
  spec.base_model_name_or_path = "tiny";
  const std::string text = spec.ToJson();
  const Json j = Json::parse(text);
  EXPECT_EQ(j["task_type"], "CAUSAL_LM");
  EXPECT_EQ(j["peft_type"], "LORA");
  EXPECT_EQ(j["bias"], "none");
  auto back = PeftAdapterSpec::Parse(text);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->rank, spec.rank);
  EXPECT_EQ(back->alpha, spec.alpha);
  EXPECT_EQ(back->dropout, spec.dropout);
  EXPECT_EQ(back->target_modules, spec.target_modules);
  EXPECT_EQ(back->base_model_name_or_path, spec.base_model_name_or_path);
}

TEST(PeftTensorNameTest, ParsesPeftNamesWithAndWithoutDefault) {
  const ModelConfig tiny = TinyModelConfig();
  const std::string a =
      PeftTensorName(BlockLinearKey(1, "self_attn.k_proj"), LoraHalf::kA);
  EXPECT_EQ(a,
            "base_model.model.model.layers.1.self_attn.k_proj.lora_A.weight");
  auto key = ParsePeftTensorName(a, tiny);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->layer, 1);
  EXPECT_STREQ(key->linear.name, "k_proj");
  EXPECT_EQ(key->half, LoraHalf::kA);

  key = ParsePeftTensorName(
      "base_model.model.model.layers.0.mlp.down_proj.lora_B.default.weight",
      tiny);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->layer, 0);
  EXPECT_STREQ(key->linear.name, "down_proj");
  EXPECT_EQ(key->linear.in, tiny.intermediate_size);
  EXPECT_EQ(key->half, LoraHalf::kB);

  struct Case {
    std::string name;
    std::string needle;
  } cases[] = {
      {"base_model.model.lm_head.weight", "not a LoRA weight"},
      {"base_model.model.model.layers.x.mlp.up_proj.lora_A.weight",
       "no layer number"},
      {"base_model.model.model.layers.9.mlp.up_proj.lora_A.weight",
       "layer 9 does not exist"},
      {"base_model.model.model.layers.0.mlp.up_proj.lora_A.bias",
       "not a .weight"},
      {"base_model.model.model.layers.0.mlp.up_proj.lora_C.weight",
       "neither lora_A nor lora_B"},
      {"base_model.model.model.layers.0.mlp.fc1.lora_A.weight",
       "module \"mlp.fc1\" does not exist in the base model"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto bad = ParsePeftTensorName(c.name, tiny);
    ASSERT_FALSE(bad.ok());
    EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
    EXPECT_TRUE(absl::StrContains(bad.status().message(), c.needle))
        << bad.status();
    EXPECT_TRUE(absl::StartsWith(bad.status().message(),
                                 "adapter_model.safetensors: key \""))
        << bad.status();
  }
}

TEST(PeftAdapterSpecTest, ValidateChecksShapesTargetsAndPairs) {
  const ModelConfig tiny = TinyModelConfig();
  auto spec = Parse(Config());
  ASSERT_TRUE(spec.ok());
  const int64_t q = tiny.num_attention_heads * tiny.head_dim;
  auto tensor = [](std::string name, std::vector<int64_t> shape,
                   DType dtype = DType::kF32) {
    TensorInfo t;
    t.name = std::move(name);
    t.shape = std::move(shape);
    t.dtype = dtype;
    return t;
  };
  const std::string qa =
      PeftTensorName(BlockLinearKey(0, "self_attn.q_proj"), LoraHalf::kA);
  const std::string qb =
      PeftTensorName(BlockLinearKey(0, "self_attn.q_proj"), LoraHalf::kB);
  std::vector<TensorInfo> good = {tensor(qa, {4, tiny.hidden_size}),
                                  tensor(qb, {q, 4}, DType::kBF16)};
  EXPECT_TRUE(spec->Validate(tiny, good).ok());

  auto refused = [&](std::vector<TensorInfo> tensors,
                     const std::string& needle) {
    absl::Status s = spec->Validate(tiny, tensors);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), needle))
        << "want \"" << needle << "\" in: " << s;
  };
  refused({tensor(qa, {4, tiny.hidden_size}), tensor(qb, {q, 8})},
          "shape [" + std::to_string(q) + ", 8] does not fit the base model");
  refused({tensor(qa, {4, tiny.hidden_size})}, "has lora_A but no lora_B");
  refused({tensor(qa, {4, tiny.hidden_size}, DType::kF64), good[1]},
          "dtype F64");
  const std::string ka =
      PeftTensorName(BlockLinearKey(0, "self_attn.k_proj"), LoraHalf::kA);
  refused({tensor(ka, {4, tiny.hidden_size})},
          "module k_proj is not in adapter_config.json's target_modules");
  refused({}, "holds no LoRA weights");
}

}  // namespace
}  // namespace lorad::model
