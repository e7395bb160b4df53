// The NF4 dequantize CUDA source run on the host emulator (kernels_emu.h):
// bit-identical to bf16 of the CPU reference on its aligned and unaligned
// paths, with a partial last block.
// clang-format off
#include "tests/unit/kernels_emu.h"
#include "kernels/nf4_dequantize.cu"  // NOLINT(build/include)
// clang-format on

#include <vector>

#include "gtest/gtest.h"
#include "kernels/bf16.h"
#include "kernels/nf4_ref.h"
#include "tests/unit/kernels_test_util.h"

namespace lorad::kernels {
namespace {

TEST(Nf4DequantizeEmulatedTest, BitIdenticalToReference) {
  const int64_t n = 64 * 256 + 64 * 3 + 23;
  const std::vector<float> w = testing::RandomFloats(n, 9, 0.02f);
  const nf4::QuantizedTensor q = nf4::Quantize(w.data(), n);
  std::vector<float> want(n);
  nf4::Dequantize(q, want.data());
  for (size_t shift : {0, 1}) {  // 1: misaligned packed and out
    std::vector<uint4> packed_buf(q.packed.size() / 16 + 2);
    std::vector<uint4> out_buf(n / 8 + 2);
    auto* packed = reinterpret_cast<uint8_t*>(packed_buf.data()) + shift;
    auto* out = reinterpret_cast<uint16_t*>(out_buf.data()) + shift;
    std::memcpy(packed, q.packed.data(), q.packed.size());
    ASSERT_EQ(
        Nf4DequantizeBf16(packed, q.absmax_codes.data(), q.absmax_scales.data(),
                          q.absmax_offset, nf4::DynamicMap().data(), n,
                          reinterpret_cast<__nv_bfloat16*>(out), nullptr),
        cudaSuccess);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(out[i], FloatToBf16Bits(want[i]))
          << "shift " << shift << " element " << i;
    }
  }
}

}  // namespace
}  // namespace lorad::kernels
