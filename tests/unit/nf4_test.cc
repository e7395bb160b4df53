// NF4 CPU reference against bitsandbytes (goldens from
// tests/golden/make_nf4_golden.py) and against its own error bounds.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/nf4_ref.h"
#include "lorad/model/half.h"
#include "lorad/model/memory_estimate.h"
#include "lorad/model/safetensors.h"

#if LORAD_TEST_NF4_CUDA
#include <cuda_runtime.h>

#include "kernels/nf4_dequantize.cuh"
#endif

namespace lorad::nf4 {
namespace {

using model::SafetensorsFile;
using model::TensorInfo;

std::string GoldenPath(const std::string& name) {
  return std::string(LORAD_GOLDEN_DIR) + "/nf4/" + name + ".safetensors";
}

std::vector<uint8_t> Bytes(const TensorInfo* t) {
  return std::vector<uint8_t>(t->data, t->data + t->nbytes);
}

std::vector<float> Floats(const TensorInfo* t) {
  auto v = model::ToFloat32(*t);
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : std::vector<float>();
}

std::vector<float> RandomWeights(int64_t n, uint32_t seed, float stddev) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> w(n);
  for (float& x : w) x = dist(rng);
  return w;
}

// Half the widest gap between adjacent codebook values: the most a value
// can be from its nearest code, in units of its block's absmax.
float HalfMaxGap() {
  const auto& cb = Codebook();
  float gap = 0.0f;
  for (int i = 0; i + 1 < 16; ++i) gap = std::max(gap, cb[i + 1] - cb[i]);
  return gap / 2.0f;
}

TEST(Nf4Test, CodebookAndDynamicMapMatchBitsandbytes) {
  auto maps = SafetensorsFile::Open(GoldenPath("maps"));
  ASSERT_TRUE(maps.ok()) << maps.status();
  std::vector<float> nf4 = Floats((*maps)->Find("nf4"));
  std::vector<float> dyn = Floats((*maps)->Find("dynamic"));
  ASSERT_EQ(nf4.size(), 16u);
  ASSERT_EQ(dyn.size(), 256u);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(Codebook()[i], nf4[i]) << i;
  for (int i = 0; i < 256; ++i) EXPECT_EQ(DynamicMap()[i], dyn[i]) << i;
  EXPECT_EQ(Codebook()[7], 0.0f);
  EXPECT_TRUE(std::is_sorted(DynamicMap().begin(), DynamicMap().end()));
}

class Nf4GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(Nf4GoldenTest, BytesMatchBitsandbytes) {
  auto file = SafetensorsFile::Open(GoldenPath(GetParam()));
  ASSERT_TRUE(file.ok()) << file.status();
  const SafetensorsFile& f = **file;
  std::vector<float> w = Floats(f.Find("weight"));
  QuantizedTensor q = Quantize(w.data(), static_cast<int64_t>(w.size()));

  EXPECT_EQ(q.numel, static_cast<int64_t>(w.size()));
  EXPECT_EQ(q.packed, Bytes(f.Find("packed")));
  EXPECT_EQ(q.absmax_codes, Bytes(f.Find("absmax_codes")));
  EXPECT_EQ(q.absmax_scales, Floats(f.Find("absmax_scales")));
  // torch's float mean may round differently from our exactly rounded one;
  // in these cases it does not.
  EXPECT_EQ(q.absmax_offset, Floats(f.Find("offset"))[0]);

