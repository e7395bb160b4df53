// The bridge's device path: the kernels/ launchers on the current CUDA
// stream of the tensors' device.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "device_ops.h"
#include "kernels/bgmv.cuh"
#include "kernels/nf4_dequantize.cuh"
#include "kernels/nf4_gemv.cuh"
#include "kernels/rmsnorm.cuh"
#include "kernels/sgmv.cuh"

namespace lorad::cuda_bridge::device {
namespace {

absl::Status Launched(cudaError_t err, const char* op) {
  if (err == cudaSuccess) return absl::OkStatus();
  const std::string msg = std::string(op) + ": " + cudaGetErrorString(err);
  return err == cudaErrorMemoryAllocation ? absl::ResourceExhaustedError(msg)
                                          : absl::InternalError(msg);
}

cudaStream_t Stream(const at::Tensor& t) {
  return c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
}

const __nv_bfloat16* Bf16(const at::Tensor& t) {
  return reinterpret_cast<const __nv_bfloat16*>(t.data_ptr());
}

__nv_bfloat16* MutableBf16(at::Tensor& t) {
  return reinterpret_cast<__nv_bfloat16*>(t.data_ptr());
}

// The per-adapter arrays the LoRA launchers read, on x's device.
struct AdapterArrays {
  at::Tensor a_ptrs, b_ptrs, ranks, scales;
};

AdapterArrays MakeArrays(const std::vector<LoraTensors>& adapters,
                         const at::Device& device) {
  const int64_t count = static_cast<int64_t>(adapters.size());
  at::Tensor a = at::empty({count}, at::kLong);
  at::Tensor b = at::empty({count}, at::kLong);
  at::Tensor r = at::empty({count}, at::kInt);
  at::Tensor s = at::empty({count}, at::kFloat);
  for (int64_t i = 0; i < count; ++i) {
    a.data_ptr<int64_t>()[i] =
        reinterpret_cast<int64_t>(adapters[i].a.data_ptr());
    b.data_ptr<int64_t>()[i] =
        reinterpret_cast<int64_t>(adapters[i].b.data_ptr());
    r.data_ptr<int32_t>()[i] = static_cast<int32_t>(adapters[i].a.size(0));
    s.data_ptr<float>()[i] = adapters[i].scale;
  }
  return {a.to(device), b.to(device), r.to(device), s.to(device)};
}

const __nv_bfloat16* const* Ptrs(const at::Tensor& t) {
  return reinterpret_cast<const __nv_bfloat16* const*>(t.data_ptr());
}

}  // namespace

bool Built() { return true; }

bool Available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

absl::Status Nf4Dequantize(const Nf4Tensors& w, at::Tensor& out) {
  const c10::cuda::CUDAGuard guard(w.packed.device());
  return Launched(
      kernels::Nf4DequantizeBf16(
          w.packed.data_ptr<uint8_t>(), w.absmax_codes.data_ptr<uint8_t>(),
          w.absmax_scales.data_ptr<float>(), w.absmax_offset,
          w.dynamic_map.data_ptr<float>(), w.rows * w.cols, MutableBf16(out),
          Stream(out)),
      "Nf4DequantizeBf16");
}

absl::Status Nf4Gemv(const at::Tensor& x, const Nf4Tensors& w, at::Tensor& y) {
  const c10::cuda::CUDAGuard guard(x.device());
  return Launched(
      kernels::Nf4GemvBf16(w.packed.data_ptr<uint8_t>(),
                           w.absmax_codes.data_ptr<uint8_t>(),
                           w.absmax_scales.data_ptr<float>(), w.absmax_offset,
                           w.dynamic_map.data_ptr<float>(), Bf16(x), x.size(0),
                           w.cols, w.rows, MutableBf16(y), Stream(x)),
      "Nf4Gemv");
}

absl::Status Bgmv(at::Tensor& y, const at::Tensor& x,
                  const std::vector<LoraTensors>& adapters,
                  const at::Tensor& idx) {
  const c10::cuda::CUDAGuard guard(x.device());
  const AdapterArrays arr = MakeArrays(adapters, x.device());
  const at::Tensor d_idx = idx.to(x.device());
  const int64_t n = x.size(0);
  at::Tensor ws = at::empty({kernels::LoraWorkspaceFloats(n)},
                            x.options().dtype(at::kFloat));
  return Launched(
      kernels::LoraBgmvBf16(
          Bf16(x), n, x.size(1), y.size(1), Ptrs(arr.a_ptrs), Ptrs(arr.b_ptrs),
          arr.ranks.data_ptr<int32_t>(), arr.scales.data_ptr<float>(),
          static_cast<int32_t>(adapters.size()), d_idx.data_ptr<int32_t>(),
          ws.data_ptr<float>(), MutableBf16(y), Stream(x)),
      "LoraBgmv");
}

absl::Status Sgmv(at::Tensor& y, const at::Tensor& x,
                  const std::vector<LoraTensors>& adapters,
                  const std::vector<int32_t>& seg_starts,
                  const std::vector<int32_t>& seg_adapters) {
  const c10::cuda::CUDAGuard guard(x.device());
  const AdapterArrays arr = MakeArrays(adapters, x.device());
  const at::Tensor starts =
      at::tensor(at::ArrayRef<int32_t>(seg_starts), at::kInt).to(x.device());
  const at::Tensor segs =
      at::tensor(at::ArrayRef<int32_t>(seg_adapters), at::kInt).to(x.device());
  const int64_t n = x.size(0);
  at::Tensor ws = at::empty({kernels::LoraWorkspaceFloats(n)},
                            x.options().dtype(at::kFloat));
  return Launched(
      kernels::LoraSgmvBf16(
          Bf16(x), n, x.size(1), y.size(1), Ptrs(arr.a_ptrs), Ptrs(arr.b_ptrs),
          arr.ranks.data_ptr<int32_t>(), arr.scales.data_ptr<float>(),
          static_cast<int32_t>(adapters.size()), starts.data_ptr<int32_t>(),
          segs.data_ptr<int32_t>(), static_cast<int64_t>(seg_adapters.size()),
          ws.data_ptr<float>(), MutableBf16(y), Stream(x)),
      "LoraSgmv");
}

absl::Status RmsNorm(const at::Tensor& x, const at::Tensor& w, float eps,
                     at::Tensor& y) {
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t hidden = x.size(-1);
  return Launched(
      kernels::RmsNormBf16(Bf16(x), Bf16(w), x.numel() / hidden, hidden, eps,
                           MutableBf16(y), nullptr, Stream(x)),
      "RmsNorm");
}

absl::StatusOr<at::Tensor> ManagedCopy(const at::Tensor& src,
                                       int device_index) {
  const c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device_index));
  const size_t bytes = static_cast<size_t>(src.numel()) * src.element_size();
  void* data = nullptr;
  cudaError_t err =
      cudaMallocManaged(&data, bytes == 0 ? 1 : bytes, cudaMemAttachGlobal);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky-free error state
    return Launched(err, "cudaMallocManaged");
  }
  at::Tensor out = at::from_blob(
      data, src.sizes(), [](void* p) { (void)cudaFree(p); },
      at::TensorOptions()
          .dtype(src.dtype())
          .device(at::Device(at::kCUDA,
                             static_cast<c10::DeviceIndex>(device_index))));
  out.copy_(src);
  return out;
}

bool IsManaged(const at::Tensor& t) {
  if (!t.defined() || !t.is_cuda() || t.data_ptr() == nullptr) return false;
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, t.data_ptr()) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return attributes.type == cudaMemoryTypeManaged;
}

int DeviceCount() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

}  // namespace lorad::cuda_bridge::device
