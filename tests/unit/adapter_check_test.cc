// A PEFT adapter directory checked against a base model
// (OpenPeftAdapter): what the server does before it accepts an upload
// and the worker before it loads one.
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lorad/model/peft_adapter.h"
#include "lorad/model/safetensors.h"
#include "lorad/model/tiny_model.h"
#include "nlohmann/json.hpp"

namespace lorad::model {
namespace {

struct Tensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
};

std::string Key(int layer, const std::string& path, const std::string& half) {
  return absl::StrCat("base_model.model.model.layers.", layer, ".", path,
                      ".lora_", half, ".weight");
}

// A valid rank-4 adapter on q_proj (64 -> 64) and down_proj (176 -> 64) of
// both tiny layers.
std::vector<Tensor> GoodTensors() {
  std::vector<Tensor> t;
  for (int layer = 0; layer < 2; ++layer) {
    t.push_back({Key(layer, "self_attn.q_proj", "A"), DType::kF32, {4, 64}});
    t.push_back({Key(layer, "self_attn.q_proj", "B"), DType::kF32, {64, 4}});
    t.push_back({Key(layer, "mlp.down_proj", "A"), DType::kBF16, {4, 176}});
    t.push_back({Key(layer, "mlp.down_proj", "B"), DType::kBF16, {64, 4}});
  }
  return t;
}

nlohmann::json GoodConfig() {
  return {{"peft_type", "LORA"},
          {"r", 4},
          {"lora_alpha", 8},
          {"target_modules", {"q_proj", "down_proj"}},
          {"base_model_name_or_path", "tiny"}};
}

std::string Write(const nlohmann::json& config,
                  const std::vector<Tensor>& tensors) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  static int n = 0;
  std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) /
                              "adapter_check_test" /
                              absl::StrCat(info->name(), "-", n++);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "adapter_config.json") << config.dump();
  std::vector<std::string> data;
  std::vector<TensorToWrite> out;
  for (const Tensor& t : tensors) {
    int64_t numel = 1;
    for (int64_t d : t.shape) numel *= d;
    data.emplace_back(numel * DTypeSize(t.dtype), '\0');
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    out.push_back(
        {tensors[i].name, tensors[i].dtype, tensors[i].shape, data[i]});
  }
  std::ofstream(dir / "adapter_model.safetensors", std::ios::binary)
      << SerializeSafetensors(out, {});
  return dir.string();
}

TEST(AdapterCheckTest, AcceptsAValidAdapter) {
  auto adapter =
      OpenPeftAdapter(Write(GoodConfig(), GoodTensors()), TinyModelConfig());
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  EXPECT_EQ(adapter->spec.rank, 4);
  EXPECT_EQ(adapter->spec.alpha, 8);
  EXPECT_EQ(adapter->spec.target_modules,
            (std::vector<std::string>{"down_proj", "q_proj"}));
  EXPECT_EQ(adapter->spec.base_model_name_or_path, "tiny");
  EXPECT_GT(adapter->size_bytes, 4 * 64 * 4);
  EXPECT_EQ(adapter->weights->tensors().size(), GoodTensors().size());
}

