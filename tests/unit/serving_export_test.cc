// ExportMerged: the dequantized base with B·A·scale folded in, as a 16-bit
// HF checkpoint that our loader (and so transformers) reads back.
#include <torch/torch.h>

#include <filesystem>

#include "gtest/gtest.h"
#include "lorad/model/safetensors.h"
#include "nlohmann/json.hpp"
#include "serving_test_util.h"

namespace lorad::worker {
namespace {

using testing::AllTargets;

class ExportMergedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::TestRoot("export");
    model_ = testing::LoadTiny(root_);
    ASSERT_NE(model_, nullptr);
    testing::WriteAdapter(root_ + "/adapter", model_->config(), 8, 16,
                          AllTargets(), 77, "tiny", 0.3);
    auto adapter =
        AdapterSet::LoadPeft(root_ + "/adapter", model_->config(), torch::kCPU);
    ASSERT_TRUE(adapter.ok()) << adapter.status();
    adapter_ = std::make_unique<AdapterSet>(*std::move(adapter));
    ids_ = torch::tensor({{256, 72, 101, 108, 108, 111, 44, 32, 119, 111},
                          {256, 1, 2, 3, 200, 201, 202, 250, 251, 252}});
  }

  torch::Tensor Logits(const LlamaModel& m, const AdapterSet* a) {
    torch::NoGradGuard no_grad;
    ForwardOptions fo;
    fo.adapter = a;
    return m.Forward(ids_, fo);
  }

  std::unique_ptr<LlamaModel> LoadDense(const std::string& dir) {
    LoadOptions o;
    o.quantize = false;
    auto m = LlamaModel::Load(dir, o);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? std::move(*m) : nullptr;
  }

  std::string root_;
  std::unique_ptr<LlamaModel> model_;
  std::unique_ptr<AdapterSet> adapter_;
  torch::Tensor ids_;
};

TEST_F(ExportMergedTest, MergedLogitsMatchBasePlusAdapterInBf16) {
  const std::string out = root_ + "/merged";
  auto bytes = model_->ExportMerged(adapter_.get(), out, torch::kBFloat16);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, model_->config().NumParameters() * 2);
  auto file = model::SafetensorsFile::Open(out + "/model.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  for (const model::TensorInfo& t : (*file)->tensors()) {
    EXPECT_EQ(t.dtype, model::DType::kBF16) << t.name;
  }
  EXPECT_TRUE(std::filesystem::exists(out + "/tokenizer.json"));
  auto config = nlohmann::json::parse(*ReadFile(out + "/config.json"));
  EXPECT_EQ(config["torch_dtype"], "bfloat16");

  auto merged = LoadDense(out);
  ASSERT_NE(merged, nullptr);
  torch::Tensor want = Logits(*model_, adapter_.get());
  torch::Tensor got = Logits(*merged, nullptr);
  torch::Tensor base = Logits(*model_, nullptr);
  const float scale = want.abs().max().item<float>();
  const float err = (got - want).abs().max().item<float>();
  // bf16 keeps 8 bits of mantissa: weights move by <= 2^-9 relative, which
  // moves these logits by well under 2% of their range. The adapter's own
  // effect is far larger, so a merge that dropped or mis-scaled it fails.
  EXPECT_LT(err, 0.02f * scale) << "max err " << err << " of " << scale;
  EXPECT_GT((want - base).abs().max().item<float>(), 10 * err);
}

TEST_F(ExportMergedTest, ShardedFloat16ExportLoadsBack) {
  const std::string single = root_ + "/single", sharded = root_ + "/sharded";
  ASSERT_TRUE(model_->ExportMerged(adapter_.get(), single, torch::kHalf).ok());
  auto bytes =
      model_->ExportMerged(adapter_.get(), sharded, torch::kHalf, 64 << 10);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  ASSERT_TRUE(
      std::filesystem::exists(sharded + "/model.safetensors.index.json"));
  EXPECT_FALSE(std::filesystem::exists(sharded + "/model.safetensors"));
  int shards = 0;
  for (const auto& e : std::filesystem::directory_iterator(sharded)) {
    shards += e.path().filename().string().rfind("model-", 0) == 0;
  }
  EXPECT_GT(shards, 2);
  auto a = LoadDense(single), b = LoadDense(sharded);
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(torch::equal(Logits(*a, nullptr), Logits(*b, nullptr)));
}

TEST_F(ExportMergedTest, RefusesTheBaseDirectoryAndOtherDtypes) {
  EXPECT_TRUE(absl::IsInvalidArgument(
      model_->ExportMerged(adapter_.get(), model_->dir(), torch::kBFloat16)
          .status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      model_->ExportMerged(adapter_.get(), root_ + "/x", torch::kFloat32)
          .status()));
}

}  // namespace
}  // namespace lorad::worker
