// `loractl models inspect`'s report (model/inspect.h) on the built-in tiny
// model and on directories lorad cannot run, each problem named.
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "lorad/model/inspect.h"
#include "lorad/model/tiny_model.h"

namespace lorad::model {
namespace {

std::string TinyDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/inspect_" + name;
  std::filesystem::remove_all(dir);
  EXPECT_TRUE(WriteRandomLlama(dir, TinyModelConfig(), 1).ok());
  return dir;
}

bool AnyProblemHas(const nlohmann::ordered_json& report,
                   const std::string& text) {
  for (const auto& p : report["problems"]) {
    if (p.get<std::string>().find(text) != std::string::npos) return true;
  }
  return false;
}

TEST(ModelInspectTest, TheTinyModelIsReady) {
  const std::string dir = TinyDir("tiny");
  const nlohmann::ordered_json report = InspectModelDir(dir);
  ASSERT_TRUE(report["ready"].get<bool>()) << report.dump(2);
  EXPECT_EQ(report["model"]["architecture"], "LlamaForCausalLM");
  EXPECT_EQ(report["model"]["layers"], TinyModelConfig().num_hidden_layers);
  EXPECT_EQ(report["tokenizer"]["kind"], "BPE, byte-level");
  ASSERT_EQ(report["tokenizer"]["adds_before_text"].size(), 1u);
  EXPECT_EQ(report["tokenizer"]["adds_before_text"][0]["text"],
            "<|begin_of_text|>");
  EXPECT_TRUE(report["tokenizer"]["adds_after_text"].empty());
  EXPECT_EQ(report["stop_ids"][0]["text"], "<|end_of_text|>");
  EXPECT_EQ(
      report["chat_template"]["source"].get<std::string>().rfind("none", 0),
      0u);
  EXPECT_GT(report["model"]["nf4_base_bytes"].get<int64_t>(), 0);
  const std::string text = FormatInspection(report);
  EXPECT_NE(text.find("ready: lorad runs this model"), std::string::npos)
      << text;
  EXPECT_NE(text.find("\"<|begin_of_text|>\" (256)"), std::string::npos)
      << text;
}

TEST(ModelInspectTest, AChatTemplateIsFoundAndNamed) {
  const std::string dir = TinyDir("template");
  std::ofstream(dir + "/chat_template.jinja")
      << "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}";
  const nlohmann::ordered_json report = InspectModelDir(dir);
  ASSERT_TRUE(report["ready"].get<bool>()) << report.dump(2);
  EXPECT_EQ(report["chat_template"]["source"], "chat_template.jinja");
}

TEST(ModelInspectTest, WhatCannotRunIsListedByName) {
  std::string dir = TinyDir("phi");
  std::ofstream(dir + "/config.json")
      << R"({"architectures": ["Phi3ForCausalLM"], "vocab_size": 259,
             "hidden_size": 64, "intermediate_size": 176,
             "num_hidden_layers": 2, "num_attention_heads": 4})";
  nlohmann::ordered_json report = InspectModelDir(dir);
  EXPECT_FALSE(report["ready"].get<bool>());
  EXPECT_TRUE(AnyProblemHas(report, "Phi3ForCausalLM")) << report.dump(2);
  EXPECT_NE(FormatInspection(report).find("not runnable"), std::string::npos);

  // Only the slow tokenizer's file: the message says how to write the one
  // lorad reads.
  dir = TinyDir("slow_tokenizer");
  std::filesystem::rename(dir + "/tokenizer.json", dir + "/tokenizer.model");
  report = InspectModelDir(dir);
  EXPECT_FALSE(report["ready"].get<bool>());
  EXPECT_TRUE(
      AnyProblemHas(report, "has tokenizer.model but no tokenizer.json"))
      << report.dump(2);
  EXPECT_TRUE(AnyProblemHas(report, "save_pretrained")) << report.dump(2);

  // A Gemma 2 config over Llama weights: Gemma's extra norms are missing.
  dir = TinyDir("gemma");
  std::ofstream(dir + "/config.json")
      << R"({"architectures": ["Gemma2ForCausalLM"], "vocab_size": 259,
             "hidden_size": 64, "intermediate_size": 176,
             "num_hidden_layers": 2, "num_attention_heads": 4})";
  report = InspectModelDir(dir);
  EXPECT_FALSE(report["ready"].get<bool>());
  EXPECT_TRUE(AnyProblemHas(report, "pre_feedforward_layernorm"))
      << report.dump(2);

  // One layer more than the weights hold: its tensors are missing.
  dir = TinyDir("layers");
  ModelConfig deeper = TinyModelConfig();
  deeper.num_hidden_layers += 1;
  std::ofstream(dir + "/config.json") << deeper.ToJson();
  report = InspectModelDir(dir);
  EXPECT_TRUE(AnyProblemHas(
      report,
      "tensor model.layers." + std::to_string(deeper.num_hidden_layers - 1)))
      << report.dump(2);

  // A template that does not parse names its file and line.
  dir = TinyDir("bad_template");
  std::ofstream(dir + "/chat_template.jinja") << "line one\n{% if %}";
  report = InspectModelDir(dir);
  EXPECT_TRUE(AnyProblemHas(report, "chat_template.jinja")) << report.dump(2);
  EXPECT_TRUE(AnyProblemHas(report, "line 2")) << report.dump(2);
}

}  // namespace
}  // namespace lorad::model