TEST(AdapterCheckTest, RefusesWhatDoesNotFitNamingFileAndKey) {
  struct Case {
    std::string what;
    nlohmann::json config;
    std::vector<Tensor> tensors;
    std::string want;
  };
  std::vector<Case> cases;
  {
    auto t = GoodTensors();
    t[1].shape = {64, 8};
    cases.push_back({"shape", GoodConfig(), t,
                     "adapter_model.safetensors: key \"" + t[1].name +
                         "\": shape [64, 8]"});
  }
  {
    auto c = GoodConfig();
    c["target_modules"] = {"q_proj", "attn"};
    cases.push_back({"unknown target", c, GoodTensors(),
                     "adapter_config.json: key \"target_modules\": unknown "
                     "module \"attn\""});
  }
  {
    auto t = GoodTensors();
    t.push_back({Key(5, "self_attn.q_proj", "A"), DType::kF32, {4, 64}});
    cases.push_back({"layer", GoodConfig(), t, "layer 5 does not exist"});
  }
  {
    auto t = GoodTensors();
    t.push_back({Key(0, "self_attn.k_proj", "A"), DType::kF32, {4, 64}});
    t.push_back({Key(0, "self_attn.k_proj", "B"), DType::kF32, {32, 4}});
    cases.push_back({"not a target", GoodConfig(), t,
                     "module k_proj is not in adapter_config.json's "
                     "target_modules"});
  }
  {
    auto t = GoodTensors();
    t.pop_back();
    cases.push_back({"half missing", GoodConfig(), t, "has lora_A but no"});
  }
  {
    auto t = GoodTensors();
    t[0].dtype = DType::kI32;
    cases.push_back({"dtype", GoodConfig(), t, "dtype I32"});
  }
  {
    auto t = GoodTensors();
    t.push_back({"base_model.model.lm_head.weight", DType::kF32, {259, 64}});
    cases.push_back({"not lora", GoodConfig(), t, "lm_head"});
  }
  {
    auto c = GoodConfig();
    c["peft_type"] = "IA3";
    cases.push_back({"peft type", c, GoodTensors(), "peft_type"});
  }
  {
    auto c = GoodConfig();
    c.erase("r");
    cases.push_back({"no r", c, GoodTensors(), "key \"r\""});
  }
  {
    auto c = GoodConfig();
    c["lora_alpha"] = -1;
    cases.push_back({"alpha", c, GoodTensors(), "lora_alpha"});
  }
  cases.push_back({"empty", GoodConfig(), {}, "holds no LoRA weights"});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    auto facts = OpenPeftAdapter(Write(c.config, c.tensors), TinyModelConfig());
    ASSERT_FALSE(facts.ok());
    EXPECT_TRUE(absl::IsInvalidArgument(facts.status())) << facts.status();
    EXPECT_NE(facts.status().message().find(c.want), std::string::npos)
        << facts.status().message();
  }
}

TEST(AdapterCheckTest, MissingAndCorruptFiles) {
  const ModelConfig tiny = TinyModelConfig();
  std::string dir = Write(GoodConfig(), GoodTensors());
  std::filesystem::remove(dir + "/adapter_model.safetensors");
  auto facts = OpenPeftAdapter(dir, tiny);
  EXPECT_TRUE(absl::IsNotFound(facts.status()));
  EXPECT_EQ(facts.status().message(), "adapter_model.safetensors: missing");
  std::filesystem::remove(dir + "/adapter_config.json");
  facts = OpenPeftAdapter(dir, tiny);
  EXPECT_TRUE(absl::IsNotFound(facts.status()));
  EXPECT_EQ(facts.status().message(), "adapter_config.json: missing");

  dir = Write(GoodConfig(), GoodTensors());
  std::filesystem::resize_file(dir + "/adapter_model.safetensors", 50);
  facts = OpenPeftAdapter(dir, tiny);
  EXPECT_TRUE(absl::IsInvalidArgument(facts.status()));
  EXPECT_NE(facts.status().message().find(
                "adapter_model.safetensors: not a valid safetensors file"),
            std::string::npos)
      << facts.status().message();

  dir = Write(GoodConfig(), GoodTensors());
  std::ofstream(dir + "/adapter_config.json") << "{\"r\": 4,";
  facts = OpenPeftAdapter(dir, tiny);
  EXPECT_EQ(facts.status().message(), "adapter_config.json: not valid JSON");
}

TEST(AdapterCheckTest, ModelConfigOfTinyAndMissingDir) {
  auto tiny = ModelConfigOf("tiny");
  ASSERT_TRUE(tiny.ok());
  EXPECT_EQ(tiny->hidden_size, TinyModelConfig().hidden_size);
  EXPECT_FALSE(ModelConfigOf("/nonexistent/model").ok());
}

}  // namespace
}  // namespace lorad::model
