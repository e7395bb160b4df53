// The NF4 GEMV CUDA source run on the host emulator (kernels_emu.h): its
// fast and general paths against the CPU reference, with the tolerance the
// GPU test uses.
// clang-format off
#include "tests/unit/kernels_emu.h"
#include "kernels/nf4_gemv.cu"  // NOLINT(build/include)
// clang-format on

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/bf16.h"
#include "kernels/nf4_gemv_ref.h"
#include "kernels/nf4_ref.h"
#include "tests/unit/kernels_test_util.h"

namespace lorad::kernels {
namespace {

// shift offsets packed and x by a byte / an element (the general path).
void Check(int64_t out, int64_t in, int64_t m, size_t shift) {
  const std::vector<float> w = testing::RandomFloats(out * in, 1, 0.02f);
  const nf4::QuantizedTensor q = nf4::Quantize(w.data(), out * in);
  const std::vector<uint16_t> x = testing::RandomBf16(m * in, 2, 1.0f);
  std::vector<float> want(static_cast<size_t>(m * out));
  const Nf4MatrixView view{q.packed.data(), q.absmax_codes.data(),
                           q.absmax_scales.data(), q.absmax_offset};
  Nf4GemvRef(view, out, in, x.data(), m, want.data());
  // 16-byte aligned host copies, shifted when asked.
  std::vector<uint4> packed_buf(q.packed.size() / 16 + 2);
  std::vector<uint4> x_buf(x.size() / 8 + 2);
  auto* packed = reinterpret_cast<uint8_t*>(packed_buf.data()) + shift;
  auto* xs = reinterpret_cast<uint16_t*>(x_buf.data()) + shift;
  std::memcpy(packed, q.packed.data(), q.packed.size());
  std::memcpy(xs, x.data(), x.size() * 2);
  std::vector<uint16_t> y(want.size());
  ASSERT_EQ(Nf4GemvBf16(packed, q.absmax_codes.data(), q.absmax_scales.data(),
                        q.absmax_offset, nf4::DynamicMap().data(),
                        reinterpret_cast<const __nv_bfloat16*>(xs), m, in, out,
                        reinterpret_cast<__nv_bfloat16*>(y.data()), nullptr),
            cudaSuccess);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t o = 0; o < out; ++o) {
      double abs_sum = 0.0;
      for (int64_t j = 0; j < in; ++j) {
        abs_sum += std::fabs(w[o * in + j] * Bf16BitsToFloat(x[i * in + j]));
      }
      const float wv = want[i * out + o];
      ASSERT_NEAR(Bf16BitsToFloat(y[i * out + o]), wv,
                  std::fabs(wv) / 256 + 1e-4 * abs_sum)
          << "out=" << out << " in=" << in << " m=" << m << " shift=" << shift
          << " row " << i << " output " << o;
    }
  }
}

TEST(Nf4GemvEmulatedTest, FastPathMatchesReference) {
  for (int64_t m : {1, 3, 16}) Check(40, 1088, m, 0);  // partial tile, rows
}

TEST(Nf4GemvEmulatedTest, GeneralPathMatchesReference) {
  Check(37, 100, 5, 0);  // blocks straddle rows
  Check(9, 128, 2, 1);   // misaligned
}

}  // namespace
}  // namespace lorad::kernels
