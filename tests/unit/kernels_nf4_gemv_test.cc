// The NF4 GEMV CPU reference against dequantize-then-multiply, and (with a
// GPU) the CUDA kernel against the reference.
#include <cmath>
#include <cstdint>
#include <ostream>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/bf16.h"
#include "kernels/nf4_gemv_ref.h"
#include "kernels/nf4_ref.h"
#include "tests/unit/kernels_test_util.h"

#if LORAD_TEST_KERNELS_CUDA
#include "kernels/nf4_gemv.cuh"
#endif

namespace lorad::kernels {
namespace {

using testing::RandomBf16;
using testing::RandomFloats;

struct Case {
  int64_t out, in, m;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << "out=" << c.out << " in=" << c.in << " m=" << c.m;
}

struct Problem {
  Case c;
  nf4::QuantizedTensor q;
  std::vector<uint16_t> x;  // [m, in] bf16

  Nf4MatrixView View() const {
    return Nf4MatrixView{q.packed.data(), q.absmax_codes.data(),
                         q.absmax_scales.data(), q.absmax_offset};
  }
};

Problem MakeProblem(const Case& c, uint32_t seed) {
  Problem p{c, {}, {}};
  std::vector<float> w = RandomFloats(c.out * c.in, seed, 0.02f);
  p.q = nf4::Quantize(w.data(), c.out * c.in, /*double_quant=*/true);
  p.x = RandomBf16(c.m * c.in, seed + 1, 1.0f);
  return p;
}

// y = x W^T from the dequantized matrix (lorad::nf4::Dequantize, a separate
// decoder), in double; `abs_sum` gets sum_j |x_ij w_oj| per output, the
// scale of the rounding error any fp32 summation may make.
std::vector<double> Naive(const Problem& p, std::vector<double>& abs_sum) {
  const Case& c = p.c;
  std::vector<float> w(static_cast<size_t>(c.out * c.in));
  nf4::Dequantize(p.q, w.data());
  std::vector<double> y(static_cast<size_t>(c.m * c.out));
  abs_sum.assign(y.size(), 0.0);
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t o = 0; o < c.out; ++o) {
      double s = 0.0;
      double a = 0.0;
      for (int64_t j = 0; j < c.in; ++j) {
        const double t =
            static_cast<double>(Bf16BitsToFloat(p.x[i * c.in + j])) *
            w[o * c.in + j];
        s += t;
        a += std::fabs(t);
      }
      y[i * c.out + o] = s;
      abs_sum[i * c.out + o] = a;
    }
  }
  return y;
}

class Nf4GemvRefTest : public ::testing::TestWithParam<Case> {};

// Shapes where 64-weight blocks straddle rows (in % 64 != 0), odd numbers of
// weights, m from 1 to 16.
TEST_P(Nf4GemvRefTest, MatchesDequantizeThenMultiply) {
  const Problem p = MakeProblem(GetParam(), 17);
  std::vector<double> abs_sum;
  const std::vector<double> want = Naive(p, abs_sum);
  std::vector<float> got(want.size());
  Nf4GemvRef(p.View(), p.c.out, p.c.in, p.x.data(), p.c.m, got.data());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], 1e-6 * abs_sum[i] + 1e-30) << "output " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Nf4GemvRefTest,
                         ::testing::Values(Case{1, 64, 1}, Case{37, 100, 3},
                                           Case{17, 129, 16}, Case{96, 320, 5},
                                           Case{5, 1, 2}));

// A reference that decoded nibbles in the wrong order or took the wrong
// block's absmax would give a different product: check one output by hand.
TEST(Nf4GemvRefTest, SingleWeightByHand) {
  // Row 1, column 2 of a [2, 3] matrix is flat weight 5: the low nibble of
  // byte 2, in block 0.
  std::vector<uint8_t> packed = {0x77, 0x77, 0x7f};  // weight 5 -> code 15
  std::vector<uint8_t> codes = {255};                // dynamic map max = 1.0
  std::vector<float> scales = {0.5f};
  const Nf4MatrixView w{packed.data(), codes.data(), scales.data(), 0.25f};
  std::vector<uint16_t> x = {FloatToBf16Bits(3.0f), FloatToBf16Bits(5.0f),
                             FloatToBf16Bits(2.0f)};
  std::vector<float> y(2, -1.0f);
  Nf4GemvRef(w, /*out=*/2, /*in=*/3, x.data(), /*m=*/1, y.data());
  // absmax = 1.0 * 0.5 + 0.25 = 0.75; weight = 1.0 * 0.75; y = 0.75 * 2.
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 1.5f);
}