  QuantizedTensor plain =
      Quantize(w.data(), static_cast<int64_t>(w.size()), false);
  EXPECT_EQ(plain.packed, q.packed);
  EXPECT_EQ(plain.absmax, Floats(f.Find("absmax")));
}

TEST_P(Nf4GoldenTest, DequantizeMatchesBitsandbytes) {
  auto file = SafetensorsFile::Open(GoldenPath(GetParam()));
  ASSERT_TRUE(file.ok()) << file.status();
  std::vector<float> w = Floats((*file)->Find("weight"));
  std::vector<float> want = Floats((*file)->Find("dequant"));
  QuantizedTensor q = Quantize(w.data(), static_cast<int64_t>(w.size()));
  std::vector<float> got(w.size());
  Dequantize(q, got.data());
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_LE(std::fabs(got[i] - want[i]), 1e-6f * std::fabs(want[i]))
        << "element " << i << ": " << got[i] << " vs " << want[i];
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, Nf4GoldenTest,
                         ::testing::Values("n33", "r17x129", "r96x200",
                                           "r64x1024"));

// Without double quantization every element lies within half the widest
// codebook gap times its block's absmax of its original value.
TEST(Nf4Test, RoundTripErrorWithinHalfGapTimesAbsmax) {
  const int64_t n = 64 * 100 + 37;
  std::vector<float> w = RandomWeights(n, 7, 0.03f);
  QuantizedTensor q = Quantize(w.data(), n, /*double_quant=*/false);
  std::vector<float> out(n);
  Dequantize(q, out.data());
  const float half_gap = HalfMaxGap();
  // The widest gap is the lowest one, between -1 and -0.6962.
  EXPECT_FLOAT_EQ(half_gap, (1.0f - 0.6961928009986877f) / 2.0f);
  for (int64_t i = 0; i < n; ++i) {
    const float absmax = q.absmax[i / kBlockSize];
    ASSERT_LE(std::fabs(out[i] - w[i]), half_gap * absmax * (1.0f + 1e-6f))
        << "element " << i;
  }
}

// With double quantization the block scale itself is approximate, so the
// bound adds the scale's error (|code| <= 1): |w - w'| <= half_gap *
// absmax + |absmax' - absmax|. That error is in turn at most half the widest
// gap of the dynamic map, plus bnb's 2/65535 lookup-grid step, times the
// 256-block's scale.
TEST(Nf4Test, DoubleQuantRoundTripErrorBound) {
  const int64_t n = 64 * 1000 + 5;
  std::vector<float> w = RandomWeights(n, 11, 0.02f);
  QuantizedTensor plain = Quantize(w.data(), n, false);
  QuantizedTensor q = Quantize(w.data(), n, true);
  ASSERT_EQ(plain.packed, q.packed);
  std::vector<float> dq_absmax = BlockAbsmax(q);
  std::vector<float> out(n);
  Dequantize(q, out.data());
  const float half_gap = HalfMaxGap();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t b = i / kBlockSize;
    const float bound =
        half_gap * plain.absmax[b] + std::fabs(dq_absmax[b] - plain.absmax[b]);
    ASSERT_LE(std::fabs(out[i] - w[i]), bound * (1.0f + 1e-5f))
        << "element " << i;
  }
  const auto& map = DynamicMap();
  float map_gap = 0.0f;
  for (int i = 0; i + 1 < 256; ++i) {
    map_gap = std::max(map_gap, map[i + 1] - map[i]);
  }
  for (size_t b = 0; b < dq_absmax.size(); ++b) {
    const float scale = q.absmax_scales[b / kAbsmaxBlockSize];
    ASSERT_LE(std::fabs(dq_absmax[b] - plain.absmax[b]),
              (map_gap / 2 + 2.0f / 65535) * scale * (1.0f + 1e-5f))
        << "block " << b;
  }
}

TEST(Nf4Test, DoubleQuantOverheadIsAbout0127BitsPerParam) {
  const int64_t n = kBlockSize * kAbsmaxBlockSize * 16;
  std::vector<float> w = RandomWeights(n, 3, 1.0f);
  QuantizedTensor q = Quantize(w.data(), n);
  QuantizedTensor plain = Quantize(w.data(), n, false);
  const double packed_bits = 8.0 * static_cast<double>(q.packed.size());
  const double dq_bits =
      (8.0 * q.StorageBytes() - packed_bits) / static_cast<double>(n);
  const double plain_bits =
      (8.0 * plain.StorageBytes() - packed_bits) / static_cast<double>(n);
  // 8 bits per 64 weights + one fp32 scale per 64 * 256 weights (0.127)
  // + the single fp32 offset.
  EXPECT_DOUBLE_EQ(dq_bits, 8.0 / 64 + 32.0 / (64 * 256) + 32.0 / n);
  EXPECT_NEAR(dq_bits, 0.127, 1e-3);
  EXPECT_DOUBLE_EQ(plain_bits, 32.0 / 64);  // 0.5
  EXPECT_EQ(q.packed.size(), static_cast<size_t>(n / 2));
}

