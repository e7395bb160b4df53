// The fused RMSNorm CPU reference against a double-precision computation,
// and (with a GPU) the CUDA kernel against the reference.
#include <cmath>
#include <cstdint>
#include <ostream>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/bf16.h"
#include "kernels/rmsnorm_ref.h"
#include "tests/unit/kernels_test_util.h"

#if LORAD_TEST_KERNELS_CUDA
#include "kernels/rmsnorm.cuh"
#endif

namespace lorad::kernels {
namespace {

using testing::RandomBf16;

struct Case {
  int64_t rows, hidden;
  float eps;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << "rows=" << c.rows << " hidden=" << c.hidden << " eps=" << c.eps;
}

class RmsNormRefTest : public ::testing::TestWithParam<Case> {};

TEST_P(RmsNormRefTest, MatchesDoublePrecision) {
  const Case c = GetParam();
  const auto x = RandomBf16(c.rows * c.hidden, 1, 2.0f);
  // Weights around 1 as trained norms have them.
  auto w = RandomBf16(c.hidden, 2, 0.2f);
  for (auto& v : w) v = FloatToBf16Bits(1.0f + Bf16BitsToFloat(v));
  std::vector<uint16_t> y(x.size());
  std::vector<float> rstd(static_cast<size_t>(c.rows));
  RmsNormRef(x.data(), w.data(), c.rows, c.hidden, c.eps, y.data(),
             rstd.data());
  for (int64_t i = 0; i < c.rows; ++i) {
    double ss = 0.0;
    for (int64_t j = 0; j < c.hidden; ++j) {
      const double v = Bf16BitsToFloat(x[i * c.hidden + j]);
      ss += v * v;
    }
    const double r = 1.0 / std::sqrt(ss / c.hidden + c.eps);
    ASSERT_NEAR(rstd[i], r, 1e-6 * r) << "row " << i;
    for (int64_t j = 0; j < c.hidden; ++j) {
      const double want =
          Bf16BitsToFloat(x[i * c.hidden + j]) * r * Bf16BitsToFloat(w[j]);
      // Half a bf16 ulp plus fp32 rounding of rstd and the products.
      ASSERT_NEAR(Bf16BitsToFloat(y[i * c.hidden + j]), want,
                  std::fabs(want) * (1.0 / 256 + 1e-6) + 1e-30)
          << "row " << i << " column " << j;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, RmsNormRefTest,
                         ::testing::Values(Case{1, 1, 1e-5f}, Case{3, 7, 1e-6f},
                                           Case{17, 64, 1e-5f},
                                           Case{4, 4096, 1e-5f},
                                           Case{2, 4099, 1e-6f}));

TEST(RmsNormRefTest, AllZeroRowIsZeroAndInPlaceWorks) {
  std::vector<uint16_t> x(8, FloatToBf16Bits(0.0f));
  const std::vector<uint16_t> w(8, FloatToBf16Bits(1.0f));
  std::vector<float> rstd(1);
  RmsNormRef(x.data(), w.data(), 1, 8, 1e-6f, x.data(), rstd.data());
  for (uint16_t v : x) EXPECT_EQ(Bf16BitsToFloat(v), 0.0f);
  EXPECT_NEAR(rstd[0], 1000.0f, 1e-2f);

  // A row of equal values normalises to exactly w.
  std::vector<uint16_t> ones(16, FloatToBf16Bits(-3.0f));
  const std::vector<uint16_t> w2(16, FloatToBf16Bits(0.5f));
  RmsNormRef(ones.data(), w2.data(), 1, 16, 0.0f, ones.data(), nullptr);
  for (uint16_t v : ones) EXPECT_EQ(Bf16BitsToFloat(v), -0.5f);
}

#if LORAD_TEST_KERNELS_CUDA
using testing::DeviceBuffer;
using testing::HaveCudaDevice;

// Kernel vs reference: within one bf16 ulp (the reference and the kernel
// each round once, from fp32 values that differ in the last bits: the
// sums' order and rsqrtf's 2-ulp error), rstd within 1e-5.
TEST(RmsNormCudaTest, MatchesReference) {
  if (!HaveCudaDevice()) GTEST_SKIP() << "no CUDA device";
  for (const Case& c :
       {Case{1, 1, 1e-5f}, Case{3, 7, 1e-6f}, Case{64, 4096, 1e-5f},
        Case{5, 4099, 1e-6f}, Case{9, 8192 + 8, 1e-5f}}) {
    for (bool in_place : {false, true}) {
      const auto x = RandomBf16(c.rows * c.hidden, 3, 2.0f);
      const auto w = RandomBf16(c.hidden, 4, 1.0f);
      std::vector<uint16_t> want(x.size());
      std::vector<float> want_rstd(static_cast<size_t>(c.rows));
      RmsNormRef(x.data(), w.data(), c.rows, c.hidden, c.eps, want.data(),
                 want_rstd.data());
      DeviceBuffer<uint16_t> dx(x.size()), dw(w.size()), dy(x.size());
      DeviceBuffer<float> drstd(want_rstd.size());
      ASSERT_TRUE(dx.Upload(x) && dw.Upload(w));
      DeviceBuffer<uint16_t>& out = in_place ? dx : dy;
      ASSERT_EQ(RmsNormBf16(reinterpret_cast<const __nv_bfloat16*>(dx.get()),
                            reinterpret_cast<const __nv_bfloat16*>(dw.get()),
                            c.rows, c.hidden, c.eps,
                            reinterpret_cast<__nv_bfloat16*>(out.get()),
                            drstd.get(), 0),
                cudaSuccess);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      const auto got = out.Download();
      const auto got_rstd = drstd.Download();
      for (int64_t i = 0; i < c.rows; ++i) {
        ASSERT_NEAR(got_rstd[i], want_rstd[i], 1e-5 * want_rstd[i]);
      }
      for (size_t e = 0; e < want.size(); ++e) {
        const double wv = Bf16BitsToFloat(want[e]);
        ASSERT_NEAR(Bf16BitsToFloat(got[e]), wv, std::fabs(wv) / 128 + 1e-30)
            << "hidden " << c.hidden << " element " << e;
      }
    }
  }
}
#endif  // LORAD_TEST_KERNELS_CUDA

}  // namespace
}  // namespace lorad::kernels
