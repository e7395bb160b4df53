// BGMV / SGMV CPU references against a naive dense computation (delta W =
// B A per adapter, then y += scale * delta W x, in double), and (with a GPU)
// the CUDA kernels against the references.
#include <cmath>
#include <cstdint>
#include <memory>
#include <ostream>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/bf16.h"
#include "kernels/lora_ref.h"
#include "tests/unit/kernels_test_util.h"

#if LORAD_TEST_KERNELS_CUDA
#include "kernels/bgmv.cuh"
#include "kernels/sgmv.cuh"
#endif

namespace lorad::kernels {
namespace {

using testing::RandomBf16;

struct Adapter {
  std::vector<uint16_t> a, b;  // [rank, in], [out, rank]
  int32_t rank;
  float scale;
};

std::vector<Adapter> MakeAdapters(const std::vector<int32_t>& ranks, int64_t in,
                                  int64_t out, uint32_t seed) {
  std::vector<Adapter> ads;
  for (int32_t r : ranks) {
    Adapter ad{RandomBf16(r * in, seed++, 0.05f),
               RandomBf16(out * r, seed++, 0.05f), r, 16.0f / r};
    ads.push_back(std::move(ad));
  }
  return ads;
}

std::vector<LoraAdapterRef> Views(const std::vector<Adapter>& ads) {
  std::vector<LoraAdapterRef> v;
  for (const Adapter& ad : ads) {
    v.push_back({ad.a.data(), ad.b.data(), ad.rank, ad.scale});
  }
  return v;
}

// Per-row adapter (or -1) from segments.
std::vector<int32_t> RowsFromSegments(int64_t n,
                                      const std::vector<int32_t>& starts,
                                      const std::vector<int32_t>& adapters) {
  std::vector<int32_t> idx(static_cast<size_t>(n), -1);
  for (size_t s = 0; s + 1 < starts.size(); ++s) {
    for (int32_t i = starts[s]; i < starts[s + 1]; ++i) idx[i] = adapters[s];
  }
  return idx;
}

// The exact result per element and `mag` = |y| + |scale| sum_kj |B A x|
// terms, the scale of any summation error.
struct Naive {
  std::vector<double> y, mag;
};

Naive NaiveLora(const std::vector<uint16_t>& x, const std::vector<uint16_t>& y,
                int64_t n, int64_t in, int64_t out,
                const std::vector<Adapter>& ads,
                const std::vector<int32_t>& idx) {
  Naive r;
  r.y.resize(y.size());
  r.mag.resize(y.size());
  for (size_t i = 0; i < y.size(); ++i) {
    r.y[i] = Bf16BitsToFloat(y[i]);
    r.mag[i] = std::fabs(r.y[i]);
  }
  for (size_t a = 0; a < ads.size(); ++a) {
    const Adapter& ad = ads[a];
    // delta W = B A, [out, in]; |B| |A| likewise for the magnitude.
    std::vector<double> dw(static_cast<size_t>(out * in), 0.0);
    std::vector<double> dabs(dw.size(), 0.0);
    for (int64_t o = 0; o < out; ++o) {
      for (int32_t k = 0; k < ad.rank; ++k) {
        const double bv = Bf16BitsToFloat(ad.b[o * ad.rank + k]);
        for (int64_t j = 0; j < in; ++j) {
          const double av = Bf16BitsToFloat(ad.a[k * in + j]);
          dw[o * in + j] += bv * av;
          dabs[o * in + j] += std::fabs(bv * av);
        }
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      if (idx[i] != static_cast<int32_t>(a)) continue;
      for (int64_t o = 0; o < out; ++o) {
        double s = 0.0;
        double m = 0.0;
        for (int64_t j = 0; j < in; ++j) {
          const double xv = Bf16BitsToFloat(x[i * in + j]);
          s += dw[o * in + j] * xv;
          m += dabs[o * in + j] * std::fabs(xv);
        }
        r.y[i * out + o] += ad.scale * s;
        r.mag[i * out + o] += std::fabs(ad.scale) * m;
      }
    }
  }
  return r;
}

// got (bf16) within `ulps` bf16 ulps of want's magnitude plus `rel` of the
// terms' magnitude; rows with no adapter must be untouched bit for bit.
void ExpectClose(const std::vector<uint16_t>& got,
                 const std::vector<double>& want, const Naive& naive,
                 const std::vector<uint16_t>& y_in,
                 const std::vector<int32_t>& idx, int64_t out, double ulps,
                 double rel) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t e = 0; e < got.size(); ++e) {
    const int64_t row = static_cast<int64_t>(e) / out;
    if (idx[row] < 0) {
      ASSERT_EQ(got[e], y_in[e]) << "row " << row << " has no adapter";
      continue;
    }
    const double g = Bf16BitsToFloat(got[e]);
    ASSERT_NEAR(g, want[e],
                ulps * std::fabs(want[e]) / 128 + rel * naive.mag[e] + 1e-30)
        << "row " << row << " output " << e % out;
  }
}

struct BgmvCase {
  int64_t n, in, out;
  std::vector<int32_t> ranks;
  std::vector<int32_t> idx;
};

void PrintTo(const BgmvCase& c, std::ostream* os) {
  *os << "n=" << c.n << " in=" << c.in << " out=" << c.out;
}

class BgmvRefTest : public ::testing::TestWithParam<BgmvCase> {};

TEST_P(BgmvRefTest, MatchesDenseDeltaW) {
  const BgmvCase& c = GetParam();
  const auto ads = MakeAdapters(c.ranks, c.in, c.out, 100);
  const auto views = Views(ads);
  const auto x = RandomBf16(c.n * c.in, 1, 1.0f);
  const auto y_in = RandomBf16(c.n * c.out, 2, 1.0f);
  std::vector<uint16_t> y = y_in;
  BgmvRef(x.data(), c.n, c.in, c.out, views.data(),
          static_cast<int32_t>(views.size()), c.idx.data(), y.data());
  const Naive naive = NaiveLora(x, y_in, c.n, c.in, c.out, ads, c.idx);
  // Half an ulp of bf16 rounding plus fp32 rounding of the partial sums.
  ExpectClose(y, naive.y, naive, y_in, c.idx, c.out, 0.5, 1e-6);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, BgmvRefTest,
    ::testing::Values(BgmvCase{4, 64, 32, {1, 16}, {0, -1, 1, 0}},
                      BgmvCase{3, 100, 33, {128, 7}, {1, 0, -1}},
                      BgmvCase{5, 257, 65, {16, 1, 128}, {2, 2, 1, 0, -1}}));

TEST(SgmvRefTest, MatchesDenseDeltaWAndBgmv) {
  const int64_t n = 23, in = 130, out = 47;
  const auto ads = MakeAdapters({16, 1, 128, 8}, in, out, 200);
  const auto views = Views(ads);
  // An empty segment, a no-adapter segment, and rows 21..22 in none.
  const std::vector<int32_t> starts = {0, 5, 5, 6, 14, 17, 21};
  const std::vector<int32_t> seg_ads = {2, 0, 1, 3, -1, 0};
  const auto idx = RowsFromSegments(n, starts, seg_ads);
  const auto x = RandomBf16(n * in, 3, 1.0f);
  const auto y_in = RandomBf16(n * out, 4, 1.0f);
  std::vector<uint16_t> y = y_in;
  SgmvRef(x.data(), in, out, views.data(), static_cast<int32_t>(views.size()),
          starts.data(), seg_ads.data(), static_cast<int64_t>(seg_ads.size()),
          y.data());
  const Naive naive = NaiveLora(x, y_in, n, in, out, ads, idx);
  ExpectClose(y, naive.y, naive, y_in, idx, out, 0.5, 1e-6);

  std::vector<uint16_t> y_bgmv = y_in;
  BgmvRef(x.data(), n, in, out, views.data(),
          static_cast<int32_t>(views.size()), idx.data(), y_bgmv.data());
  EXPECT_EQ(y, y_bgmv);
}

#if LORAD_TEST_KERNELS_CUDA
using testing::DeviceBuffer;
using testing::HaveCudaDevice;

// Adapters uploaded to the device plus the pointer, rank and scale arrays
// the launchers take.
struct DeviceAdapters {
  std::vector<std::unique_ptr<DeviceBuffer<uint16_t>>> weights;
  std::unique_ptr<DeviceBuffer<const __nv_bfloat16*>> a_ptrs, b_ptrs;
  std::unique_ptr<DeviceBuffer<int32_t>> ranks;
  std::unique_ptr<DeviceBuffer<float>> scales;

