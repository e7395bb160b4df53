#include "kernels/nf4_ref.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/nf4_values.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Byte-identity with bitsandbytes needs every product and sum rounded on its
// own, as torch and bnb's C code do; a fused multiply-add would differ.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace lorad::nf4 {
namespace {

// bnb's signed dynamic map: for each exponent e in 0..6, the midpoints of
// linspace(0.1, 1, 2^e + 1) (computed as torch computes a float32 linspace)
// scaled by +-10^(e-6); then 0 and 1.0; sorted. 254 + 2 = 256 values.
std::array<float, 256> MakeDynamicMap() {
  std::vector<float> data;
  for (int e = 0; e < 7; ++e) {
    const int steps = (1 << e) + 1;
    // torch's CPU linspace: step in float, the first half counted up from
    // start, the second half down from end; the installed torch build
    // (x86-64) compiles each as one fused multiply-add.
    const float start = 0.1f;
    const float end = 1.0f;
    const float step = (end - start) / static_cast<float>(steps - 1);
    const int halfway = steps / 2;
    std::vector<float> bounds(steps);
    for (int i = 0; i < steps; ++i) {
      bounds[i] = i < halfway
                      ? std::fma(step, static_cast<float>(i), start)
                      : std::fma(-step, static_cast<float>(steps - i - 1), end);
    }
    // Python computes 10 ** (e - 6) as a double; torch multiplies the float
    // tensor by it after casting it to float.
    const float scale = static_cast<float>(std::pow(10.0, e - 6));
    for (int i = 0; i + 1 < steps; ++i) {
      const float mean = (bounds[i] + bounds[i + 1]) / 2.0f;
      data.push_back(scale * mean);
    }
    for (int i = 0; i + 1 < steps; ++i) {
      const float mean = (bounds[i] + bounds[i + 1]) / 2.0f;
      data.push_back(-scale * mean);
    }
  }
  data.push_back(0.0f);
  data.push_back(1.0f);
  std::sort(data.begin(), data.end());
  std::array<float, 256> map{};
  std::copy(data.begin(), data.end(), map.begin());
  return map;
}

// bnb's CPU quantize_blockwise does not search the map: it rounds the
// normalised value x in [-1, 1] to one of 65536 evenly spaced points
// i = trunc(fma(65535, (x + 1) / 2, 0.5)) and looks the code up in a table
// built once per map: the first code whose midpoint with its successor is
// >= (2i / 65535 - 1). We build the same table so the codes match.
constexpr int kLutSize = 65536;

std::vector<uint8_t> MakeDynamicLut() {
  const std::array<float, 256>& map = DynamicMap();
  std::array<float, 255> mid;
  for (int j = 0; j < 255; ++j) mid[j] = (map[j] + map[j + 1]) * 0.5f;
  std::vector<uint8_t> lut(kLutSize);
  int idx = 0;
  for (int i = 0; i < kLutSize; ++i) {
    const float v = (2.0f * static_cast<float>(i)) / 65535.0f - 1.0f;
    while (idx < 255 && v > mid[idx]) ++idx;
    lut[i] = static_cast<uint8_t>(idx);
  }
  return lut;
}

const std::vector<uint8_t>& DynamicLut() {
  static const std::vector<uint8_t>* lut =
      new std::vector<uint8_t>(MakeDynamicLut());
  return *lut;
}

// Decision boundaries between adjacent NF4 values, rounded as torch rounds
// (a + b) / 2 in float. A value on a boundary takes the lower code
// (torch.bucketize, right=False).
const std::array<float, 15>& Nf4Bounds() {
  static const std::array<float, 15> bounds = [] {
    std::array<float, 15> b;
    const auto& cb = Codebook();
    for (int i = 0; i < 15; ++i) b[i] = (cb[i] + cb[i + 1]) / 2.0f;
    return b;
  }();
  return bounds;
}

inline uint8_t Nf4Code(float x, const std::array<float, 15>& bounds) {
  uint8_t c = 0;
  for (float b : bounds) c += static_cast<uint8_t>(b < x);
  return c;
}

// Quantizes `n` values in blocks of kAbsmaxBlockSize as bnb's CPU
// quantize_blockwise does (see DynamicLut).
void QuantizeAbsmax(const float* a, int64_t n, std::vector<uint8_t>& codes,
                    std::vector<float>& scales) {
  const std::vector<uint8_t>& lut = DynamicLut();
  codes.assign(n, 0);
  scales.assign((n + kAbsmaxBlockSize - 1) / kAbsmaxBlockSize, 0.0f);
  for (int64_t s = 0; s < static_cast<int64_t>(scales.size()); ++s) {
    const int64_t begin = s * kAbsmaxBlockSize;
    const int64_t end = std::min(n, begin + kAbsmaxBlockSize);
    float m = 0.0f;
    for (int64_t i = begin; i < end; ++i) m = std::max(m, std::fabs(a[i]));
    scales[s] = m;
    if (m == 0.0f) continue;  // bnb writes code 0 for an all-zero block
    const float inv = 1.0f / m;
    for (int64_t i = begin; i < end; ++i) {
      const float x = std::clamp(a[i] * inv, -1.0f, 1.0f);
      const float t = (x + 1.0f) * 0.5f;
      const int pos = static_cast<int>(std::fma(65535.0f, t, 0.5f));
      codes[i] = lut[pos & 0xffff];
    }
  }
}

}  // namespace