// The memory estimate (model/, kernel-free) keeps its own copy of the NF4
// layout; it must describe what the quantizer really stores.
TEST(Nf4Test, MemoryEstimateBytesPerParamMatchesQuantizedStorage) {
  const int64_t n = kBlockSize * kAbsmaxBlockSize * 64;
  std::vector<float> w = RandomWeights(n, 5, 1.0f);
  QuantizedTensor q = Quantize(w.data(), n);
  const double stored = static_cast<double>(q.StorageBytes()) / n;
  // The estimate leaves out the single fp32 offset of the whole tensor.
  EXPECT_NEAR(model::Nf4BytesPerParam(), stored, 4.0 / n + 1e-12);
}

TEST(Nf4Test, PackingPutsFirstCodeInHighNibble) {
  // -1 -> code 0, +1 -> code 15, 0 -> code 7; the odd tail pads with 7.
  std::vector<float> w = {-1.0f, 1.0f, 0.0f};
  QuantizedTensor q = Quantize(w.data(), 3, false);
  ASSERT_EQ(q.packed.size(), 2u);
  EXPECT_EQ(q.packed[0], 0x0f);
  EXPECT_EQ(q.packed[1], 0x77);
  std::vector<float> out(3);
  Dequantize(q, out.data());
  EXPECT_EQ(out, w);
}

TEST(Nf4Test, ZeroAndEmptyInputs) {
  std::vector<float> zeros(100, 0.0f);
  QuantizedTensor q = Quantize(zeros.data(), 100);
  std::vector<float> out(100, 1.0f);
  Dequantize(q, out.data());
  for (float v : out) EXPECT_EQ(v, 0.0f);

  QuantizedTensor empty = Quantize(nullptr, 0);
  EXPECT_EQ(empty.num_blocks(), 0);
  EXPECT_TRUE(empty.packed.empty());
  Dequantize(empty, nullptr);
}

#if LORAD_TEST_NF4_CUDA
// The CUDA kernel's bf16 output equals bf16(CPU reference), bit for bit, on
// both its aligned and unaligned paths and with a partial last block.
TEST(Nf4CudaTest, DequantizeMatchesCpuReference) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    GTEST_SKIP() << "no CUDA device";
  }
  const int64_t n = 64 * 256 * 3 + 64 * 5 + 23;
  std::vector<float> w = RandomWeights(n, 5, 0.02f);
  QuantizedTensor q = Quantize(w.data(), n);
  std::vector<float> want(n);
  Dequantize(q, want.data());

  uint8_t* d_packed = nullptr;
  uint8_t* d_codes = nullptr;
  float* d_scales = nullptr;
  float* d_map = nullptr;
  uint16_t* d_out = nullptr;
  ASSERT_EQ(cudaMalloc(&d_packed, q.packed.size() + 1), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&d_codes, q.absmax_codes.size()), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&d_scales, q.absmax_scales.size() * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&d_map, 256 * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&d_out, (n + 8) * 2), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(d_codes, q.absmax_codes.data(), q.absmax_codes.size(),
                       cudaMemcpyHostToDevice),
            cudaSuccess);
  ASSERT_EQ(cudaMemcpy(d_scales, q.absmax_scales.data(),
                       q.absmax_scales.size() * 4, cudaMemcpyHostToDevice),
            cudaSuccess);
  ASSERT_EQ(
      cudaMemcpy(d_map, DynamicMap().data(), 256 * 4, cudaMemcpyHostToDevice),
      cudaSuccess);
  for (int shift : {0, 1}) {  // 1: misaligned packed and out
    ASSERT_EQ(cudaMemcpy(d_packed + shift, q.packed.data(), q.packed.size(),
                         cudaMemcpyHostToDevice),
              cudaSuccess);
    auto* out = reinterpret_cast<__nv_bfloat16*>(d_out + shift);
    ASSERT_EQ(
        kernels::Nf4DequantizeBf16(d_packed + shift, d_codes, d_scales,
                                   q.absmax_offset, d_map, n, out, nullptr),
        cudaSuccess);
    std::vector<uint16_t> got(n);
    ASSERT_EQ(cudaMemcpy(got.data(), out, n * 2, cudaMemcpyDeviceToHost),
              cudaSuccess);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(got[i], model::FloatToBf16(want[i]))
          << "shift " << shift << " element " << i;
    }
  }
  cudaFree(d_packed);
  cudaFree(d_codes);
  cudaFree(d_scales);
  cudaFree(d_map);
  cudaFree(d_out);
}
#endif  // LORAD_TEST_NF4_CUDA

}  // namespace
}  // namespace lorad::nf4
