// config.json parsing: the fields lorad reads, their bounds, and that a
// hostile value is an error naming the field rather than undefined behaviour.
#include "lorad/model/model_config.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace lorad {
namespace {

using nlohmann::json;

json TinyLlama() {
  return json{{"architectures", {"LlamaForCausalLM"}},
              {"model_type", "llama"},
              {"vocab_size", 259},
              {"hidden_size", 64},
              {"intermediate_size", 176},
              {"num_hidden_layers", 2},
              {"num_attention_heads", 4},
              {"num_key_value_heads", 2},
              {"bos_token_id", 256},
              {"eos_token_id", 257}};
}

absl::StatusOr<model::ModelConfig> Parse(const json& j) {
  return model::ModelConfig::FromJson(j.dump(), "dir/config.json");
}

TEST(ModelConfigTest, ReadsFieldsAndDefaults) {
  absl::StatusOr<model::ModelConfig> c = Parse(TinyLlama());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->architecture, "LlamaForCausalLM");
  EXPECT_EQ(c->num_key_value_heads, 2);
  EXPECT_EQ(c->head_dim, 16);  // hidden_size / num_attention_heads
  EXPECT_EQ(c->max_position_embeddings, 2048);
  EXPECT_EQ(c->bos_token_id, 256);
  EXPECT_EQ(c->pad_token_id, -1);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{257}));
  // Integral floats are integers, as Python's json would hand them over.
  json j = TinyLlama();
  j["hidden_size"] = 64.0;
  j["eos_token_id"] = {257, 1.0};
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{257, 1}));
}

TEST(ModelConfigTest, NullOptionalFieldsTakeTheirDefaults) {
  json j = TinyLlama();
  j["num_key_value_heads"] = nullptr;
  j["head_dim"] = nullptr;
  j["eos_token_id"] = nullptr;
  absl::StatusOr<model::ModelConfig> c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_key_value_heads, 4);
  EXPECT_TRUE(c->eos_token_ids.empty());
}

// Each case sets one field to a value that must be refused, and the error
// must name that field and the file.
TEST(ModelConfigTest, OutOfRangeOrWrongTypedFieldsAreNamed) {
  struct Case {
    const char* field;
    json value;
  };
  const Case cases[] = {
      {"num_key_value_heads", 1e300},  // was a float-to-int overflow
      {"num_key_value_heads", -1e300},
      {"num_key_value_heads", 2.5},
      {"num_key_value_heads", 0},
      {"head_dim", 18446744073709551615ull},
      {"head_dim", "16"},
      {"max_position_embeddings", -4},
      {"hidden_size", 1e19},
      {"hidden_size", int64_t{1} << 40},  // would overflow the parameter count
      {"vocab_size", 0},
      {"num_hidden_layers", 100000},
      {"intermediate_size", true},
      {"bos_token_id", 259},  // not a token of a 259-token vocabulary
      {"pad_token_id", -2},
      {"eos_token_id", "</s>"},
      {"eos_token_id", json::array({257, 1e300})},
  };
  for (const Case& c : cases) {
    json j = TinyLlama();
    j[c.field] = c.value;
    SCOPED_TRACE(j.dump());
    absl::StatusOr<model::ModelConfig> parsed = Parse(j);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(parsed.status().message());
    EXPECT_NE(message.find(c.field), std::string::npos) << message;
    EXPECT_NE(message.find("dir/config.json"), std::string::npos) << message;
  }
}

TEST(ModelConfigTest, RopeScalingOriginalLengthIsBounded) {
  json j = TinyLlama();
  j["rope_scaling"] = {{"rope_type", "llama3"},
                       {"factor", 8.0},
                       {"original_max_position_embeddings", 1e40}};
  absl::StatusOr<model::ModelConfig> c = Parse(j);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("original_max_position_embeddings"),
            std::string::npos);
}

TEST(ModelConfigTest, AbsurdShapesAreRefusedAndLargeRealOnesAccepted) {
  json j = TinyLlama();
  for (const char* f : {"hidden_size", "intermediate_size",
                        "num_attention_heads", "num_key_value_heads"}) {
    j[f] = int64_t{1} << 24;
  }
  j["num_hidden_layers"] = 4096;
  absl::StatusOr<model::ModelConfig> c = Parse(j);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("10^15 parameters"), std::string::npos)
      << c.status();
  // A 70B-class shape (Llama 3 70B's sizes).
  j = TinyLlama();
  j["vocab_size"] = 128256;
  j["hidden_size"] = 8192;
  j["intermediate_size"] = 28672;
  j["num_hidden_layers"] = 80;
  j["num_attention_heads"] = 64;
  j["num_key_value_heads"] = 8;
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_GT(c->NumParameters(), int64_t{69} * 1000 * 1000 * 1000);
  EXPECT_LT(c->NumParameters(), int64_t{72} * 1000 * 1000 * 1000);
}

