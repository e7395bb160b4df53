// bfloat16 <-> fp32 conversions for the torch-free CPU references and tests
// in kernels/ (a bf16 value is handled as its 16 bits). Pure, thread-safe.
#ifndef LORAD_KERNELS_BF16_H_
#define LORAD_KERNELS_BF16_H_

#include <bit>
#include <cstdint>

namespace lorad::kernels {

// fp32 -> bf16 bits, rounding to nearest, ties to even (as CUDA's
// __float2bfloat16_rn does). A NaN stays a quiet NaN with its sign.
inline uint16_t FloatToBf16Bits(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) {
    return static_cast<uint16_t>((x >> 16) | 0x0040u);
  }
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

// bf16 bits -> fp32 (exact).
inline float Bf16BitsToFloat(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

}  // namespace lorad::kernels

#endif  // LORAD_KERNELS_BF16_H_
