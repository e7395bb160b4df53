#include "lorad/worker/nf4_weight.h"

#include <torch/torch.h>

#include <cstring>

#include "kernels/nf4_ref.h"
#include "lorad/cuda_bridge/kernels.h"
#include "lorad/worker/thread_scratch.h"

namespace lorad::worker {
namespace {

torch::Tensor ToDevice(torch::Tensor host, torch::Device device) {
  return device.is_cpu() ? host : host.to(device);
}

class Nf4MatMulFunction : public torch::autograd::Function<Nf4MatMulFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx,
                               torch::Tensor x, const Nf4Weight* w) {
    ctx->saved_data["w"] = reinterpret_cast<int64_t>(w);
    torch::Tensor weight = w->DequantizeForMatMul(x.scalar_type());
    return torch::matmul(x, weight.t());
  }

  static torch::autograd::variable_list backward(
      torch::autograd::AutogradContext* ctx,
      torch::autograd::variable_list grad_out) {
    const auto* w =
        reinterpret_cast<const Nf4Weight*>(ctx->saved_data["w"].toInt());
    torch::Tensor g = grad_out[0];
    torch::Tensor weight = w->DequantizeForMatMul(g.scalar_type());
    return {torch::matmul(g, weight), torch::Tensor()};
  }
};

}  // namespace

Nf4Weight Nf4Weight::Quantize(const float* w, int64_t out_features,
                              int64_t in_features, torch::Device device) {
  Nf4Weight r;
  r.out_ = out_features;
  r.in_ = in_features;
  nf4::QuantizedTensor q =
      nf4::Quantize(w, out_features * in_features, /*double_quant=*/true);
  auto u8 = torch::TensorOptions().dtype(torch::kUInt8);
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  torch::Tensor packed =
      torch::empty({static_cast<int64_t>(q.packed.size())}, u8);
  std::memcpy(packed.data_ptr(), q.packed.data(), q.packed.size());
  torch::Tensor codes =
      torch::empty({static_cast<int64_t>(q.absmax_codes.size())}, u8);
  std::memcpy(codes.data_ptr(), q.absmax_codes.data(), q.absmax_codes.size());
  torch::Tensor scales =
      torch::empty({static_cast<int64_t>(q.absmax_scales.size())}, f32);
  std::memcpy(scales.data_ptr(), q.absmax_scales.data(),
              q.absmax_scales.size() * sizeof(float));
  torch::Tensor map = torch::empty({256}, f32);
  std::memcpy(map.data_ptr(), nf4::DynamicMap().data(), 256 * sizeof(float));
  torch::Tensor pairs = torch::empty({256, 2}, f32);
  const auto& cb = nf4::Codebook();
  float* p = pairs.data_ptr<float>();
  for (int b = 0; b < 256; ++b) {
    p[2 * b] = cb[b >> 4];
    p[2 * b + 1] = cb[b & 15];
  }
  r.packed_ = ToDevice(packed, device);
  r.absmax_codes_ = ToDevice(codes, device);
  r.absmax_scales_ = ToDevice(scales, device);
  r.dynamic_map_ = ToDevice(map, device);
  r.pair_table_ = ToDevice(pairs, device);
  r.absmax_offset_ = q.absmax_offset;
  return r;
}

torch::Tensor Nf4Weight::Dequantize(torch::ScalarType dtype) const {
  torch::NoGradGuard no_grad;
  // On CUDA in bf16, one fused kernel (bit-identical to the path below).
  if (dtype == torch::kBFloat16 && packed_.defined() && packed_.is_cuda() &&
      cuda_bridge::KernelsBuilt()) {
    const cuda_bridge::Nf4Tensors t{
        packed_,      absmax_codes_,  absmax_scales_,
        dynamic_map_, absmax_offset_, out_,
        in_};
    absl::StatusOr<torch::Tensor> w = cuda_bridge::Nf4DequantizeBf16(t);
    TORCH_CHECK(w.ok(), "NF4 dequantize: ", w.status().ToString());
    return *std::move(w);
  }
  const int64_t n = numel();
  const int64_t blocks = (n + nf4::kBlockSize - 1) / nf4::kBlockSize;
  if (packed_.is_cpu()) {
    torch::Tensor w = torch::empty({out_, in_}, torch::kFloat32);
    DequantizeOnCpu(w);
    return dtype == torch::kFloat32 ? w : w.to(dtype);
  }
  // Elsewhere (a device without the fused kernel), the same arithmetic in
  // tensor ops.
  torch::Tensor absmax =
      dynamic_map_.index_select(0, absmax_codes_.to(torch::kLong)) *
          absmax_scales_.repeat_interleave(nf4::kAbsmaxBlockSize)
              .slice(0, 0, blocks) +
      absmax_offset_;
  torch::Tensor values =
      pair_table_.index_select(0, packed_.to(torch::kLong)).view({-1});
  const int64_t padded = blocks * nf4::kBlockSize;
  if (values.size(0) < padded) {
    values = torch::constant_pad_nd(values, {0, padded - values.size(0)});
  } else if (values.size(0) > padded) {
    values = values.slice(0, 0, padded);
  }
  torch::Tensor w =
      (values.view({blocks, nf4::kBlockSize}) * absmax.unsqueeze(1))
          .view({-1})
          .slice(0, 0, n)
          .view({out_, in_});
  return w.to(dtype);
}

void Nf4Weight::DequantizeOnCpu(torch::Tensor& out) const {
  // One pass that writes each value once, blocks split over LibTorch's
  // intra-op threads.
  const int64_t n = numel();
  const int64_t blocks = (n + nf4::kBlockSize - 1) / nf4::kBlockSize;
  const nf4::DoubleQuantView view{
      n, packed_.data_ptr<uint8_t>(), absmax_codes_.data_ptr<uint8_t>(),
      absmax_scales_.data_ptr<float>(), absmax_offset_};
  float* values = out.data_ptr<float>();
  // About 64 KiB of output per task.
  at::parallel_for(0, blocks, 256, [&](int64_t begin, int64_t end) {
    nf4::DequantizeBlocks(view, begin, end, values);
  });
}

torch::Tensor Nf4Weight::DequantizeForMatMul(torch::ScalarType dtype) const {
  if (!UseThreadScratch(packed_.device(), torch::kFloat32, out_, in_)) {
    return Dequantize(dtype);
  }
  torch::NoGradGuard no_grad;
  torch::Tensor w =
      ThreadScratch(ScratchSlot::kValues, torch::kFloat32, out_, in_);
  DequantizeOnCpu(w);
  return CastInThreadScratch(w, dtype);
}

int64_t Nf4Weight::StorageBytes() const {
  return packed_.numel() + absmax_codes_.numel() + absmax_scales_.numel() * 4 +
         4;
}

torch::Tensor Nf4MatMul(const torch::Tensor& x, const Nf4Weight& w) {
  return Nf4MatMulFunction::apply(x, &w);
}

}  // namespace lorad::worker
