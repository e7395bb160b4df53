// Argument checks and the CPU path (the kernels' references) of
// lorad::cuda_bridge; the device path is in device_cuda.cc / device_none.cc.
#include "lorad/cuda_bridge/kernels.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "device_ops.h"
#include "kernels/bf16.h"
#include "kernels/lora_ref.h"
#include "kernels/nf4_gemv_ref.h"
#include "kernels/nf4_ref.h"
#include "kernels/rmsnorm_ref.h"

namespace lorad::cuda_bridge {
namespace {

std::string Describe(const at::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::string dims;
  for (int64_t d : t.sizes()) {
    absl::StrAppend(&dims, dims.empty() ? "" : ", ", d);
  }
  return absl::StrCat(std::string(c10::toString(t.scalar_type())), " [", dims,
                      "] on ", t.device().str());
}

absl::Status Check(bool ok, const char* op, const std::string& what) {
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(op, ": ", what));
}

#define BRIDGE_CHECK(cond, op, ...)                                   \
  do {                                                                \
    absl::Status s_ = Check((cond), (op), absl::StrCat(__VA_ARGS__)); \
    if (!s_.ok()) return s_;                                          \
  } while (0)

// t must be defined, of `dtype`, with `numel` elements (-1: any), on
// `device`.
absl::Status CheckTensor(const char* op, const char* name, const at::Tensor& t,
                         at::ScalarType dtype, int64_t numel,
                         const at::Device& device) {
  BRIDGE_CHECK(t.defined(), op, name, " is undefined");
  BRIDGE_CHECK(t.scalar_type() == dtype, op, name, " must be ",
               std::string(c10::toString(dtype)), ", got ", Describe(t));
  BRIDGE_CHECK(numel < 0 || t.numel() == numel, op, name, " must have ", numel,
               " elements, got ", Describe(t));
  BRIDGE_CHECK(t.device() == device, op, name, " must be on ", device.str(),
               " like the other arguments, got ", Describe(t));
  BRIDGE_CHECK(device.is_cpu() || device.is_cuda(), op, name,
               " must be on CPU or CUDA, got ", Describe(t));
  return absl::OkStatus();
}

absl::Status CheckNf4(const char* op, const Nf4Tensors& w) {
  BRIDGE_CHECK(w.packed.defined(), op, "packed is undefined");
  BRIDGE_CHECK(w.rows > 0 && w.cols > 0, op,
               "rows and cols must be positive, got [", w.rows, ", ", w.cols,
               "]");
  const at::Device dev = w.packed.device();
  const int64_t n = w.rows * w.cols;
  const int64_t blocks = (n + nf4::kBlockSize - 1) / nf4::kBlockSize;
  absl::Status s =
      CheckTensor(op, "packed", w.packed, at::kByte, (n + 1) / 2, dev);
  if (s.ok())
    s = CheckTensor(op, "absmax_codes", w.absmax_codes, at::kByte, blocks, dev);
  if (s.ok()) {
    s = CheckTensor(
        op, "absmax_scales", w.absmax_scales, at::kFloat,
        (blocks + nf4::kAbsmaxBlockSize - 1) / nf4::kAbsmaxBlockSize, dev);
  }
  if (s.ok())
    s = CheckTensor(op, "dynamic_map", w.dynamic_map, at::kFloat, 256, dev);
  if (s.ok()) {
    BRIDGE_CHECK(w.packed.is_contiguous() && w.absmax_codes.is_contiguous() &&
                     w.absmax_scales.is_contiguous() &&
                     w.dynamic_map.is_contiguous(),
                 op, "the NF4 tensors must be contiguous");
  }
  return s;
}

// The NF4 state as the reference's host struct (CPU tensors only).
nf4::QuantizedTensor HostCopy(const Nf4Tensors& w) {
  nf4::QuantizedTensor q;
  q.numel = w.rows * w.cols;
  q.double_quant = true;
  const auto* p = w.packed.data_ptr<uint8_t>();
  q.packed.assign(p, p + w.packed.numel());
  const auto* c = w.absmax_codes.data_ptr<uint8_t>();
  q.absmax_codes.assign(c, c + w.absmax_codes.numel());
  const auto* s = w.absmax_scales.data_ptr<float>();
  q.absmax_scales.assign(s, s + w.absmax_scales.numel());
  q.absmax_offset = w.absmax_offset;
  return q;
}

const uint16_t* Bits(const at::Tensor& t) {
  return reinterpret_cast<const uint16_t*>(t.data_ptr());
}
uint16_t* MutableBits(at::Tensor& t) {
  return reinterpret_cast<uint16_t*>(t.data_ptr());
}

// Runs `body`, turning a LibTorch exception into a Status.
template <typename F>
auto Guarded(const char* op, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const c10::OutOfMemoryError& e) {
    return absl::ResourceExhaustedError(
        absl::StrCat(op, ": ", e.what_without_backtrace()));
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat(op, ": ", e.what_without_backtrace()));
  }
}

