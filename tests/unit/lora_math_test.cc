#include <torch/torch.h>

#include <cstring>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/nf4_ref.h"
#include "lorad/model/tiny_model.h"
#include "lorad/worker/lora.h"
#include "lorad/worker/nf4_weight.h"

namespace lorad::worker {
namespace {

TEST(LoraMathTest, ForwardEqualsWxPlusScaledBAx) {
  torch::manual_seed(1);
  const int64_t in = 96, out = 80, r = 4;
  torch::Tensor w = torch::randn({out, in});
  torch::Tensor x = torch::randn({3, 5, in});
  LoraWeights lw{torch::randn({r, in}), torch::randn({out, r})};
  const double scale = 16.0 / r;
  torch::Tensor ours =
      torch::matmul(x, w.t()) + LoraDelta(x, lw, scale, /*dropout=*/0.0, false);
  // Written out element by element from the definition.
  torch::Tensor ax = torch::einsum("btk,rk->btr", {x, lw.a});
  torch::Tensor bax = torch::einsum("btr,or->bto", {ax, lw.b});
  torch::Tensor want = torch::einsum("btk,ok->bto", {x, w}) + bax * scale;
  EXPECT_TRUE(torch::allclose(ours, want, 1e-4, 1e-4));
}

TEST(LoraMathTest, DropoutOnlyInTraining) {
  torch::manual_seed(2);
  LoraWeights lw{torch::randn({2, 8}), torch::randn({8, 2})};
  torch::Tensor x = torch::randn({4, 8});
  torch::Tensor eval = LoraDelta(x, lw, 1.0, 0.5, /*training=*/false);
  torch::Tensor plain = torch::matmul(torch::matmul(x, lw.a.t()), lw.b.t());
  EXPECT_TRUE(torch::allclose(eval, plain));
  torch::Tensor train = LoraDelta(x, lw, 1.0, 0.5, /*training=*/true);
  EXPECT_FALSE(torch::allclose(train, plain));
}

// A job's generator decides its masks: the same seed gives the same
// delta, another seed another; a batch padded on the right to a longer T
// draws the masks of its own positions as it does unpadded; the kept
// values are scaled by 1 / (1 - p) as torch::dropout scales them.
TEST(LoraMathTest, DropoutMasksComeFromTheJobsGenerator) {
  torch::manual_seed(3);
  const int64_t in = 16, r = 2, rows = 3, t = 5, padded_t = 9;
  LoraWeights lw{torch::eye(in).narrow(0, 0, r), torch::ones({in, r})};
  torch::Tensor x = torch::rand({rows, t, in}) + 1;  // no zero inputs
  const double p = 0.25;
  auto delta = [&](const torch::Tensor& input, uint64_t seed, int64_t len) {
    return LoraDelta(input, lw, 1.0, p, /*training=*/true,
                     NewGenerator(torch::kCPU, seed), len);
  };
  torch::Tensor first = delta(x, 5, -1);
  EXPECT_TRUE(torch::equal(first, delta(x, 5, -1)));
  EXPECT_FALSE(torch::equal(first, delta(x, 6, -1)));
  torch::Tensor padded =
      torch::constant_pad_nd(x, {0, 0, 0, padded_t - t}, 0.0);
  torch::Tensor from_padded = delta(padded, 5, t);
  EXPECT_TRUE(torch::equal(from_padded.narrow(1, 0, t), first));
  // Every delta value sums x over the r kept-or-dropped inputs it reads:
  // each input either dropped (0) or kept and scaled by 1 / (1 - p).
  torch::Tensor sum_in = x.narrow(-1, 0, r).sum(-1);
  torch::Tensor all_kept = sum_in / (1 - p);
  EXPECT_TRUE((first.select(-1, 0) <= all_kept + 1e-5).all().item<bool>());
  EXPECT_TRUE((first.select(-1, 0) < all_kept - 1e-3).any().item<bool>())
      << "nothing was dropped";
  EXPECT_TRUE(torch::allclose(first.select(-1, 0), first.select(-1, in - 1)));
}

TEST(LoraMathTest, NewAdapterStartsAsIdentityDelta) {
  LoraOptions o;
  o.rank = 4;
  o.target_modules = {"q_proj", "down_proj"};
  auto set = AdapterSet::CreateForTraining(model::TinyModelConfig(), o, 7,
                                           torch::kCPU);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->weights().size(),
            2u * model::TinyModelConfig().num_hidden_layers);
  for (const auto& [key, w] : set->weights()) {
    EXPECT_EQ(w.b.abs().sum().item<float>(), 0.0f) << key;
    EXPECT_GT(w.a.abs().sum().item<float>(), 0.0f) << key;
  }
  o.target_modules = {"qq_proj"};
  EXPECT_EQ(
      AdapterSet::CreateForTraining(model::TinyModelConfig(), o, 7, torch::kCPU)
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(LoraMathTest, Nf4MatMulMatchesDequantizedWeightAndItsGradient) {
  torch::manual_seed(3);
  torch::Tensor w = torch::randn({48, 128}) * 0.05;
  Nf4Weight q = Nf4Weight::Quantize(w.contiguous().data_ptr<float>(), 48, 128,
                                    torch::kCPU);
  torch::Tensor deq = q.Dequantize(torch::kFloat32);
  // Quantization error stays within the NF4 bound (0.152 x block absmax).
  EXPECT_LT((deq - w).abs().max().item<float>(),
            0.16f * w.abs().max().item<float>());
  torch::Tensor x = torch::randn({6, 128}, torch::requires_grad());
  torch::Tensor y = Nf4MatMul(x, q);
  EXPECT_TRUE(torch::allclose(y, torch::matmul(x, deq.t()), 1e-5, 1e-5));
  torch::Tensor g = torch::randn({6, 48});
  y.backward(g);
  EXPECT_TRUE(torch::allclose(x.grad(), torch::matmul(g, deq), 1e-5, 1e-5));
  // Bytes per parameter of the double-quantized state.
  EXPECT_NEAR(static_cast<double>(q.StorageBytes()) / q.numel(),
              0.5 + 1.0 / 64 + 4.0 / (64 * 256), 0.01);
}

// The CPU path splits blocks over threads; every shape (partial last block,
// odd count, several absmax groups, more blocks than one task takes) must
// give exactly the reference's values.
TEST(LoraMathTest, Nf4CpuDequantizeEqualsReferenceBitForBit) {
  torch::manual_seed(5);
  for (auto [out, in] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 3}, {37, 131}, {300, 257}, {64, 1024}}) {
    torch::Tensor w = torch::randn({out, in}) * 0.02;
    const float* data = w.contiguous().data_ptr<float>();
    Nf4Weight q = Nf4Weight::Quantize(data, out, in, torch::kCPU);
    nf4::QuantizedTensor ref = nf4::Quantize(data, out * in);
    std::vector<float> want(out * in);
    nf4::Dequantize(ref, want.data());
    torch::Tensor got = q.Dequantize(torch::kFloat32);
    ASSERT_EQ(got.sizes(), (std::vector<int64_t>{out, in}));
    EXPECT_EQ(std::memcmp(got.data_ptr<float>(), want.data(),
                          want.size() * sizeof(float)),
              0)
        << out << "x" << in;
    EXPECT_TRUE(
        torch::equal(q.Dequantize(torch::kBFloat16), got.to(torch::kBFloat16)));
  }
}

// DequantizeForMatMul reuses this thread's buffers on the CPU: after weights
// of other shapes and dtypes went through them (growing, then shrinking),
// each call still gives exactly Dequantize's values, and the matmul and its
// gradient through it stay those of the fresh matrix.
TEST(LoraMathTest, Nf4ScratchDequantizeEqualsAFreshOne) {
  torch::manual_seed(7);
  std::vector<Nf4Weight> weights;
  for (auto [out, in] : std::vector<std::pair<int64_t, int64_t>>{
           {37, 131}, {300, 257}, {16, 64}, {300, 257}}) {
    torch::Tensor w = (torch::randn({out, in}) * 0.02).contiguous();
    weights.push_back(
        Nf4Weight::Quantize(w.data_ptr<float>(), out, in, torch::kCPU));
  }
  for (int round = 0; round < 2; ++round) {
    for (const Nf4Weight& q : weights) {
      for (torch::ScalarType dtype : {torch::kFloat32, torch::kBFloat16}) {
        const torch::Tensor fresh = q.Dequantize(dtype);
        const torch::Tensor scratch = q.DequantizeForMatMul(dtype);
        ASSERT_EQ(scratch.sizes(), fresh.sizes());
        ASSERT_EQ(scratch.scalar_type(), dtype);
        EXPECT_TRUE(torch::equal(scratch, fresh))
            << q.out_features() << "x" << q.in_features() << " " << dtype;
      }
    }
  }
  // One weight's buffer holds another's values only until the next call:
  // a matmul through the second weight gives the second weight's product.
  const Nf4Weight& a = weights[1];
  const Nf4Weight& b = weights[3];
  torch::Tensor x = torch::randn({5, 257}, torch::requires_grad());
  torch::Tensor ya = Nf4MatMul(x, a);
  torch::Tensor yb = Nf4MatMul(x, b);
  EXPECT_TRUE(torch::equal(
      ya, torch::matmul(x.detach(), a.Dequantize(torch::kFloat32).t())));
  EXPECT_TRUE(torch::equal(
      yb, torch::matmul(x.detach(), b.Dequantize(torch::kFloat32).t())));
  torch::Tensor g = torch::randn({5, 300});
  (ya + 2 * yb).backward(g);
  const torch::Tensor want =
      torch::matmul(g, a.Dequantize(torch::kFloat32)) +
      torch::matmul(2 * g, b.Dequantize(torch::kFloat32));
  EXPECT_TRUE(torch::allclose(x.grad(), want, 1e-5, 1e-5));
}

}  // namespace
}  // namespace lorad::worker
