#include "kernels/nf4_gemv_ref.h"

#include <cstddef>
#include <vector>

#include "kernels/bf16.h"
#include "kernels/nf4_ref.h"

// The block absmax must round exactly as lorad::nf4::Dequantize's does.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace lorad::kernels {

void Nf4GemvRef(const Nf4MatrixView& w, int64_t out, int64_t in,
                const uint16_t* x, int64_t m, float* y) {
  const auto& cb = nf4::Codebook();
  const auto& map = nf4::DynamicMap();
  std::vector<float> xf(static_cast<size_t>(m * in));
  for (int64_t i = 0; i < m * in; ++i) xf[i] = Bf16BitsToFloat(x[i]);
  std::vector<float> row(static_cast<size_t>(in));
  std::vector<double> acc(static_cast<size_t>(m));
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t j = 0; j < in; ++j) {
      const int64_t k = o * in + j;
      const uint8_t byte = w.packed[k / 2];
      const int code = (k % 2 == 0) ? byte >> 4 : byte & 0x0f;
      const int64_t b = k / nf4::kBlockSize;
      const float absmax =
          map[w.absmax_codes[b]] * w.absmax_scales[b / nf4::kAbsmaxBlockSize] +
          w.absmax_offset;
      row[j] = cb[code] * absmax;
    }
    for (int64_t i = 0; i < m; ++i) {
      double s = 0.0;
      const float* xi = xf.data() + i * in;
      for (int64_t j = 0; j < in; ++j) {
        s += static_cast<double>(row[j]) * static_cast<double>(xi[j]);
      }
      acc[i] = s;
    }
    for (int64_t i = 0; i < m; ++i) y[i * out + o] = static_cast<float>(acc[i]);
  }
}

}  // namespace lorad::kernels