absl::Status CheckLora(const char* op, const at::Tensor& y, const at::Tensor& x,
                       const std::vector<LoraTensors>& adapters) {
  BRIDGE_CHECK(x.defined() && x.dim() == 2, op, "x must be 2-D [n, in], got ",
               Describe(x));
  BRIDGE_CHECK(y.defined() && y.dim() == 2 && y.size(0) == x.size(0), op,
               "y must be [n, out] with n = ", x.size(0), ", got ",
               Describe(y));
  const at::Device dev = x.device();
  absl::Status s = CheckTensor(op, "x", x, at::kBFloat16, -1, dev);
  if (s.ok()) s = CheckTensor(op, "y", y, at::kBFloat16, -1, dev);
  if (!s.ok()) return s;
  BRIDGE_CHECK(y.is_contiguous(), op,
               "y must be contiguous (it is updated in place)");
  BRIDGE_CHECK(adapters.size() <= 0x7fffffff, op, "too many adapters");
  for (size_t i = 0; i < adapters.size(); ++i) {
    const LoraTensors& ad = adapters[i];
    const std::string a_name = absl::StrCat("adapters[", i, "].a");
    const std::string b_name = absl::StrCat("adapters[", i, "].b");
    s = CheckTensor(op, a_name.c_str(), ad.a, at::kBFloat16, -1, dev);
    if (s.ok())
      s = CheckTensor(op, b_name.c_str(), ad.b, at::kBFloat16, -1, dev);
    if (!s.ok()) return s;
    BRIDGE_CHECK(ad.a.dim() == 2 && ad.a.size(1) == x.size(1) &&
                     ad.a.size(0) >= 1 && ad.a.size(0) <= kernels::kMaxLoraRank,
                 op, a_name, " must be [rank, ", x.size(1), "] with rank 1..",
                 kernels::kMaxLoraRank, ", got ", Describe(ad.a));
    BRIDGE_CHECK(ad.b.dim() == 2 && ad.b.size(0) == y.size(1) &&
                     ad.b.size(1) == ad.a.size(0),
                 op, b_name, " must be [", y.size(1), ", ", ad.a.size(0),
                 "], got ", Describe(ad.b));
    BRIDGE_CHECK(ad.a.is_contiguous() && ad.b.is_contiguous(), op, a_name,
                 " and ", b_name, " must be contiguous");
  }
  return absl::OkStatus();
}

std::vector<kernels::LoraAdapterRef> HostAdapters(
    const std::vector<LoraTensors>& adapters) {
  std::vector<kernels::LoraAdapterRef> v;
  for (const LoraTensors& ad : adapters) {
    v.push_back(
        {Bits(ad.a), Bits(ad.b), static_cast<int32_t>(ad.a.size(0)), ad.scale});
  }
  return v;
}

}  // namespace

bool KernelsBuilt() { return device::Built(); }
bool DeviceAvailable() { return device::Built() && device::Available(); }

absl::StatusOr<at::Tensor> Nf4DequantizeBf16(const Nf4Tensors& w) {
  constexpr const char* kOp = "Nf4DequantizeBf16";
  if (absl::Status s = CheckNf4(kOp, w); !s.ok()) return s;
  return Guarded(kOp, [&]() -> absl::StatusOr<at::Tensor> {
    at::Tensor out =
        at::empty({w.rows, w.cols}, w.packed.options().dtype(at::kBFloat16));
    if (w.packed.is_cpu()) {
      std::vector<float> f(static_cast<size_t>(w.rows * w.cols));
      nf4::Dequantize(HostCopy(w), f.data());
      uint16_t* o = MutableBits(out);
      for (size_t i = 0; i < f.size(); ++i)
        o[i] = kernels::FloatToBf16Bits(f[i]);
      return out;
    }
    if (absl::Status s = device::Nf4Dequantize(w, out); !s.ok()) return s;
    return out;
  });
}

absl::StatusOr<at::Tensor> Nf4Gemv(const at::Tensor& x, const Nf4Tensors& w) {
  constexpr const char* kOp = "Nf4Gemv";
  if (absl::Status s = CheckNf4(kOp, w); !s.ok()) return s;
  if (absl::Status s =
          CheckTensor(kOp, "x", x, at::kBFloat16, -1, w.packed.device());
      !s.ok()) {
    return s;
  }
  BRIDGE_CHECK(
      x.dim() == 2 && x.size(1) == w.cols && x.size(0) >= 1 && x.size(0) <= 16,
      kOp, "x must be [m, ", w.cols, "] with m 1..16, got ", Describe(x));
  return Guarded(kOp, [&]() -> absl::StatusOr<at::Tensor> {
    const at::Tensor xc = x.contiguous();
    at::Tensor y = at::empty({x.size(0), w.rows}, x.options());
    if (x.is_cpu()) {
      const nf4::QuantizedTensor q = HostCopy(w);
      const kernels::Nf4MatrixView view{q.packed.data(), q.absmax_codes.data(),
                                        q.absmax_scales.data(),
                                        q.absmax_offset};
      std::vector<float> f(static_cast<size_t>(y.numel()));
      kernels::Nf4GemvRef(view, w.rows, w.cols, Bits(xc), x.size(0), f.data());
      uint16_t* o = MutableBits(y);
      for (size_t i = 0; i < f.size(); ++i)
        o[i] = kernels::FloatToBf16Bits(f[i]);
      return y;
    }
    if (absl::Status s = device::Nf4Gemv(xc, w, y); !s.ok()) return s;
    return y;
  });
}

