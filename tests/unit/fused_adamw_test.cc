// FusedAdamW (one fused kernel call per step) against torch::optim::AdamW
// (a loop of ops per tensor): the same gradients give the same parameters
// and moments, with weight decay, a learning rate that changes between
// steps, amsgrad, a parameter without a gradient in some steps, and across
// a save()/load() into a fresh optimizer in the middle.
#include "lorad/worker/fused_adamw.h"

#include <torch/torch.h>

#include <sstream>
#include <vector>

#include "gtest/gtest.h"

namespace lorad::worker {
namespace {

std::vector<torch::Tensor> Params() {
  torch::manual_seed(5);
  return {torch::randn({8, 96}).requires_grad_(true),
          torch::randn({80, 8}).requires_grad_(true),
          torch::randn({3}).requires_grad_(true)};
}

void SetGrads(const std::vector<torch::Tensor>& params, int step) {
  torch::manual_seed(100 + step);
  for (size_t i = 0; i < params.size(); ++i) {
    // The last parameter has no gradient in odd steps.
    if (i == 2 && step % 2 == 1) {
      params[i].mutable_grad() = torch::Tensor();
      continue;
    }
    params[i].mutable_grad() = torch::randn_like(params[i]) * (1 + step);
  }
}

void ExpectSameState(torch::optim::AdamW& a, torch::optim::AdamW& b,
                     const std::vector<torch::Tensor>& pa,
                     const std::vector<torch::Tensor>& pb) {
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(torch::allclose(pa[i], pb[i], 1e-6, 1e-7))
        << "param " << i << " max diff "
        << (pa[i] - pb[i]).abs().max().item<float>();
    auto& sa = static_cast<torch::optim::AdamWParamState&>(
        *a.state().at(pa[i].unsafeGetTensorImpl()));
    auto& sb = static_cast<torch::optim::AdamWParamState&>(
        *b.state().at(pb[i].unsafeGetTensorImpl()));
    EXPECT_EQ(sa.step(), sb.step()) << i;
    // The fused kernel's lerp rounds the first moment differently from
    // AdamW's mul and add: equal to float rounding of gradients up to 6.
    EXPECT_TRUE(torch::allclose(sa.exp_avg(), sb.exp_avg(), 1e-5, 1e-6))
        << i << " max diff "
        << (sa.exp_avg() - sb.exp_avg()).abs().max().item<float>();
    EXPECT_TRUE(torch::allclose(sa.exp_avg_sq(), sb.exp_avg_sq(), 1e-5, 1e-6))
        << i;
  }
}

class FusedAdamWTest : public testing::TestWithParam<bool> {};

TEST_P(FusedAdamWTest, StepsAsTorchAdamWDoes) {
  const bool amsgrad = GetParam();
  std::vector<torch::Tensor> ref_params = Params(), fused_params = Params();
  auto options = torch::optim::AdamWOptions(1e-2)
                     .betas({0.9, 0.99})
                     .eps(1e-6)
                     .weight_decay(0.05)
                     .amsgrad(amsgrad);
  torch::optim::AdamW ref(ref_params, options);
  auto fused = std::make_unique<FusedAdamW>(fused_params, options);
  std::vector<torch::Tensor> start;
  for (const auto& p : fused_params) start.push_back(p.detach().clone());
  for (int step = 0; step < 6; ++step) {
    const double lr = 1e-2 * (6 - step) / 6.0;
    for (auto* o : {static_cast<torch::optim::Optimizer*>(&ref),
                    static_cast<torch::optim::Optimizer*>(fused.get())}) {
      for (auto& g : o->param_groups()) g.options().set_lr(lr);
    }
    SetGrads(ref_params, step);
    SetGrads(fused_params, step);
    ref.step();
    fused->step();
    if (step == 2) {
      // Through a checkpoint's bytes into a new optimizer.
      std::ostringstream bytes;
      {
        torch::serialize::OutputArchive out;
        fused->save(out);
        out.save_to(bytes);
      }
      fused = std::make_unique<FusedAdamW>(fused_params, options);
      std::istringstream in_bytes(bytes.str());
      torch::serialize::InputArchive in;
      in.load_from(in_bytes);
      fused->load(in);
    }
  }
  ExpectSameState(ref, *fused, ref_params, fused_params);
  // The steps moved the parameters: the comparison is not of untouched
  // tensors.
  for (size_t i = 0; i < fused_params.size(); ++i) {
    EXPECT_GT((fused_params[i] - start[i]).abs().max().item<float>(), 1e-3)
        << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Amsgrad, FusedAdamWTest, testing::Bool());

}  // namespace
}  // namespace lorad::worker