const std::array<float, 16>& Codebook() {
  static const std::array<float, 16> kCodebook = {LORAD_NF4_VALUES};
  return kCodebook;
}

const std::array<float, 256>& DynamicMap() {
  static const std::array<float, 256> map = MakeDynamicMap();
  return map;
}

int64_t QuantizedTensor::StorageBytes() const {
  int64_t bytes = static_cast<int64_t>(packed.size());
  if (double_quant) {
    bytes += static_cast<int64_t>(absmax_codes.size()) +
             static_cast<int64_t>(absmax_scales.size() * sizeof(float)) +
             static_cast<int64_t>(sizeof(float));
  } else {
    bytes += static_cast<int64_t>(absmax.size() * sizeof(float));
  }
  return bytes;
}

QuantizedTensor Quantize(const float* w, int64_t n, bool double_quant) {
  QuantizedTensor q;
  q.numel = std::max<int64_t>(n, 0);
  q.double_quant = double_quant;
  q.packed.assign((q.numel + 1) / 2, 0);
  const int64_t blocks = q.num_blocks();
  std::vector<float> absmax(blocks);
  const auto& bounds = Nf4Bounds();
  // torch clamps the absmax at the float nearest the double 1e-38 before
  // dividing, so an all-zero block quantizes to code 7 (0.0).
  const float tiny = static_cast<float>(1e-38);
  std::vector<uint8_t> codes(kBlockSize);
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * kBlockSize;
    const int64_t len = std::min(kBlockSize, q.numel - begin);
    float m = 0.0f;
    for (int64_t i = 0; i < len; ++i) m = std::max(m, std::fabs(w[begin + i]));
    if (len == kBlockSize) {
      // bnb multiplies full blocks by the reciprocal ...
      absmax[b] = m;
      const float r = 1.0f / std::max(m, tiny);
      for (int64_t i = 0; i < len; ++i) {
        codes[i] = Nf4Code(std::clamp(w[begin + i] * r, -1.0f, 1.0f), bounds);
      }
    } else {
      // ... and divides the partial last block, whose stored absmax is the
      // clamped one.
      m = std::max(m, tiny);
      absmax[b] = m;
      for (int64_t i = 0; i < len; ++i) {
        codes[i] = Nf4Code(std::clamp(w[begin + i] / m, -1.0f, 1.0f), bounds);
      }
    }
    for (int64_t i = 0; i < len; ++i) {
      const int64_t k = begin + i;
      q.packed[k / 2] |= (k % 2 == 0) ? codes[i] << 4 : codes[i];
    }
  }
  if (q.numel % 2 == 1) q.packed.back() |= Nf4Code(0.0f, bounds);

  if (!double_quant) {
    q.absmax = std::move(absmax);
    return q;
  }
  // The offset is the mean of the absmax values, summed exactly enough in
  // double and rounded once (torch's float mean may differ by one ulp on
  // large tensors; its summation order depends on the CPU's vector width).
  double sum = 0.0;
  for (float a : absmax) sum += a;
  q.absmax_offset =
      blocks > 0 ? static_cast<float>(sum / static_cast<double>(blocks)) : 0.0f;
  for (float& a : absmax) a -= q.absmax_offset;
  QuantizeAbsmax(absmax.data(), blocks, q.absmax_codes, q.absmax_scales);
  return q;
}