  bool Upload(const std::vector<Adapter>& ads) {
    std::vector<const __nv_bfloat16*> a, b;
    std::vector<int32_t> r;
    std::vector<float> s;
    for (const Adapter& ad : ads) {
      for (const auto* host : {&ad.a, &ad.b}) {
        weights.push_back(
            std::make_unique<DeviceBuffer<uint16_t>>(host->size()));
        if (!weights.back()->ok() || !weights.back()->Upload(*host)) {
          return false;
        }
      }
      a.push_back(reinterpret_cast<const __nv_bfloat16*>(
          weights[weights.size() - 2]->get()));
      b.push_back(
          reinterpret_cast<const __nv_bfloat16*>(weights.back()->get()));
      r.push_back(ad.rank);
      s.push_back(ad.scale);
    }
    a_ptrs = std::make_unique<DeviceBuffer<const __nv_bfloat16*>>(a.size());
    b_ptrs = std::make_unique<DeviceBuffer<const __nv_bfloat16*>>(b.size());
    ranks = std::make_unique<DeviceBuffer<int32_t>>(r.size());
    scales = std::make_unique<DeviceBuffer<float>>(s.size());
    return a_ptrs->Upload(a) && b_ptrs->Upload(b) && ranks->Upload(r) &&
           scales->Upload(s);
  }
};

// The kernels sum in fp32 in another order and round once to bf16: within
// one bf16 ulp of the reference plus 1e-5 of the terms' magnitude.
constexpr double kKernelUlps = 1.0;
constexpr double kKernelRel = 1e-5;

TEST(BgmvCudaTest, MatchesReference) {
  if (!HaveCudaDevice()) GTEST_SKIP() << "no CUDA device";
  struct Shape {
    int64_t n, in, out;
  };
  for (const Shape& s :
       {Shape{32, 4096, 1024}, Shape{7, 100, 33}, Shape{16, 1000, 2049}}) {
    // Ranks 1..128 (odd ones too); rows cycle through the adapters, every
    // fifth row has none.
    const std::vector<int32_t> ranks = {1, 16, 128, 7, 64, 8, 33, 2};
    const auto ads = MakeAdapters(ranks, s.in, s.out, 300);
    std::vector<int32_t> idx(static_cast<size_t>(s.n));
    for (int64_t i = 0; i < s.n; ++i) {
      idx[i] = i % 5 == 4 ? -1 : static_cast<int32_t>((i * 3) % ranks.size());
    }
    const auto x = RandomBf16(s.n * s.in, 5, 1.0f);
    const auto y_in = RandomBf16(s.n * s.out, 6, 1.0f);
    std::vector<uint16_t> want = y_in;
    const auto views = Views(ads);
    BgmvRef(x.data(), s.n, s.in, s.out, views.data(),
            static_cast<int32_t>(views.size()), idx.data(), want.data());
    const Naive naive = NaiveLora(x, y_in, s.n, s.in, s.out, ads, idx);

    DeviceAdapters dev;
    ASSERT_TRUE(dev.Upload(ads));
    DeviceBuffer<uint16_t> dx(x.size()), dy(y_in.size());
    DeviceBuffer<int32_t> didx(idx.size());
    DeviceBuffer<float> ws(static_cast<size_t>(LoraWorkspaceFloats(s.n)));
    ASSERT_TRUE(dx.Upload(x) && dy.Upload(y_in) && didx.Upload(idx));
    ASSERT_EQ(
        LoraBgmvBf16(reinterpret_cast<const __nv_bfloat16*>(dx.get()), s.n,
                     s.in, s.out, dev.a_ptrs->get(), dev.b_ptrs->get(),
                     dev.ranks->get(), dev.scales->get(),
                     static_cast<int32_t>(ranks.size()), didx.get(), ws.get(),
                     reinterpret_cast<__nv_bfloat16*>(dy.get()), 0),
        cudaSuccess);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<double> want_d(want.begin(), want.end());
    for (size_t e = 0; e < want.size(); ++e) {
      want_d[e] = Bf16BitsToFloat(want[e]);
    }
    ExpectClose(dy.Download(), want_d, naive, y_in, idx, s.out, kKernelUlps,
                kKernelRel);
  }
}

TEST(SgmvCudaTest, MatchesReference) {
  if (!HaveCudaDevice()) GTEST_SKIP() << "no CUDA device";
  const int64_t n = 70, in = 1030, out = 515;
  const std::vector<int32_t> ranks = {16, 1, 128, 5};
  const auto ads = MakeAdapters(ranks, in, out, 400);
  // Segments of 0, 1, 7, 8, 9 and 20 rows, one with no adapter, the last
  // rows in none.
  const std::vector<int32_t> starts = {0, 0, 1, 8, 16, 25, 45, 60};
  const std::vector<int32_t> seg_ads = {3, 0, 1, 2, -1, 0, 3};
  const auto idx = RowsFromSegments(n, starts, seg_ads);
  const auto x = RandomBf16(n * in, 7, 1.0f);
  const auto y_in = RandomBf16(n * out, 8, 1.0f);
  std::vector<uint16_t> want = y_in;
  const auto views = Views(ads);
  SgmvRef(x.data(), in, out, views.data(), static_cast<int32_t>(views.size()),
          starts.data(), seg_ads.data(), static_cast<int64_t>(seg_ads.size()),
          want.data());
  const Naive naive = NaiveLora(x, y_in, n, in, out, ads, idx);

  DeviceAdapters dev;
  ASSERT_TRUE(dev.Upload(ads));
  DeviceBuffer<uint16_t> dx(x.size()), dy(y_in.size());
  DeviceBuffer<int32_t> dstarts(starts.size()), dsegs(seg_ads.size());
  DeviceBuffer<float> ws(static_cast<size_t>(LoraWorkspaceFloats(n)));
  ASSERT_TRUE(dx.Upload(x) && dy.Upload(y_in) && dstarts.Upload(starts) &&
              dsegs.Upload(seg_ads));
  ASSERT_EQ(
      LoraSgmvBf16(reinterpret_cast<const __nv_bfloat16*>(dx.get()), n, in, out,
                   dev.a_ptrs->get(), dev.b_ptrs->get(), dev.ranks->get(),
                   dev.scales->get(), static_cast<int32_t>(ranks.size()),
                   dstarts.get(), dsegs.get(),
                   static_cast<int64_t>(seg_ads.size()), ws.get(),
                   reinterpret_cast<__nv_bfloat16*>(dy.get()), 0),
      cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<double> want_d(want.size());
  for (size_t e = 0; e < want.size(); ++e) want_d[e] = Bf16BitsToFloat(want[e]);
  ExpectClose(dy.Download(), want_d, naive, y_in, idx, out, kKernelUlps,
              kKernelRel);
}
#endif  // LORAD_TEST_KERNELS_CUDA

}  // namespace
}  // namespace lorad::kernels