TEST(ModelConfigTest, WhatLoradCannotRunIsRefusedNamingTheField) {
  json j = TinyLlama();
  j["hidden_act"] = "gelu_pytorch_tanh";
  absl::StatusOr<model::ModelConfig> c = Parse(j);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("hidden_act"), std::string::npos);
  j = TinyLlama();
  j["quantization_config"] = {{"quant_method", "gptq"}, {"bits", 4}};
  c = Parse(j);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("quantization_config (gptq)"),
            std::string::npos)
      << c.status();
}

// Which layers slide, as transformers decides it; the context is the
// model's own (sliding layers are masked, not capped).
TEST(ModelConfigTest, SlidingWindowLayersFollowTransformers) {
  json j = TinyLlama();
  j["architectures"] = {"MistralForCausalLM"};
  j["model_type"] = "mistral";
  j["max_position_embeddings"] = 32768;
  j["sliding_window"] = 4096;
  absl::StatusOr<model::ModelConfig> c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->sliding_window, 4096);
  EXPECT_EQ(c->sliding_layers, (std::vector<bool>{true, true}));
  EXPECT_EQ(c->max_position_embeddings, 32768);
  // Qwen2 declares a window it does not use unless use_sliding_window, and
  // then only from max_window_layers on.
  j["architectures"] = {"Qwen2ForCausalLM"};
  j["model_type"] = "qwen2";
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->sliding_window, 0);
  EXPECT_TRUE(c->sliding_layers.empty());
  j["use_sliding_window"] = true;
  j["max_window_layers"] = 1;
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->sliding_layers, (std::vector<bool>{false, true}));
  EXPECT_EQ(c->max_position_embeddings, 32768);
  j["max_window_layers"] = 28;  // past the last layer: none slides
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->sliding_window, 0);
  EXPECT_TRUE(c->sliding_layers.empty());
  // Llama has no sliding window, whatever the file says.
  j = TinyLlama();
  j["sliding_window"] = 16;
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->sliding_window, 0);
}

TEST(ModelConfigTest, GenerationConfigEosListBecomesTheStopIds) {
  const std::string dir = ::testing::TempDir() + "/model_config_gen";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << TinyLlama().dump();
  absl::StatusOr<model::ModelConfig> c = model::ModelConfig::FromDir(dir);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->stop_token_ids, (std::vector<int64_t>{257}));
  std::ofstream(dir + "/generation_config.json")
      << R"({"bos_token_id": 256, "eos_token_id": [257, 258, 3]})";
  c = model::ModelConfig::FromDir(dir);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->stop_token_ids, (std::vector<int64_t>{257, 258, 3}));
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{257}));
  std::ofstream(dir + "/generation_config.json") << R"({"eos_token_id": 999})";
  c = model::ModelConfig::FromDir(dir);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("generation_config.json"),
            std::string::npos)
      << c.status();
  std::filesystem::remove_all(dir);
}

// Gemma 2 as transformers < 4.53 wrote it: no layer_types (the first layer
// slides, then every other), the caps, GeGLU, tied embeddings by default.
TEST(ModelConfigTest, ReadsGemma2WithoutLayerTypes) {
  json j = TinyLlama();
  j["architectures"] = {"Gemma2ForCausalLM"};
  j["model_type"] = "gemma2";
  j["num_hidden_layers"] = 4;
  j["head_dim"] = 32;
  j["hidden_act"] = "gelu_pytorch_tanh";
  j["hidden_activation"] = "gelu_pytorch_tanh";
  j["query_pre_attn_scalar"] = 144;
  j["attn_logit_softcapping"] = 50.0;
  j["final_logit_softcapping"] = 30.0;
  j["sliding_window"] = 4096;
  j["max_position_embeddings"] = 8192;
  absl::StatusOr<model::ModelConfig> c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->gemma);
  EXPECT_FALSE(c->qk_norm);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_EQ(c->activation, "gelu_pytorch_tanh");
  EXPECT_EQ(c->query_pre_attn_scalar, 144);
  EXPECT_EQ(c->attn_logit_softcapping, 50.0);
  EXPECT_EQ(c->final_logit_softcapping, 30.0);
  EXPECT_EQ(c->sliding_layers, (std::vector<bool>{true, false, true, false}));
  // Sliding layers are masked, so the context is not capped at the window.
  EXPECT_EQ(c->max_position_embeddings, 8192);
  EXPECT_EQ(c->local_rope_theta, 0);
  // Four norms per layer: 64 x (4 x 4 + 1) beside the linears and embedding.
  EXPECT_EQ(c->NumParameters() - c->NumBlockLinearParameters(),
            259 * 64 + 64 * 17);
}