#if LORAD_TEST_KERNELS_CUDA
using testing::DeviceBuffer;
using testing::HaveCudaDevice;

// The kernel's bf16 output against the fp32 reference: within half a bf16
// ulp of the reference (rounding) plus 1e-4 of sum |x w| (fp32 summation
// in another order). `shift` offsets packed and x to take the general path.
void CheckKernel(const Case& c, uint32_t seed, size_t shift) {
  const Problem p = MakeProblem(c, seed);
  std::vector<double> abs_sum;
  Naive(p, abs_sum);
  std::vector<float> want(static_cast<size_t>(c.m * c.out));
  Nf4GemvRef(p.View(), c.out, c.in, p.x.data(), c.m, want.data());

  DeviceBuffer<uint8_t> packed(p.q.packed.size(), 16);
  DeviceBuffer<uint8_t> codes(p.q.absmax_codes.size());
  DeviceBuffer<float> scales(p.q.absmax_scales.size());
  DeviceBuffer<float> map(256);
  DeviceBuffer<uint16_t> x(p.x.size(), 16);
  DeviceBuffer<uint16_t> y(want.size());
  ASSERT_TRUE(packed.ok() && codes.ok() && scales.ok() && map.ok() && x.ok() &&
              y.ok());
  ASSERT_TRUE(packed.Upload(p.q.packed, shift));
  ASSERT_TRUE(codes.Upload(p.q.absmax_codes));
  ASSERT_TRUE(scales.Upload(p.q.absmax_scales));
  ASSERT_TRUE(map.Upload(
      std::vector<float>(nf4::DynamicMap().begin(), nf4::DynamicMap().end())));
  ASSERT_TRUE(x.Upload(p.x, 2 * shift));
  ASSERT_EQ(
      Nf4GemvBf16(
          packed.get(shift), codes.get(), scales.get(), p.q.absmax_offset,
          map.get(), reinterpret_cast<const __nv_bfloat16*>(x.get(2 * shift)),
          c.m, c.in, c.out, reinterpret_cast<__nv_bfloat16*>(y.get()), nullptr),
      cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<uint16_t> got = y.Download();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const float g = Bf16BitsToFloat(got[i]);
    ASSERT_NEAR(g, want[i], std::fabs(want[i]) / 256 + 1e-4 * abs_sum[i])
        << "out=" << c.out << " in=" << c.in << " m=" << c.m
        << " shift=" << shift << " output " << i;
  }
}

TEST(Nf4GemvCudaTest, FastPathMatchesReference) {
  if (!HaveCudaDevice()) GTEST_SKIP() << "no CUDA device";
  for (int64_t m : {1, 2, 3, 7, 16}) {
    CheckKernel(Case{300, 2048, m}, 3, 0);  // out not a multiple of 16
    CheckKernel(Case{64, 1088, m}, 4, 0);   // a partial last tile
  }
}

TEST(Nf4GemvCudaTest, GeneralPathMatchesReference) {
  if (!HaveCudaDevice()) GTEST_SKIP() << "no CUDA device";
  for (int64_t m : {1, 5, 16}) {
    CheckKernel(Case{37, 100, m}, 5, 0);  // blocks straddle rows
    CheckKernel(Case{129, 65, m}, 6, 0);
    CheckKernel(Case{40, 256, m}, 7, 1);  // misaligned packed and x
  }
}

TEST(Nf4GemvCudaTest, RejectsBadShapes) {
  if (!HaveCudaDevice()) GTEST_SKIP() << "no CUDA device";
  DeviceBuffer<uint8_t> buf(1024);
  const auto* b = reinterpret_cast<const __nv_bfloat16*>(buf.get());
  auto* y = reinterpret_cast<__nv_bfloat16*>(buf.get());
  const auto* f = reinterpret_cast<const float*>(buf.get());
  EXPECT_EQ(Nf4GemvBf16(buf.get(), buf.get(), f, 0, f, b, 17, 64, 4, y, 0),
            cudaErrorInvalidValue);
  EXPECT_EQ(Nf4GemvBf16(buf.get(), buf.get(), f, 0, f, b, 0, 64, 4, y, 0),
            cudaErrorInvalidValue);
  EXPECT_EQ(Nf4GemvBf16(nullptr, buf.get(), f, 0, f, b, 1, 64, 4, y, 0),
            cudaErrorInvalidValue);
}
#endif  // LORAD_TEST_KERNELS_CUDA

}  // namespace
}  // namespace lorad::kernels
