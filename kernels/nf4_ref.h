// NF4 (4-bit NormalFloat) quantization as QLoRA and bitsandbytes define it:
// blocks of 64 weights share one absmax; each weight is the index of the
// nearest of 16 codebook values after dividing by that absmax. With double
// quantization the per-block absmax values are themselves stored as 8-bit
// codes (bitsandbytes' signed dynamic map) in blocks of 256, after
// subtracting their mean (an fp32 offset). Byte-for-byte the layout equals
// bitsandbytes' quantize_4bit(quant_type="nf4", blocksize=64,
// compress_statistics=True): two codes per byte, the first in the high nibble.
//
// CPU reference, torch-free. Thread-compatible (no shared state).
#ifndef LORAD_KERNELS_NF4_REF_H_
#define LORAD_KERNELS_NF4_REF_H_

#include <array>
#include <cstdint>
#include <vector>

namespace lorad::nf4 {

inline constexpr int64_t kBlockSize = 64;         // weights per absmax
inline constexpr int64_t kAbsmaxBlockSize = 256;  // absmax per 8-bit scale

// The 16 NF4 values, ascending, index 7 is exactly 0.
const std::array<float, 16>& Codebook();

// bitsandbytes' signed 8-bit dynamic map (256 values, ascending) used to
// quantize the absmax values in double quantization.
const std::array<float, 256>& DynamicMap();

struct QuantizedTensor {
  int64_t numel = 0;
  std::vector<uint8_t> packed;  // (numel + 1) / 2 bytes
  bool double_quant = true;
  // double_quant == false: one fp32 absmax per block.
  std::vector<float> absmax;
  // double_quant == true: one 8-bit code per block (index into DynamicMap),
  // one fp32 scale per kAbsmaxBlockSize codes, and the subtracted mean.
  std::vector<uint8_t> absmax_codes;
  std::vector<float> absmax_scales;
  float absmax_offset = 0.0f;

  int64_t num_blocks() const { return (numel + kBlockSize - 1) / kBlockSize; }
  // Bytes held by this tensor's state (codes + statistics).
  int64_t StorageBytes() const;
};

// Quantizes `n` floats. A partial last block is allowed.
QuantizedTensor Quantize(const float* w, int64_t n, bool double_quant = true);

// The fp32 absmax of every block (undoing double quantization).
std::vector<float> BlockAbsmax(const QuantizedTensor& q);

// Writes q.numel floats to `out`.
void Dequantize(const QuantizedTensor& q, float* out);

// A read-only view of double-quantized state held elsewhere (a tensor's
// storage, a mapped file), for dequantizing part of it.
struct DoubleQuantView {
  int64_t numel = 0;
  const uint8_t* packed = nullptr;        // (numel + 1) / 2 bytes
  const uint8_t* absmax_codes = nullptr;  // one per block
  const float* absmax_scales = nullptr;   // one per kAbsmaxBlockSize codes
  float absmax_offset = 0.0f;
};

// Writes the values of blocks [block_begin, block_end) to
// out[block_begin * kBlockSize ...], bit-identical to Dequantize. Ranges do
// not overlap, so threads may each take one.
void DequantizeBlocks(const DoubleQuantView& q, int64_t block_begin,
                      int64_t block_end, float* out);

}  // namespace lorad::nf4

#endif  // LORAD_KERNELS_NF4_REF_H_