// Gemma 3 text in both spellings: rope_parameters keyed by layer type
// (transformers 5) and rope_theta + rope_local_base_freq +
// sliding_window_pattern (4.50); null caps are off.
TEST(ModelConfigTest, ReadsGemma3InBothSpellings) {
  json old = TinyLlama();
  old["architectures"] = {"Gemma3ForCausalLM"};
  old["model_type"] = "gemma3_text";
  old["num_hidden_layers"] = 6;
  old["rope_theta"] = 1000000.0;
  old["rope_local_base_freq"] = 10000.0;
  old["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 8.0}};
  old["sliding_window"] = 512;
  old["sliding_window_pattern"] = 3;
  old["attn_logit_softcapping"] = nullptr;
  old["final_logit_softcapping"] = nullptr;
  json now = old;
  now.erase("rope_theta");
  now.erase("rope_local_base_freq");
  now.erase("rope_scaling");
  now.erase("sliding_window_pattern");
  now["layer_types"] = {"sliding_attention", "sliding_attention",
                        "full_attention",    "sliding_attention",
                        "sliding_attention", "full_attention"};
  now["rope_parameters"] = {
      {"full_attention",
       {{"rope_type", "linear"}, {"factor", 8.0}, {"rope_theta", 1e6}}},
      {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 1e4}}}};
  for (const json& j : {old, now}) {
    absl::StatusOr<model::ModelConfig> c = Parse(j);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_TRUE(c->gemma && c->qk_norm);
    EXPECT_EQ(c->rope_theta, 1e6);
    EXPECT_EQ(c->rope_scaling.type, "linear");
    EXPECT_EQ(c->rope_scaling.factor, 8.0);
    EXPECT_EQ(c->local_rope_theta, 1e4);
    EXPECT_EQ(c->attn_logit_softcapping, 0);
    EXPECT_EQ(c->final_logit_softcapping, 0);
    EXPECT_EQ(c->query_pre_attn_scalar, 256);
    EXPECT_EQ(c->sliding_window, 512);
    EXPECT_EQ(c->sliding_layers,
              (std::vector<bool>{true, true, false, true, true, false}));
  }
}

TEST(ModelConfigTest, GemmaFieldsLoradCannotRunAreNamed) {
  json base = TinyLlama();
  base["architectures"] = {"Gemma3ForCausalLM"};
  base["model_type"] = "gemma3_text";
  auto refused = [&](const char* key, const json& value, const char* needle) {
    json j = base;
    j[key] = value;
    absl::StatusOr<model::ModelConfig> c = Parse(j);
    ASSERT_FALSE(c.ok()) << key;
    EXPECT_NE(c.status().message().find(needle), std::string::npos)
        << c.status();
  };
  refused("hidden_activation", "relu", "hidden_activation \"relu\"");
  refused("use_bidirectional_attention", true, "use_bidirectional_attention");
  refused("layer_types", json{"sliding_attention"}, "one type per layer (2)");
  refused("layer_types", json{"sliding_attention", "chunked_attention"},
          "layer_types[1]");
  refused("final_logit_softcapping", -1, "final_logit_softcapping");
  refused("query_pre_attn_scalar", 0, "query_pre_attn_scalar");
  refused(
      "rope_parameters",
      json{{"full_attention", {{"rope_type", "default"}}},
           {"sliding_attention", {{"rope_type", "linear"}, {"factor", 2.0}}}},
      "sliding_attention.rope_type");
  // The multimodal checkpoint is not a text model.
  json mm = base;
  mm["architectures"] = {"Gemma3ForConditionalGeneration"};
  mm["model_type"] = "gemma3";
  absl::StatusOr<model::ModelConfig> c = Parse(mm);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("Gemma3ForConditionalGeneration"),
            std::string::npos);
}

}  // namespace
}  // namespace lorad
