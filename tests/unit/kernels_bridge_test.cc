// lorad::cuda_bridge: argument checks (clear InvalidArgument errors), the
// CPU path against LibTorch's own arithmetic, and (with a GPU) the CUDA
// path against the CPU path.
#include <ATen/ATen.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/nf4_ref.h"
#include "lorad/cuda_bridge/kernels.h"
#include "tests/unit/kernels_test_util.h"

namespace lorad::cuda_bridge {
namespace {

using kernels::testing::RandomFloats;

at::Tensor Bytes(const std::vector<uint8_t>& v) {
  at::Tensor t = at::empty({static_cast<int64_t>(v.size())}, at::kByte);
  std::memcpy(t.data_ptr(), v.data(), v.size());
  return t;
}

at::Tensor Floats(const std::vector<float>& v) {
  at::Tensor t = at::empty({static_cast<int64_t>(v.size())}, at::kFloat);
  std::memcpy(t.data_ptr(), v.data(), v.size() * sizeof(float));
  return t;
}

struct Nf4Case {
  Nf4Tensors w;
  std::vector<float> dequant;  // lorad::nf4::Dequantize's fp32 values
};

Nf4Case MakeNf4(int64_t rows, int64_t cols, uint32_t seed) {
  const std::vector<float> w = RandomFloats(rows * cols, seed, 0.02f);
  const nf4::QuantizedTensor q = nf4::Quantize(w.data(), rows * cols);
  Nf4Case c;
  c.w.packed = Bytes(q.packed);
  c.w.absmax_codes = Bytes(q.absmax_codes);
  c.w.absmax_scales = Floats(q.absmax_scales);
  c.w.dynamic_map = Floats(
      std::vector<float>(nf4::DynamicMap().begin(), nf4::DynamicMap().end()));
  c.w.absmax_offset = q.absmax_offset;
  c.w.rows = rows;
  c.w.cols = cols;
  c.dequant.resize(static_cast<size_t>(rows * cols));
  nf4::Dequantize(q, c.dequant.data());
  return c;
}

Nf4Tensors ToDevice(const Nf4Tensors& w, const at::Device& d) {
  Nf4Tensors r = w;
  r.packed = w.packed.to(d);
  r.absmax_codes = w.absmax_codes.to(d);
  r.absmax_scales = w.absmax_scales.to(d);
  r.dynamic_map = w.dynamic_map.to(d);
  return r;
}

at::Tensor RandomBf16(std::vector<int64_t> shape, uint64_t seed,
                      double stddev = 1.0) {
  at::manual_seed(seed);
  return (at::randn(shape, at::kFloat) * stddev).to(at::kBFloat16);
}

void ExpectInvalid(const absl::Status& s, const std::string& needle) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(std::string(s.message()).find(needle), std::string::npos)
      << "message \"" << s.message() << "\" lacks \"" << needle << "\"";
}

// Max |a - b| / (|b| + floor), elementwise, in fp32.
double MaxRelDiff(const at::Tensor& a, const at::Tensor& b, double floor) {
  const at::Tensor af = a.to(at::kFloat).cpu();
  const at::Tensor bf = b.to(at::kFloat).cpu();
  return ((af - bf).abs() / (bf.abs() + floor)).max().item<double>();
}

TEST(CudaBridgeTest, BuildPickedTheConfiguredHalf) {
  EXPECT_EQ(KernelsBuilt(), LORAD_EXPECT_BRIDGE_CUDA != 0);
  if (!KernelsBuilt()) EXPECT_FALSE(DeviceAvailable());
}

TEST(CudaBridgeTest, Nf4OnCpuMatchesReferenceAndLibTorch) {
  const Nf4Case c = MakeNf4(37, 100, 1);  // blocks straddle rows
  auto dq = Nf4DequantizeBf16(c.w);
  ASSERT_TRUE(dq.ok()) << dq.status();
  ASSERT_EQ(dq->sizes(), (std::vector<int64_t>{37, 100}));
  const at::Tensor want = Floats(c.dequant).view({37, 100}).to(at::kBFloat16);
  EXPECT_TRUE(at::equal(*dq, want));

  const at::Tensor x = RandomBf16({3, 100}, 2);
  auto y = Nf4Gemv(x, c.w);
  ASSERT_TRUE(y.ok()) << y.status();
  ASSERT_EQ(y->sizes(), (std::vector<int64_t>{3, 37}));
  const at::Tensor ref =
      at::matmul(x.to(at::kFloat), Floats(c.dequant).view({37, 100}).t());
  // One bf16 rounding of the output.
  EXPECT_LT(MaxRelDiff(*y, ref, 1e-3), 1.0 / 128);
}

TEST(CudaBridgeTest, Nf4RejectsBadArguments) {
  const Nf4Case c = MakeNf4(8, 64, 3);
  ExpectInvalid(Nf4Gemv(at::zeros({1, 64}, at::kFloat), c.w).status(),
                "x must be BFloat16");
  ExpectInvalid(Nf4Gemv(at::zeros({17, 64}, at::kBFloat16), c.w).status(),
                "m 1..16");
  ExpectInvalid(Nf4Gemv(at::zeros({2, 63}, at::kBFloat16), c.w).status(),
                "x must be [m, 64]");
  Nf4Tensors bad = c.w;
  bad.packed = bad.packed.slice(0, 1);
  ExpectInvalid(Nf4DequantizeBf16(bad).status(), "packed must have 256");
  bad = c.w;
  bad.absmax_scales = bad.absmax_scales.to(at::kDouble);
  ExpectInvalid(Nf4DequantizeBf16(bad).status(), "absmax_scales must be Float");
  bad = c.w;
  bad.rows = 0;
  ExpectInvalid(Nf4DequantizeBf16(bad).status(), "rows and cols");
}

std::vector<LoraTensors> MakeAdapters(const std::vector<int64_t>& ranks,
                                      int64_t in, int64_t out) {
  std::vector<LoraTensors> ads;
  uint64_t seed = 10;
  for (int64_t r : ranks) {
    ads.push_back({RandomBf16({r, in}, seed++, 0.05),
                   RandomBf16({out, r}, seed++, 0.05), 16.0f / r});
  }
  return ads;
}

// y + scale * (x A^T) B^T in fp32 LibTorch arithmetic, row by row.
at::Tensor LibTorchLora(const at::Tensor& y, const at::Tensor& x,
                        const std::vector<LoraTensors>& ads,
                        const std::vector<int32_t>& idx) {
  at::Tensor r = y.to(at::kFloat).clone();
  for (size_t i = 0; i < idx.size(); ++i) {
    if (idx[i] < 0) continue;
    const LoraTensors& ad = ads[idx[i]];
    const at::Tensor xi = x[i].to(at::kFloat).unsqueeze(0);
    r[i] += ad.scale * at::matmul(at::matmul(xi, ad.a.to(at::kFloat).t()),
                                  ad.b.to(at::kFloat).t())[0];
  }
  return r;
}

TEST(CudaBridgeTest, LoraOnCpuMatchesLibTorch) {
  const int64_t n = 6, in = 100, out = 33;
  const auto ads = MakeAdapters({1, 16, 128}, in, out);
  const at::Tensor x = RandomBf16({n, in}, 1);
  const at::Tensor y0 = RandomBf16({n, out}, 2);
  const std::vector<int32_t> idx = {2, -1, 0, 1, 1, -1};
  at::Tensor y = y0.clone();
  ASSERT_TRUE(
      LoraBgmv(y, x, ads, at::tensor(at::ArrayRef<int32_t>(idx), at::kInt))
          .ok());
  const at::Tensor want = LibTorchLora(y0, x, ads, idx);
  EXPECT_LT(MaxRelDiff(y, want, 0.05), 1.0 / 64);
  EXPECT_TRUE(at::equal(y[1], y0[1]));  // no adapter: untouched
  EXPECT_TRUE(at::equal(y[5], y0[5]));

  // The same rows as segments give the same bits.
  at::Tensor ys = y0.clone();
  ASSERT_TRUE(LoraSgmv(ys, x, ads, {0, 1, 2, 3, 5, 6}, {2, -1, 0, 1, -1}).ok());
  EXPECT_TRUE(at::equal(ys, y));
}

TEST(CudaBridgeTest, LoraRejectsBadArguments) {
  const int64_t n = 2, in = 16, out = 8;
  const at::Tensor x = RandomBf16({n, in}, 1);
  at::Tensor y = RandomBf16({n, out}, 2);
  const at::Tensor idx = at::zeros({n}, at::kInt);
  ExpectInvalid(LoraBgmv(y, x, MakeAdapters({129}, in, out), idx),
                "rank 1..128");
  auto ads = MakeAdapters({4}, in, out);
  ExpectInvalid(LoraBgmv(y, x, ads, at::zeros({n}, at::kLong)),
                "idx must be int32 [2]");
  ads[0].b = RandomBf16({out + 1, 4}, 3);
  ExpectInvalid(LoraBgmv(y, x, ads, idx), "adapters[0].b must be [8, 4]");
  ads = MakeAdapters({4}, in, out);
  at::Tensor yt = RandomBf16({out, n}, 4).t();
  ExpectInvalid(LoraBgmv(yt, x, ads, idx), "y must be contiguous");
  ExpectInvalid(LoraSgmv(y, x, ads, {0, 3}, {0}), "seg_starts[1] = 3");
  ExpectInvalid(LoraSgmv(y, x, ads, {0, 1}, {0, 0}), "one more entry");
}

TEST(CudaBridgeTest, RmsNormOnCpuMatchesLibTorch) {
  const at::Tensor x = RandomBf16({2, 3, 257}, 5, 2.0);
  const at::Tensor w = RandomBf16({257}, 6);
  auto y = RmsNorm(x, w, 1e-5);
  ASSERT_TRUE(y.ok()) << y.status();
  const at::Tensor xf = x.to(at::kFloat);
  const at::Tensor want =
      xf * at::rsqrt(xf.pow(2).mean(-1, true) + 1e-5) * w.to(at::kFloat);
  EXPECT_LT(MaxRelDiff(*y, want, 1e-3), 1.0 / 128);
  ExpectInvalid(RmsNorm(x, RandomBf16({256}, 7), 1e-5).status(),
                "weight must have 257");
  ExpectInvalid(RmsNorm(x, w, -1.0).status(), "eps must be >= 0");
}

// With a GPU: each op on CUDA tensors against the same op on CPU tensors,
// within the kernels' test tolerances (tests/unit/kernels_*_test.cc).
TEST(CudaBridgeTest, CudaMatchesCpu) {
  if (!DeviceAvailable()) {
    GTEST_SKIP() << (KernelsBuilt() ? "no CUDA device"
                                    : "built without CUDA kernels");
  }
  const at::Device cuda(at::kCUDA, 0);
  const Nf4Case c = MakeNf4(300, 1024, 9);
  const Nf4Tensors dw = ToDevice(c.w, cuda);
  auto dq_cpu = Nf4DequantizeBf16(c.w);
  auto dq_gpu = Nf4DequantizeBf16(dw);
  ASSERT_TRUE(dq_cpu.ok() && dq_gpu.ok());
  EXPECT_TRUE(at::equal(dq_gpu->cpu(), *dq_cpu));

  const at::Tensor x = RandomBf16({5, 1024}, 10);
  auto y_cpu = Nf4Gemv(x, c.w);
  auto y_gpu = Nf4Gemv(x.to(cuda), dw);
  ASSERT_TRUE(y_cpu.ok() && y_gpu.ok()) << y_gpu.status();
  EXPECT_LT(MaxRelDiff(*y_gpu, *y_cpu, 0.05), 1.0 / 64);

  const auto ads = MakeAdapters({1, 16, 128}, 1024, 300);
  std::vector<LoraTensors> dads;
  for (const auto& a : ads)
    dads.push_back({a.a.to(cuda), a.b.to(cuda), a.scale});
  const at::Tensor lx = RandomBf16({4, 1024}, 11);
  const at::Tensor y0 = RandomBf16({4, 300}, 12);
  const at::Tensor idx = at::tensor({2, -1, 0, 1}, at::kInt);
  at::Tensor yc = y0.clone();
  at::Tensor yg = y0.to(cuda);
  ASSERT_TRUE(LoraBgmv(yc, lx, ads, idx).ok());
  ASSERT_TRUE(LoraBgmv(yg, lx.to(cuda), dads, idx).ok());
  EXPECT_LT(MaxRelDiff(yg, yc, 0.05), 1.0 / 64);
  at::Tensor ysg = y0.to(cuda);
  ASSERT_TRUE(
      LoraSgmv(ysg, lx.to(cuda), dads, {0, 1, 2, 3, 4}, {2, -1, 0, 1}).ok());
  EXPECT_LT(MaxRelDiff(ysg, yc, 0.05), 1.0 / 64);

  const at::Tensor rx = RandomBf16({3, 4096}, 13);
  const at::Tensor rw = RandomBf16({4096}, 14);
  auto rc = RmsNorm(rx, rw, 1e-5);
  auto rg = RmsNorm(rx.to(cuda), rw.to(cuda), 1e-5);
  ASSERT_TRUE(rc.ok() && rg.ok());
  EXPECT_LT(MaxRelDiff(*rg, *rc, 1e-3), 1.0 / 64);

  // Mixed devices are an argument error, not a crash.
  ExpectInvalid(Nf4Gemv(x, dw).status(), "must be on cuda:0");
}

}  // namespace
}  // namespace lorad::cuda_bridge