std::vector<float> BlockAbsmax(const QuantizedTensor& q) {
  if (!q.double_quant) return q.absmax;
  const auto& map = DynamicMap();
  std::vector<float> absmax(q.absmax_codes.size());
  for (size_t b = 0; b < absmax.size(); ++b) {
    const float v =
        map[q.absmax_codes[b]] * q.absmax_scales[b / kAbsmaxBlockSize];
    absmax[b] = v + q.absmax_offset;
  }
  return absmax;
}

namespace {

// The values of one block, given its absmax: a 16-entry table per block gives
// the same products as code * absmax without a per-element multiply.
inline void DequantizeBlock(const uint8_t* in, float absmax, int64_t len,
                            float* o) {
  const auto& cb = Codebook();
  float table[16];
  for (int k = 0; k < 16; ++k) table[k] = cb[k] * absmax;
  const int64_t pairs = len / 2;
  for (int64_t i = 0; i < pairs; ++i) {
    const uint8_t byte = in[i];
    o[2 * i] = table[byte >> 4];
    o[2 * i + 1] = table[byte & 0x0f];
  }
  if (len % 2 == 1) o[len - 1] = table[in[pairs] >> 4];
}

#if defined(__x86_64__)
// A whole block (64 values, 32 bytes) with SSSE3 byte shuffles, which are
// single cheap instructions on every x86-64 core of the last decade (AVX2's
// cross-lane permutes are not, on some). The block's 16 products
// (codebook * absmax, the same as DequantizeBlock's table) are split into
// four 16-byte planes, one per byte of the float; each nibble then picks
// its four bytes with one shuffle per plane, and unpacking the planes puts
// whole floats back in memory order. Bit for bit DequantizeBlock's values.
// The output (16-byte aligned) is written with streaming stores: it is
// eight times the input and read back only after the whole matrix is done,
// so fetching its lines into the cache first would double the traffic.
__attribute__((target("ssse3"))) void DequantizeFullBlockSsse3(
    const uint8_t* in, float absmax, float* o) {
  const float* cb = Codebook().data();
  const __m128 scale = _mm_set1_ps(absmax);
  __m128i t[4];
  for (int k = 0; k < 4; ++k) {
    t[k] = _mm_castps_si128(_mm_mul_ps(_mm_loadu_ps(cb + 4 * k), scale));
  }
  // Gather byte b of each float of a vector: [v0.b v1.b v2.b v3.b ...].
  const __m128i by_byte =
      _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  for (__m128i& v : t) v = _mm_shuffle_epi8(v, by_byte);
  // t[k] holds floats 4k..4k+3 as [byte0 x4 | byte1 x4 | byte2 x4 | byte3 x4].
  const __m128i lo01 = _mm_unpacklo_epi32(t[0], t[1]);  // b0 f0-7, b1 f0-7
  const __m128i hi01 = _mm_unpackhi_epi32(t[0], t[1]);  // b2 f0-7, b3 f0-7
  const __m128i lo23 = _mm_unpacklo_epi32(t[2], t[3]);  // b0 f8-15, b1 ...
  const __m128i hi23 = _mm_unpackhi_epi32(t[2], t[3]);
  const __m128i plane[4] = {
      _mm_unpacklo_epi64(lo01, lo23), _mm_unpackhi_epi64(lo01, lo23),
      _mm_unpacklo_epi64(hi01, hi23), _mm_unpackhi_epi64(hi01, hi23)};
  const __m128i nibble = _mm_set1_epi8(0x0f);
  for (int j = 0; j < kBlockSize / 2; j += 16) {
    const __m128i bytes =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + j));
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), nibble);
    const __m128i lo = _mm_and_si128(bytes, nibble);
    // Codes in memory order: the high nibble of each byte comes first.
    const __m128i codes[2] = {_mm_unpacklo_epi8(hi, lo),
                              _mm_unpackhi_epi8(hi, lo)};
    for (int c = 0; c < 2; ++c) {
      const __m128i b0 = _mm_shuffle_epi8(plane[0], codes[c]);
      const __m128i b1 = _mm_shuffle_epi8(plane[1], codes[c]);
      const __m128i b2 = _mm_shuffle_epi8(plane[2], codes[c]);
      const __m128i b3 = _mm_shuffle_epi8(plane[3], codes[c]);
      const __m128i b01_lo = _mm_unpacklo_epi8(b0, b1);
      const __m128i b01_hi = _mm_unpackhi_epi8(b0, b1);
      const __m128i b23_lo = _mm_unpacklo_epi8(b2, b3);
      const __m128i b23_hi = _mm_unpackhi_epi8(b2, b3);
      float* dst = o + 2 * j + 16 * c;
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst),
                       _mm_unpacklo_epi16(b01_lo, b23_lo));
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + 4),
                       _mm_unpackhi_epi16(b01_lo, b23_lo));
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + 8),
                       _mm_unpacklo_epi16(b01_hi, b23_hi));
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + 12),
                       _mm_unpackhi_epi16(b01_hi, b23_hi));
    }
  }
}