absl::Status LoraBgmv(at::Tensor& y, const at::Tensor& x,
                      const std::vector<LoraTensors>& adapters,
                      const at::Tensor& idx) {
  constexpr const char* kOp = "LoraBgmv";
  if (absl::Status s = CheckLora(kOp, y, x, adapters); !s.ok()) return s;
  BRIDGE_CHECK(idx.defined() && idx.scalar_type() == at::kInt &&
                   idx.dim() == 1 && idx.size(0) == x.size(0),
               kOp, "idx must be int32 [", x.size(0), "], got ", Describe(idx));
  return Guarded(kOp, [&]() -> absl::Status {
    const at::Tensor xc = x.contiguous();
    const at::Tensor ic = idx.contiguous();
    if (x.is_cpu()) {
      const at::Tensor host_idx = ic.cpu();
      const auto views = HostAdapters(adapters);
      kernels::BgmvRef(Bits(xc), x.size(0), x.size(1), y.size(1), views.data(),
                       static_cast<int32_t>(views.size()),
                       host_idx.data_ptr<int32_t>(), MutableBits(y));
      return absl::OkStatus();
    }
    return device::Bgmv(y, xc, adapters, ic);
  });
}

absl::Status LoraSgmv(at::Tensor& y, const at::Tensor& x,
                      const std::vector<LoraTensors>& adapters,
                      const std::vector<int32_t>& seg_starts,
                      const std::vector<int32_t>& seg_adapters) {
  constexpr const char* kOp = "LoraSgmv";
  if (absl::Status s = CheckLora(kOp, y, x, adapters); !s.ok()) return s;
  BRIDGE_CHECK(seg_starts.size() == seg_adapters.size() + 1, kOp,
               "seg_starts must have one more entry than seg_adapters (",
               seg_adapters.size() + 1, "), got ", seg_starts.size());
  for (size_t s = 0; s < seg_starts.size(); ++s) {
    BRIDGE_CHECK(seg_starts[s] >= 0 && seg_starts[s] <= x.size(0) &&
                     (s == 0 || seg_starts[s] >= seg_starts[s - 1]),
                 kOp, "seg_starts[", s, "] = ", seg_starts[s],
                 " must be non-decreasing within [0, ", x.size(0), "]");
  }
  return Guarded(kOp, [&]() -> absl::Status {
    const at::Tensor xc = x.contiguous();
    if (x.is_cpu()) {
      const auto views = HostAdapters(adapters);
      kernels::SgmvRef(Bits(xc), x.size(1), y.size(1), views.data(),
                       static_cast<int32_t>(views.size()), seg_starts.data(),
                       seg_adapters.data(),
                       static_cast<int64_t>(seg_adapters.size()),
                       MutableBits(y));
      return absl::OkStatus();
    }
    return device::Sgmv(y, xc, adapters, seg_starts, seg_adapters);
  });
}

absl::StatusOr<at::Tensor> RmsNorm(const at::Tensor& x,
                                   const at::Tensor& weight, double eps) {
  constexpr const char* kOp = "RmsNorm";
  BRIDGE_CHECK(x.defined() && x.dim() >= 1 && x.size(-1) >= 1, kOp,
               "x must be [..., hidden], got ", Describe(x));
  if (absl::Status s = CheckTensor(kOp, "x", x, at::kBFloat16, -1, x.device());
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckTensor(kOp, "weight", weight, at::kBFloat16,
                                   x.size(-1), x.device());
      !s.ok()) {
    return s;
  }
  BRIDGE_CHECK(eps >= 0.0, kOp, "eps must be >= 0, got ", eps);
  return Guarded(kOp, [&]() -> absl::StatusOr<at::Tensor> {
    const at::Tensor xc = x.contiguous();
    const at::Tensor wc = weight.contiguous();
    at::Tensor y = at::empty_like(xc);
    const int64_t hidden = x.size(-1);
    if (x.is_cpu()) {
      kernels::RmsNormRef(Bits(xc), Bits(wc), xc.numel() / hidden, hidden,
                          static_cast<float>(eps), MutableBits(y), nullptr);
      return y;
    }
    if (absl::Status s = device::RmsNorm(xc, wc, static_cast<float>(eps), y);
        !s.ok()) {
      return s;
    }
    return y;
  });
}

}  // namespace lorad::cuda_bridge
