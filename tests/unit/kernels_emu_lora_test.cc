// The BGMV and SGMV CUDA sources run on the host emulator (kernels_emu.h)
// against the CPU references, with the tolerance the GPU tests use.
// clang-format off
#include "tests/unit/kernels_emu.h"
#include "kernels/bgmv.cu"  // NOLINT(build/include)
#include "kernels/sgmv.cu"  // NOLINT(build/include)
// clang-format on

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/bf16.h"
#include "kernels/lora_ref.h"
#include "tests/unit/kernels_test_util.h"

namespace lorad::kernels {
namespace {

struct HostAdapters {
  std::vector<std::vector<uint16_t>> a, b;
  std::vector<const __nv_bfloat16*> a_ptrs, b_ptrs;
  std::vector<int32_t> ranks;
  std::vector<float> scales;
  std::vector<LoraAdapterRef> refs;
};

HostAdapters Make(const std::vector<int32_t>& ranks, int64_t in, int64_t out) {
  HostAdapters ad;
  uint32_t seed = 50;
  for (int32_t r : ranks) {
    ad.a.push_back(testing::RandomBf16(r * in, seed++, 0.05f));
    ad.b.push_back(testing::RandomBf16(out * r, seed++, 0.05f));
    ad.ranks.push_back(r);
    ad.scales.push_back(16.0f / r);
  }
  for (size_t i = 0; i < ranks.size(); ++i) {
    ad.a_ptrs.push_back(reinterpret_cast<const __nv_bfloat16*>(ad.a[i].data()));
    ad.b_ptrs.push_back(reinterpret_cast<const __nv_bfloat16*>(ad.b[i].data()));
    ad.refs.push_back(
        {ad.a[i].data(), ad.b[i].data(), ad.ranks[i], ad.scales[i]});
  }
  return ad;
}

// Within one bf16 ulp of the reference, plus fp32 noise relative to the
// terms' size (|y| + |scale| sum |B||A||x|, bounded here by a generous
// 1e-5 of |y| + 1); rows the reference leaves alone stay bit-identical.
void ExpectClose(const std::vector<uint16_t>& got,
                 const std::vector<uint16_t>& want,
                 const std::vector<uint16_t>& y_in) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t e = 0; e < got.size(); ++e) {
    if (want[e] == y_in[e]) {
      // Untouched by the reference (or a zero update): bit-identical or 1 ulp.
      ASSERT_LE(std::fabs(Bf16BitsToFloat(got[e]) - Bf16BitsToFloat(want[e])),
                std::fabs(Bf16BitsToFloat(want[e])) / 128)
          << "element " << e;
      continue;
    }
    const double w = Bf16BitsToFloat(want[e]);
    ASSERT_NEAR(
        Bf16BitsToFloat(got[e]), w,
        std::fabs(w) / 128 + 1e-5 * (std::fabs(Bf16BitsToFloat(y_in[e])) + 1.0))
        << "element " << e;
  }
}

// Input sizes for the BGMV and SGMV cases.
struct Sizes {
  int64_t bgmv_in, sgmv_in;
};

class LoraEmulatedTest : public ::testing::TestWithParam<Sizes> {};

TEST_P(LoraEmulatedTest, BgmvMatchesReference) {
  const int64_t n = 6, in = GetParam().bgmv_in, out = 300;
  const HostAdapters ad = Make({1, 16, 128, 7}, in, out);
  const std::vector<int32_t> idx = {2, -1, 0, 1, 3, 2};
  const auto x = testing::RandomBf16(n * in, 1, 1.0f);
  const auto y_in = testing::RandomBf16(n * out, 2, 1.0f);
  std::vector<uint16_t> want = y_in, got = y_in;
  BgmvRef(x.data(), n, in, out, ad.refs.data(), 4, idx.data(), want.data());
  std::vector<float> ws(static_cast<size_t>(LoraWorkspaceFloats(n)), -7.0f);
  ASSERT_EQ(
      LoraBgmvBf16(reinterpret_cast<const __nv_bfloat16*>(x.data()), n, in, out,
                   ad.a_ptrs.data(), ad.b_ptrs.data(), ad.ranks.data(),
                   ad.scales.data(), 4, idx.data(), ws.data(),
                   reinterpret_cast<__nv_bfloat16*>(got.data()), nullptr),
      cudaSuccess);
  ExpectClose(got, want, y_in);
  for (int64_t o = 0; o < out; ++o) {
    ASSERT_EQ(got[1 * out + o], y_in[1 * out + o]) << "row 1 has no adapter";
  }
}

TEST_P(LoraEmulatedTest, SgmvMatchesReference) {
  const int64_t n = 40, in = GetParam().sgmv_in, out = 47;
  const HostAdapters ad = Make({16, 1, 128, 5}, in, out);
  // Segments of 0, 1, 7, 9 and 17 rows, one without an adapter, the last
  // rows in none.
  const std::vector<int32_t> starts = {0, 0, 1, 8, 17, 34, 36};
  const std::vector<int32_t> segs = {3, 0, 1, 2, -1, 0};
  const auto x = testing::RandomBf16(n * in, 3, 1.0f);
  const auto y_in = testing::RandomBf16(n * out, 4, 1.0f);
  std::vector<uint16_t> want = y_in, got = y_in;
  SgmvRef(x.data(), in, out, ad.refs.data(), 4, starts.data(), segs.data(),
          static_cast<int64_t>(segs.size()), want.data());
  std::vector<float> ws(static_cast<size_t>(LoraWorkspaceFloats(n)), -7.0f);
  ASSERT_EQ(
      LoraSgmvBf16(reinterpret_cast<const __nv_bfloat16*>(x.data()), n, in, out,
                   ad.a_ptrs.data(), ad.b_ptrs.data(), ad.ranks.data(),
                   ad.scales.data(), 4, starts.data(), segs.data(),
                   static_cast<int64_t>(segs.size()), ws.data(),
                   reinterpret_cast<__nv_bfloat16*>(got.data()), nullptr),
      cudaSuccess);
  ExpectClose(got, want, y_in);
}

// in % 8 != 0: the shrink's scalar path; in % 8 == 0: its 16-byte loads
// (1096: two input chunks, the second partial).
INSTANTIATE_TEST_SUITE_P(Shapes, LoraEmulatedTest,
                         ::testing::Values(Sizes{1030, 130}, Sizes{1096, 136}));

}  // namespace
}  // namespace lorad::kernels
