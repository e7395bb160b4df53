// Shared set-up for the serving tests: the tiny model and random adapters.
#ifndef LORAD_TESTS_UNIT_SERVING_TEST_UTIL_H_
#define LORAD_TESTS_UNIT_SERVING_TEST_UTIL_H_

#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lorad/common/files.h"
#include "lorad/model/tiny_model.h"
#include "lorad/worker/llama_model.h"
#include "lorad/worker/lora.h"

namespace lorad::worker::testing {

// A fresh directory named after the running test.
inline std::string TestRoot(const std::string& prefix) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string root = ::testing::TempDir() + "/" + prefix + "_" +
                     info->test_suite_name() + "_" + info->name();
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root);
  return root;
}

inline std::unique_ptr<LlamaModel> LoadTiny(const std::string& root,
                                            bool quantize = true) {
  auto dir = model::ResolveModelDir("tiny", root + "/models");
  EXPECT_TRUE(dir.ok()) << dir.status();
  LoadOptions o;
  o.quantize = quantize;
  auto model = LlamaModel::Load(*dir, o);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::move(*model) : nullptr;
}

// Writes a PEFT adapter with random A and B (std `b_std`) to `dir`.
inline void WriteAdapter(const std::string& dir,
                         const model::ModelConfig& config, int64_t rank,
                         double alpha, std::vector<std::string> targets,
                         uint64_t seed, const std::string& base = "tiny",
                         double b_std = 0.5) {
  LoraOptions lo;
  lo.rank = rank;
  lo.alpha = alpha;
  lo.target_modules = std::move(targets);
  auto set = AdapterSet::CreateForTraining(config, lo, seed, torch::kCPU);
  ASSERT_TRUE(set.ok()) << set.status();
  {
    torch::NoGradGuard no_grad;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed + 1);
    for (const auto& [k, w] : set->weights()) w.b.normal_(0, b_std, gen);
  }
  ASSERT_TRUE(set->SavePeft(dir, base).ok());
}

inline const std::vector<std::string>& AllTargets() {
  static const auto* t =
      new std::vector<std::string>{"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                   "gate_proj", "up_proj", "down_proj"};
  return *t;
}

}  // namespace lorad::worker::testing

#endif  // LORAD_TESTS_UNIT_SERVING_TEST_UTIL_H_
