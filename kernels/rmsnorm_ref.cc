#include "kernels/rmsnorm_ref.h"

#include <cmath>

#include "kernels/bf16.h"

namespace lorad::kernels {

void RmsNormRef(const uint16_t* x, const uint16_t* w, int64_t rows,
                int64_t hidden, float eps, uint16_t* y, float* rstd) {
  for (int64_t i = 0; i < rows; ++i) {
    const uint16_t* xi = x + i * hidden;
    double ss = 0.0;
    for (int64_t j = 0; j < hidden; ++j) {
      const double v = Bf16BitsToFloat(xi[j]);
      ss += v * v;
    }
    const float mean = static_cast<float>(ss / static_cast<double>(hidden));
    const float r = 1.0f / std::sqrt(mean + eps);
    if (rstd != nullptr) rstd[i] = r;
    uint16_t* yi = y + i * hidden;
    for (int64_t j = 0; j < hidden; ++j) {
      yi[j] =
          FloatToBf16Bits(Bf16BitsToFloat(xi[j]) * r * Bf16BitsToFloat(w[j]));
    }
  }
}

}  // namespace lorad::kernels