bool HaveSsse3() {
  static const bool have = __builtin_cpu_supports("ssse3");
  return have;
}
#endif

}  // namespace

void Dequantize(const QuantizedTensor& q, float* out) {
  const std::vector<float> absmax = BlockAbsmax(q);
  const int64_t blocks = q.num_blocks();
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * kBlockSize;
    DequantizeBlock(q.packed.data() + begin / 2, absmax[b],
                    std::min(kBlockSize, q.numel - begin), out + begin);
  }
}

void DequantizeBlocks(const DoubleQuantView& q, int64_t block_begin,
                      int64_t block_end, float* out) {
#if defined(__x86_64__)
  const bool simd = HaveSsse3() && reinterpret_cast<uintptr_t>(out) % 16 == 0;
#endif
  const auto& map = DynamicMap();
  for (int64_t b = block_begin; b < block_end; ++b) {
    // Same two roundings as BlockAbsmax: code * scale, then + offset.
    const float scaled =
        map[q.absmax_codes[b]] * q.absmax_scales[b / kAbsmaxBlockSize];
    const float absmax = scaled + q.absmax_offset;
    const int64_t begin = b * kBlockSize;
    const int64_t len = std::min(kBlockSize, q.numel - begin);
#if defined(__x86_64__)
    if (len == kBlockSize && simd) {
      DequantizeFullBlockSsse3(q.packed + begin / 2, absmax, out + begin);
      continue;
    }
#endif
    DequantizeBlock(q.packed + begin / 2, absmax, len, out + begin);
  }
#if defined(__x86_64__)
  // Streaming stores are weakly ordered: make them visible before return.
  if (simd) _mm_sfence();
#endif
}

}  // namespace lorad::nf4
