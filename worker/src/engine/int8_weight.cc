#include "lorad/worker/int8_weight.h"

#include <torch/torch.h>

#include <cmath>
#include <cstring>

#include "c10/util/Half.h"
#include "lorad/worker/thread_scratch.h"

namespace lorad::worker {
namespace {

constexpr float kInv127 = 1.0f / 127.0f;
// bitsandbytes rescales the int32 products by 6.200124e-05, 1.8e-5 above
// 1 / 127^2 (6.2000124e-05). Its constant, so that the outputs are its
// outputs: a random model's logits move by a tenth of the int8 error when
// only this constant changes.
constexpr float kProductScale = 6.200124e-05f;

// The int8 part of the decomposition for the rows of x2 [rows, in] (x's
// dtype) with the outlier entries and columns removed, in fp32 [rows, out].
// As bitsandbytes' int8_vectorwise_quant does: x is taken in fp16, its
// entries at |x| >= threshold are zeroed, each row is scaled by
// (1 / absmax) * 127 and rounded (ties to even), and the outlier columns
// are zeroed in every row.
torch::Tensor Int8Part(const torch::Tensor& x2, const torch::Tensor& cols,
                       const torch::Tensor& outliers, const Int8Weight& w) {
  torch::Tensor xh = x2.to(torch::kHalf);
  if (outliers.defined()) xh = xh.masked_fill(outliers, 0);
  torch::Tensor row_absmax = xh.abs().amax(1).to(torch::kFloat32);
  // A row of zeros (or of outliers only) contributes nothing; its scale is
  // 0 rather than the inf that 1 / 0 would give.
  torch::Tensor scale =
      torch::where(row_absmax > 0, torch::reciprocal(row_absmax) * 127.0f,
                   torch::zeros_like(row_absmax));
  torch::Tensor ca = torch::round(xh.to(torch::kFloat32) * scale.unsqueeze(1));
  if (cols.numel() > 0) ca.index_fill_(1, cols, 0.0f);
  // Integer products of int8 values summed in fp32: exact while a row's
  // partial sums stay below 2^24.
  torch::Tensor cb = w.cb();
  if (UseThreadScratch(cb.device(), torch::kFloat32, w.out_features(),
                       w.in_features())) {
    cb = ThreadScratch(ScratchSlot::kValues, torch::kFloat32, w.out_features(),
                       w.in_features())
             .copy_(w.cb());
  } else {
    cb = cb.to(torch::kFloat32);
  }
  torch::Tensor acc = torch::matmul(ca, cb.t());
  return acc * (row_absmax.unsqueeze(1) * w.scb().unsqueeze(0)) * kProductScale;
}

class Int8MatMulFunction
    : public torch::autograd::Function<Int8MatMulFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx,
                               torch::Tensor x, const Int8Weight* w,
                               double threshold) {
    ctx->saved_data["w"] = reinterpret_cast<int64_t>(w);
    const int64_t in = w->in_features();
    TORCH_CHECK(x.size(-1) == in, "Int8MatMul: input has ", x.size(-1),
                " features, the weight ", in);
    std::vector<int64_t> out_shape(x.sizes().begin(), x.sizes().end());
    out_shape.back() = w->out_features();
    torch::Tensor x2 = x.reshape({-1, in});
    torch::Tensor cols, outliers;
    if (threshold > 0.0 && x2.size(0) > 0) {
      outliers = x2.to(torch::kHalf).abs() >= threshold;
      cols = outliers.any(0).nonzero().view({-1});
    } else {
      cols = torch::empty({0}, x.options().dtype(torch::kLong));
    }
    torch::Tensor y = Int8Part(x2, cols, outliers, *w).to(x.scalar_type());
    if (cols.numel() > 0) {
      // The outlier columns in x's own dtype against the dequantized
      // weight columns.
      torch::Tensor sub_w = (w->cb().index_select(1, cols).to(torch::kFloat32) *
                             w->scb().unsqueeze(1) * kInv127)
                                .to(x.scalar_type());
      y = y.addmm(x2.index_select(1, cols), sub_w.t());
    }
    return y.view(out_shape);
  }

  static torch::autograd::variable_list backward(
      torch::autograd::AutogradContext* ctx,
      torch::autograd::variable_list grad_out) {
    const auto* w =
        reinterpret_cast<const Int8Weight*>(ctx->saved_data["w"].toInt());
    torch::Tensor g = grad_out[0];
    return {torch::matmul(g, w->DequantizeForMatMul(g.scalar_type())),
            torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

Int8Weight Int8Weight::Quantize(const float* w, int64_t out_features,
                                int64_t in_features, torch::Device device) {
  Int8Weight r;
  r.out_ = out_features;
  r.in_ = in_features;
  torch::Tensor cb = torch::empty({out_features, in_features}, torch::kInt8);
  torch::Tensor scb = torch::empty({out_features}, torch::kFloat32);
  int8_t* q = cb.data_ptr<int8_t>();
  float* s = scb.data_ptr<float>();
  at::parallel_for(0, out_features, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> row(in_features);
    for (int64_t i = begin; i < end; ++i) {
      // Int8Params quantizes the weight in fp16.
      float absmax = 0.0f;
      for (int64_t j = 0; j < in_features; ++j) {
        row[j] = static_cast<float>(c10::Half(w[i * in_features + j]));
        absmax = std::max(absmax, std::fabs(row[j]));
      }
      s[i] = absmax;
      int8_t* out = q + i * in_features;
      if (absmax == 0.0f) {
        std::memset(out, 0, in_features);
        continue;
      }
      // (1 / absmax) * 127, as torch evaluates `127.0 / tensor`.
      const float scale = (1.0f / absmax) * 127.0f;
      for (int64_t j = 0; j < in_features; ++j) {
        out[j] = static_cast<int8_t>(std::nearbyint(row[j] * scale));
      }
    }
  });
  r.cb_ = device.is_cpu() ? cb : cb.to(device);
  r.scb_ = device.is_cpu() ? scb : scb.to(device);
  return r;
}

torch::Tensor Int8Weight::Dequantize(torch::ScalarType dtype) const {
  torch::NoGradGuard no_grad;
  return (cb_.to(torch::kFloat32) * scb_.unsqueeze(1) * kInv127).to(dtype);
}

torch::Tensor Int8Weight::DequantizeForMatMul(torch::ScalarType dtype) const {
  if (!UseThreadScratch(cb_.device(), torch::kFloat32, out_, in_)) {
    return Dequantize(dtype);
  }
  torch::NoGradGuard no_grad;
  // The same arithmetic as Dequantize: CB in fp32 times SCB, times 1/127.
  torch::Tensor w =
      ThreadScratch(ScratchSlot::kValues, torch::kFloat32, out_, in_);
  at::mul_out(w, cb_, scb_.unsqueeze(1));
  w.mul_(kInv127);
  return CastInThreadScratch(w, dtype);
}

torch::Tensor Int8MatMul(const torch::Tensor& x, const Int8Weight& w,
                         float threshold) {
  return Int8MatMulFunction::apply(x, &w, static_cast<double>(threshold));
}

}  // namespace lorad::worker
