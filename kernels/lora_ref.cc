#include "kernels/lora_ref.h"

#include <cstddef>
#include <vector>

#include "kernels/bf16.h"

namespace lorad::kernels {
namespace {

void ApplyRow(const uint16_t* x, int64_t in, int64_t out,
              const LoraAdapterRef& ad, uint16_t* y) {
  std::vector<float> v(static_cast<size_t>(ad.rank));
  for (int32_t k = 0; k < ad.rank; ++k) {
    const uint16_t* a = ad.a + k * in;
    double s = 0.0;
    for (int64_t j = 0; j < in; ++j) {
      s += static_cast<double>(Bf16BitsToFloat(a[j])) *
           static_cast<double>(Bf16BitsToFloat(x[j]));
    }
    v[k] = static_cast<float>(s);
  }
  for (int64_t o = 0; o < out; ++o) {
    const uint16_t* b = ad.b + o * ad.rank;
    double s = 0.0;
    for (int32_t k = 0; k < ad.rank; ++k) {
      s += static_cast<double>(Bf16BitsToFloat(b[k])) *
           static_cast<double>(v[k]);
    }
    const float delta = ad.scale * static_cast<float>(s);
    y[o] = FloatToBf16Bits(Bf16BitsToFloat(y[o]) + delta);
  }
}

}  // namespace

void BgmvRef(const uint16_t* x, int64_t n, int64_t in, int64_t out,
             const LoraAdapterRef* adapters, int32_t num_adapters,
             const int32_t* idx, uint16_t* y) {
  for (int64_t i = 0; i < n; ++i) {
    if (idx[i] < 0 || idx[i] >= num_adapters) continue;
    ApplyRow(x + i * in, in, out, adapters[idx[i]], y + i * out);
  }
}

void SgmvRef(const uint16_t* x, int64_t in, int64_t out,
             const LoraAdapterRef* adapters, int32_t num_adapters,
             const int32_t* seg_starts, const int32_t* seg_adapters,
             int64_t num_segments, uint16_t* y) {
  for (int64_t s = 0; s < num_segments; ++s) {
    const int32_t a = seg_adapters[s];
    if (a < 0 || a >= num_adapters) continue;
    for (int64_t i = seg_starts[s]; i < seg_starts[s + 1]; ++i) {
      ApplyRow(x + i * in, in, out, adapters[a], y + i * out);
    }
  }
}

}  // namespace lorad::kernels
