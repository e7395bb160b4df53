// The int8 base against bitsandbytes (a Python peer run at test time,
// tests/golden/int8_peer.py): Int8Params' CB/SCB bytes, Linear8bitLt's
// output and input gradient with outlier columns, a model's logits against
// transformers with BitsAndBytesConfig(load_in_8bit=True), and the bytes
// the base holds per parameter.
#include <torch/torch.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lorad/common/files.h"
#include "lorad/model/memory_estimate.h"
#include "lorad/model/safetensors.h"
#include "lorad/model/tiny_model.h"
#include "lorad/model/tokenizer.h"
#include "lorad/worker/int8_weight.h"
#include "lorad/worker/llama_model.h"
#include "test_dir.h"

namespace lorad::worker {
namespace {

const std::string kScript =
    std::string(LORAD_SOURCE_DIR) + "/tests/golden/int8_peer.py";

bool HavePeer() {
  static const bool have =
      std::filesystem::exists(LORAD_PYTHON) &&
      std::system((std::string(LORAD_PYTHON) +
                   " -c 'import bitsandbytes, transformers' 2>/dev/null")
                      .c_str()) == 0;
  return have;
}

void RunPeer(const std::string& args) {
  const std::string cmd =
      std::string(LORAD_PYTHON) + " " + kScript + " " + args + " 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

void WriteFp32(const std::string& path,
               const std::vector<std::pair<std::string, torch::Tensor>>& ts) {
  std::vector<model::TensorToWrite> out;
  for (const auto& [name, t] : ts) {
    ASSERT_TRUE(t.is_contiguous() && t.scalar_type() == torch::kFloat32);
    out.push_back({name, model::DType::kF32,
                   std::vector<int64_t>(t.sizes().begin(), t.sizes().end()),
                   std::string_view(static_cast<const char*>(t.data_ptr()),
                                    t.numel() * 4)});
  }
  ASSERT_TRUE(model::WriteSafetensors(path, std::move(out), {}).ok());
}

// The tensor `name` of a safetensors file, in its own dtype (F32, I8, I64).
torch::Tensor Read(const std::string& path, const std::string& name) {
  auto file = model::SafetensorsFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  const model::TensorInfo* t = (*file)->Find(name);
  EXPECT_NE(t, nullptr) << name;
  torch::ScalarType type = torch::kFloat32;
  if (t->dtype == model::DType::kI8) type = torch::kInt8;
  if (t->dtype == model::DType::kI64) type = torch::kLong;
  torch::Tensor out = torch::empty(t->shape, type);
  EXPECT_EQ(out.numel() * out.element_size(), static_cast<int64_t>(t->nbytes));
  std::memcpy(out.data_ptr(), t->data, t->nbytes);
  return out;
}

float MaxAbs(const torch::Tensor& t) { return t.abs().max().item<float>(); }

// Weights of a real checkpoint's scale, with a row of zeros (SCB 0) and a
// row with one large weight (its other weights round to few levels).
torch::Tensor TestWeight(int64_t out, int64_t in) {
  torch::manual_seed(7);
  torch::Tensor w = torch::randn({out, in}) * 0.05;
  w[3].zero_();
  w[5][11] = 4.0;
  return w;
}

// Inputs with outlier columns: column 5 ~30x larger everywhere, one
// lone -9 in column 17, and a row of zeros.
torch::Tensor TestInput(int64_t in) {
  torch::manual_seed(11);
  torch::Tensor x = torch::randn({2, 7, in});
  x.select(2, 5).mul_(30);
  x[0][3][17] = -9.0;
  x[1][2].zero_();
  return x;
}

TEST(Int8Test, BytesEqualBitsandbytesInt8Params) {
  if (!HavePeer()) GTEST_SKIP() << "venv with bitsandbytes missing";
  const std::string dir = FreshTestDir("int8");
  const torch::Tensor w = TestWeight(96, 80);
  WriteFp32(dir + "/in.safetensors", {{"w", w}});
  RunPeer("quantize " + dir + "/in.safetensors " + dir + "/q.safetensors");
  const torch::Tensor cb = Read(dir + "/q.safetensors", "CB");
  const torch::Tensor scb = Read(dir + "/q.safetensors", "SCB");

  const Int8Weight got =
      Int8Weight::Quantize(w.data_ptr<float>(), 96, 80, torch::kCPU);
  ASSERT_EQ(got.cb().scalar_type(), torch::kInt8);
  EXPECT_TRUE(torch::equal(got.cb(), cb))
      << "bytes differ at " << (got.cb() != cb).nonzero().slice(0, 0, 5);
  EXPECT_TRUE(torch::equal(got.scb(), scb));
  EXPECT_EQ(got.scb()[3].item<float>(), 0.0f);
  EXPECT_EQ(MaxAbs(got.cb()[3].to(torch::kFloat32)), 0.0f);
  EXPECT_EQ(got.StorageBytes(), 96 * 80 + 96 * 4);
}

// LLM.int8's error bound for one output: the int8 parts err by at most half
// a step of each row's scale (absmax / 254) on each side, the outlier part
// only by the weight's half step; plus fp16 rounding of x (2^-11 relative).
torch::Tensor ErrorBound(const torch::Tensor& x2, const torch::Tensor& w,
                         const torch::Tensor& scb) {
  torch::Tensor outliers = x2.abs() >= kInt8OutlierThreshold;
  torch::Tensor cols = outliers.any(0);
  torch::Tensor regular = x2.masked_fill(cols.unsqueeze(0), 0);
  torch::Tensor ax = regular.abs().amax(1, /*keepdim=*/true);  // [rows, 1]
  torch::Tensor abs_w_sum = w.abs().sum(1).unsqueeze(0);       // [1, out]
  const double in = static_cast<double>(x2.size(1));
  return ax * abs_w_sum / 254 +
         torch::matmul(x2.abs(), torch::ones_like(w).t()) * scb.unsqueeze(0) /
             254 +
         ax * scb.unsqueeze(0) * in / (254.0 * 254.0) +
         torch::matmul(x2.abs(), w.abs().t()) / 2048 + 1e-6;
}

TEST(Int8Test, MatMulMatchesLinear8bitLtWithOutlierColumns) {
  if (!HavePeer()) GTEST_SKIP() << "venv with bitsandbytes missing";
  const std::string dir = FreshTestDir("int8");
  const torch::Tensor w = TestWeight(48, 80);
  const torch::Tensor x = TestInput(80);
  torch::manual_seed(13);
  const torch::Tensor g = torch::randn({2, 7, 48});
  WriteFp32(dir + "/in.safetensors", {{"w", w}, {"x", x}, {"g", g}});
  RunPeer("matmul " + dir + "/in.safetensors " + dir + "/m.safetensors");
  const torch::Tensor want = Read(dir + "/m.safetensors", "y");
  const torch::Tensor want_dx = Read(dir + "/m.safetensors", "dx");

  const Int8Weight q =
      Int8Weight::Quantize(w.data_ptr<float>(), 48, 80, torch::kCPU);
  torch::Tensor xg = x.clone().requires_grad_(true);
  torch::Tensor y = Int8MatMul(xg, q);
  y.backward(g);
  ASSERT_EQ(y.sizes(), want.sizes());
  // The same arithmetic, up to the order of fp32 sums.
  EXPECT_LE(MaxAbs(y - want), 1e-6f * MaxAbs(want))
      << "max |y| " << MaxAbs(want);
  EXPECT_LE(MaxAbs(xg.grad() - want_dx), 1e-5f * MaxAbs(want_dx));

  // Against fp32: inside LLM.int8's bound, and the decomposition is what
  // keeps it there: all-int8 (threshold 0) lets column 5 crush each row's
  // scale.
  torch::NoGradGuard no_grad;
  const torch::Tensor exact = torch::matmul(x, w.t());
  const torch::Tensor bound = ErrorBound(x.reshape({-1, 80}), w, q.scb());
  const torch::Tensor err = (y - exact).reshape({-1, 48}).abs();
  EXPECT_TRUE((err <= bound).all().item<bool>())
      << "worst error/bound " << (err / bound).max().item<float>();
  const torch::Tensor all_int8 = Int8MatMul(x, q, /*threshold=*/0.0f);
  const float mixed_error = (y - exact).abs().mean().item<float>();
  const float int8_error = (all_int8 - exact).abs().mean().item<float>();
  // The numbers, for --gtest_output=xml.
  ::testing::Test::RecordProperty("max_abs_vs_bnb",
                                  std::to_string(MaxAbs(y - want)));
  ::testing::Test::RecordProperty("max_abs_y", std::to_string(MaxAbs(want)));
  ::testing::Test::RecordProperty(
      "worst_error_over_bound",
      std::to_string((err / bound).max().item<float>()));
  ::testing::Test::RecordProperty("mean_abs_error_mixed",
                                  std::to_string(mixed_error));
  ::testing::Test::RecordProperty("mean_abs_error_all_int8",
                                  std::to_string(int8_error));
  EXPECT_GT(int8_error, 2 * mixed_error)
      << "mean abs error: all int8 " << int8_error << ", mixed " << mixed_error;
  // The row of zeros gives zeros, not NaN.
  EXPECT_EQ(MaxAbs(y[1][2]), 0.0f);
}

TEST(Int8Test, ModelLogitsMatchTransformersLoadIn8bit) {
  if (!HavePeer()) GTEST_SKIP() << "venv with bitsandbytes missing";
  const std::string dir = FreshTestDir("int8") + "/model";
  RunPeer("make-model " + dir);
  ASSERT_TRUE(WriteFileAtomic(dir + "/tokenizer.json",
                              model::MakeByteLevelTokenizerJson())
                  .ok());
  LoadOptions options;
  options.quantization = model::BaseQuantization::kInt8;
  auto model = LlamaModel::Load(dir, options);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->quantization(), model::BaseQuantization::kInt8);
  const std::string logits = dir + "/logits.safetensors";
  const torch::Tensor ids = Read(logits, "input_ids");
  const torch::Tensor fp32 = Read(logits, "logits");
  const torch::Tensor want = Read(logits, "int8_logits");
  torch::NoGradGuard no_grad;
  const torch::Tensor got = (*model)->Forward(ids, ForwardOptions());
  const float quantization_error = MaxAbs(fp32 - want);
  ASSERT_GT(quantization_error, 1e-3f) << "int8 should move the logits";
  // Equal up to float rounding (fp32 sums in another order, which int8
  // rounding may amplify by a step): 100x below the int8 error.
  ::testing::Test::RecordProperty("max_abs_vs_bnb",
                                  std::to_string(MaxAbs(got - want)));
  ::testing::Test::RecordProperty("max_abs_bnb_vs_fp32",
                                  std::to_string(quantization_error));
  EXPECT_LT(MaxAbs(got - want), quantization_error / 100)
      << "int8 vs fp32 max abs " << quantization_error << ", ours vs bnb "
      << MaxAbs(got - want);

  // The serving path gives the forward's logits for the same rows (the
  // outlier columns are chosen over the rows multiplied together, so the
  // forward takes the one row alone).
  const torch::Tensor alone = (*model)->Forward(ids.slice(0, 0, 1), {});
  KvCache cache = (*model)->ReserveCache(ids.size(1));
  RaggedBatch batch;
  batch.ids = ids[0];
  batch.lengths = {ids.size(1)};
  batch.caches = {&cache};
  const torch::Tensor last = (*model)->ForwardRagged(batch);
  EXPECT_LT(MaxAbs(last[0] - alone[0][-1]), 1e-4f);
}

// CB plus an fp32 SCB per row: 1 + 4 / in bytes per parameter, as the
// memory estimate counts them; NF4 holds about half.
TEST(Int8Test, BytesPerParamAndTheEstimateAgree) {
  const std::string dir = FreshTestDir("int8") + "/tiny";
  ASSERT_TRUE(model::WriteRandomLlama(dir, model::TinyModelConfig(), 1).ok());
  LoadOptions options;
  options.quantization = model::BaseQuantization::kInt8;
  auto int8 = LlamaModel::Load(dir, options);
  ASSERT_TRUE(int8.ok()) << int8.status();
  auto nf4 = LlamaModel::Load(dir, LoadOptions());
  ASSERT_TRUE(nf4.ok()) << nf4.status();
  const model::ModelConfig& c = (*int8)->config();
  EXPECT_EQ((*int8)->QuantizedBytes(), model::Int8BlockLinearBytes(c));
  EXPECT_GT((*int8)->QuantizedBytesPerParam(), 1.0);
  EXPECT_LT((*int8)->QuantizedBytesPerParam(), 1.0 + 4.0 / 32);
  EXPECT_LT((*nf4)->QuantizedBytesPerParam(), 0.6);
  EXPECT_EQ((*int8)->BaseBytes() - (*int8)->QuantizedBytes(),
            (*nf4)->BaseBytes() - (*nf4)->QuantizedBytes());
  EXPECT_EQ(model::BaseModelBytes(c, 4, model::BaseQuantization::kInt8),
            (*int8)->BaseBytes());
}

// LoRA trains through the int8 base: the input gradient flows through
// Int8MatMul to the adapter's A of an earlier layer.
TEST(Int8Test, GradientsReachTheAdapterThroughTheInt8Base) {
  const std::string dir = FreshTestDir("int8") + "/tiny";
  ASSERT_TRUE(model::WriteRandomLlama(dir, model::TinyModelConfig(), 1).ok());
  LoadOptions options;
  options.quantization = model::BaseQuantization::kInt8;
  auto model = LlamaModel::Load(dir, options);
  ASSERT_TRUE(model.ok()) << model.status();
  LoraOptions lo;
  lo.rank = 4;
  lo.alpha = 8;
  lo.target_modules = {"q_proj"};
  auto adapter =
      AdapterSet::CreateForTraining((*model)->config(), lo, 3, torch::kCPU);
  ASSERT_TRUE(adapter.ok());
  {
    torch::NoGradGuard no_grad;
    for (const auto& [k, w] : adapter->weights()) w.b.normal_(0, 0.1);
  }
  ForwardOptions fo;
  fo.adapter = &*adapter;
  fo.training = true;
  const torch::Tensor ids = torch::randint(0, 200, {2, 9}, torch::kLong);
  (*model)->Forward(ids, fo).logsumexp(-1).sum().backward();
  for (const auto& [key, w] : adapter->weights()) {
    ASSERT_TRUE(w.a.grad().defined()) << key;
    EXPECT_GT(MaxAbs(w.a.grad()), 0.0f) << key;
    EXPECT_TRUE(torch::isfinite(w.a.grad()).all().item<bool>()) << key;
  }
}

// On the CPU the backward's dequantized weight goes into the thread's
// buffers (thread_scratch.h): for weights of several shapes one after
// another, in both dtypes, the values are Dequantize's bit for bit, and an
// input gradient through two weights in a row is each weight's own.
TEST(Int8Test, ScratchDequantizeEqualsAFreshOne) {
  torch::manual_seed(11);
  std::vector<Int8Weight> weights;
  for (auto [out, in] :
       std::vector<std::pair<int64_t, int64_t>>{{40, 96}, {7, 33}, {40, 96}}) {
    torch::Tensor w = (torch::randn({out, in}) * 0.1).contiguous();
    weights.push_back(
        Int8Weight::Quantize(w.data_ptr<float>(), out, in, torch::kCPU));
  }
  for (const Int8Weight& q : weights) {
    for (torch::ScalarType dtype : {torch::kFloat32, torch::kBFloat16}) {
      const torch::Tensor fresh = q.Dequantize(dtype);
      const torch::Tensor scratch = q.DequantizeForMatMul(dtype);
      ASSERT_EQ(scratch.scalar_type(), dtype);
      EXPECT_TRUE(torch::equal(scratch, fresh))
          << q.out_features() << "x" << q.in_features() << " " << dtype;
    }
  }
  const Int8Weight& a = weights[0];
  const Int8Weight& b = weights[2];
  torch::Tensor x = torch::randn({3, 96}, torch::requires_grad());
  torch::Tensor g = torch::randn({3, 40});
  ((Int8MatMul(x, a) + 3 * Int8MatMul(x, b)) * g).sum().backward();
  const torch::Tensor want =
      torch::matmul(g, a.Dequantize(torch::kFloat32)) +
      torch::matmul(3 * g, b.Dequantize(torch::kFloat32));
  EXPECT_TRUE(torch::allclose(x.grad(), want, 1e-5, 1e-5));
}

}  // namespace
}  // namespace lorad::worker
