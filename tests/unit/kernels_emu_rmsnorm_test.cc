// The fused RMSNorm CUDA source run on the host emulator (kernels_emu.h)
// against the CPU reference, vector and scalar paths, in place too.
// clang-format off
#include "tests/unit/kernels_emu.h"
#include "kernels/rmsnorm.cu"  // NOLINT(build/include)
// clang-format on

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/bf16.h"
#include "kernels/rmsnorm_ref.h"
#include "tests/unit/kernels_test_util.h"

namespace lorad::kernels {
namespace {

TEST(RmsNormEmulatedTest, MatchesReference) {
  struct Case {
    int64_t rows, hidden;
  };
  for (const Case& c : {Case{2, 4096}, Case{3, 4099}, Case{2, 7}}) {
    for (bool in_place : {false, true}) {
      const auto x = testing::RandomBf16(c.rows * c.hidden, 5, 2.0f);
      const auto w = testing::RandomBf16(c.hidden, 6, 1.0f);
      std::vector<uint16_t> want(x.size());
      std::vector<float> want_rstd(static_cast<size_t>(c.rows));
      RmsNormRef(x.data(), w.data(), c.rows, c.hidden, 1e-5f, want.data(),
                 want_rstd.data());
      // 16-byte aligned copies so the vector path runs where it can.
      std::vector<uint4> xb(x.size() / 8 + 1), wb(w.size() / 8 + 1),
          yb(x.size() / 8 + 1);
      std::memcpy(xb.data(), x.data(), x.size() * 2);
      std::memcpy(wb.data(), w.data(), w.size() * 2);
      auto* xs = reinterpret_cast<__nv_bfloat16*>(xb.data());
      auto* ys = in_place ? xs : reinterpret_cast<__nv_bfloat16*>(yb.data());
      std::vector<float> rstd(want_rstd.size());
      ASSERT_EQ(RmsNormBf16(xs, reinterpret_cast<__nv_bfloat16*>(wb.data()),
                            c.rows, c.hidden, 1e-5f, ys, rstd.data(), nullptr),
                cudaSuccess);
      std::vector<uint16_t> got(x.size());
      std::memcpy(got.data(), ys, got.size() * 2);
      for (int64_t i = 0; i < c.rows; ++i) {
        ASSERT_NEAR(rstd[i], want_rstd[i], 1e-5 * want_rstd[i]);
      }
      for (size_t e = 0; e < want.size(); ++e) {
        const double wv = Bf16BitsToFloat(want[e]);
        ASSERT_NEAR(Bf16BitsToFloat(got[e]), wv, std::fabs(wv) / 128 + 1e-30)
            << "hidden " << c.hidden << " in_place " << in_place << " element "
            << e;
      }
    }
  }
}

}  // namespace
}  // namespace lorad::kernels
