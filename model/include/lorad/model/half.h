// Conversions between fp32 and the two 16-bit float formats found in
// safetensors files: bfloat16 and IEEE binary16 ("half"). All four are pure,
// thread-safe and never fail.
#ifndef LORAD_MODEL_HALF_H_
#define LORAD_MODEL_HALF_H_

#include <bit>
#include <cstdint>

namespace lorad::model {

// fp32 -> bf16, rounding to nearest, ties to even. Infinities stay
// infinities; a NaN stays a NaN with its sign (made quiet).
inline uint16_t FloatToBf16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) {
    return static_cast<uint16_t>((x >> 16) | 0x0040u);
  }
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

// bf16 -> fp32 (exact).
inline float Bf16ToFloat(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

// fp32 -> binary16, rounding to nearest, ties to even. Magnitudes that round
// past 65504 become infinity; tiny values become subnormals or zero; a NaN
// stays a NaN with its sign (made quiet).
inline uint16_t FloatToHalf(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x > 0x7f800000u) {
    return sign | 0x7e00u | static_cast<uint16_t>((x >> 13) & 0x3ffu);
  }
  if (x >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520: infinity
  if (x < 0x38800000u) {
    // Below the smallest normal half (2^-14): adding 0.5 puts the value's
    // 2^-24 units in the low mantissa bits, and the FPU rounds to even.
    const float t = std::bit_cast<float>(x) + 0.5f;
    return sign | static_cast<uint16_t>(std::bit_cast<uint32_t>(t) -
                                        std::bit_cast<uint32_t>(0.5f));
  }
  const uint32_t odd = (x >> 13) & 1u;
  // Re-bias the exponent (127 -> 15) and round the 13 dropped bits.
  x += 0xc8000fffu + odd;
  return sign | static_cast<uint16_t>(x >> 13);
}

// binary16 -> fp32 (exact).
inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    const float v = static_cast<float>(mant) * 0x1p-24f;
    return std::bit_cast<float>(std::bit_cast<uint32_t>(v) | sign);
  }
  if (exp == 31) {
    return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  }
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
}

}  // namespace lorad::model

#endif  // LORAD_MODEL_HALF_H_
