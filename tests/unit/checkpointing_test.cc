#include <torch/torch.h>

#include "gtest/gtest.h"
#include "lorad/model/tiny_model.h"
#include "lorad/worker/llama_model.h"

namespace lorad::worker {
namespace {

std::vector<torch::Tensor> Grads(const LlamaModel& model,
                                 const AdapterSet& adapter,
                                 const torch::Tensor& ids, bool checkpoint) {
  for (const torch::Tensor& p : adapter.Parameters()) {
    if (p.grad().defined()) p.mutable_grad().zero_();
  }
  torch::manual_seed(99);  // same dropout masks in both runs
  ForwardOptions o;
  o.adapter = &adapter;
  o.training = true;
  o.gradient_checkpointing = checkpoint;
  torch::Tensor logits = model.Forward(ids, o);
  torch::Tensor loss = torch::nn::functional::cross_entropy(
      logits.slice(1, 0, -1).reshape({-1, logits.size(-1)}),
      ids.slice(1, 1).reshape({-1}));
  loss.backward();
  std::vector<torch::Tensor> out;
  for (const torch::Tensor& p : adapter.Parameters()) {
    out.push_back(p.grad().clone());
  }
  return out;
}

// Four blocks: the first (whose input needs no gradient), middle ones
// (whose input gradient flows on), and the last (not checkpointed).
TEST(CheckpointingTest, GradientsEqualPlainBackward) {
  std::string dir = ::testing::TempDir() + "/ckpt_model";
  model::ModelConfig config = model::TinyModelConfig();
  config.num_hidden_layers = 4;
  ASSERT_TRUE(model::WriteRandomLlama(dir, config, 17).ok());
  auto model = LlamaModel::Load(dir, LoadOptions());
  ASSERT_TRUE(model.ok()) << model.status();
  LoraOptions lo;
  lo.rank = 4;
  lo.dropout = 0.1;
  lo.target_modules = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                       "gate_proj", "up_proj", "down_proj"};
  auto adapter =
      AdapterSet::CreateForTraining((*model)->config(), lo, 5, torch::kCPU);
  ASSERT_TRUE(adapter.ok());
  {
    torch::NoGradGuard no_grad;
    for (const auto& [k, w] : adapter->weights()) w.b.normal_(0, 0.05);
  }
  torch::Tensor ids = torch::randint(0, 256, {2, 24}, torch::kLong);
  auto plain = Grads(**model, *adapter, ids, false);
  auto ckpt = Grads(**model, *adapter, ids, true);
  ASSERT_EQ(plain.size(), ckpt.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_GT(plain[i].abs().sum().item<float>(), 0.0f) << i;
    EXPECT_TRUE(torch::allclose(plain[i], ckpt[i], 1e-5, 1e-6))
        << "parameter " << i << " max diff "
        << (plain[i] - ckpt[i]).abs().max().item<float>();
  }
}

}  // namespace
}  // namespace lorad::worker
