// Decode-time product with an NF4 weight, CPU reference:
//   y[m, out] = x[m, in] * W^T
// where W is [out, in] row-major, quantized as one flat tensor of out * in
// weights in the layout of kernels/nf4_ref.h with double quantization
// (blocks of 64 may straddle rows when in % 64 != 0). x is bf16, y fp32.
//
// Each weight is code[q] * absmax_b with the block absmax rebuilt as
// dynamic_map[absmax_codes[b]] * absmax_scales[b / 256] + offset (fp32, the
// same rounding as lorad::nf4::Dequantize); products are summed in double
// and rounded once. Torch-free, thread-compatible.
#ifndef LORAD_KERNELS_NF4_GEMV_REF_H_
#define LORAD_KERNELS_NF4_GEMV_REF_H_

#include <cstdint>

namespace lorad::kernels {

// A double-quantized NF4 matrix held elsewhere (host memory for the
// reference, device memory for the kernels).
struct Nf4MatrixView {
  const uint8_t* packed = nullptr;        // (rows * cols + 1) / 2 bytes
  const uint8_t* absmax_codes = nullptr;  // one per 64 weights
  const float* absmax_scales = nullptr;   // one per 256 blocks
  float absmax_offset = 0.0f;
};

// Writes m * out floats to y. Requires m, in, out >= 0 and host pointers
// holding the sizes above; x is m * in bf16 values (their bits).
void Nf4GemvRef(const Nf4MatrixView& w, int64_t out, int64_t in,
                const uint16_t* x, int64_t m, float* y);

}  // namespace lorad::kernels

#endif  // LORAD_KERNELS_NF4_GEMV_REF_H_
