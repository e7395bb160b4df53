#include "lorad/worker/paged_optimizer.h"

#include <functional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lorad/common/status_macros.h"
#include "lorad/cuda_bridge/managed_memory.h"
#include "lorad/worker/adamw8bit.h"

namespace lorad::worker {
namespace {

using Slot = std::function<void(const torch::Tensor&)>;
struct StateTensor {
  torch::Tensor value;
  Slot set;
};

// The defined state tensors of one parameter's state, with setters.
std::vector<StateTensor> TensorsOf(torch::optim::OptimizerParamState& base) {
  std::vector<StateTensor> out;
  auto add = [&out](const torch::Tensor& t, Slot set) {
    if (t.defined()) out.push_back({t, std::move(set)});
  };
  if (auto* s = dynamic_cast<torch::optim::AdamWParamState*>(&base)) {
    add(s->exp_avg(), [s](const torch::Tensor& t) { s->exp_avg(t); });
    add(s->exp_avg_sq(), [s](const torch::Tensor& t) { s->exp_avg_sq(t); });
    add(s->max_exp_avg_sq(),
        [s](const torch::Tensor& t) { s->max_exp_avg_sq(t); });
  } else if (auto* s = dynamic_cast<AdamW8bitParamState*>(&base)) {
    add(s->state1(), [s](const torch::Tensor& t) { s->state1(t); });
    add(s->state2(), [s](const torch::Tensor& t) { s->state2(t); });
    add(s->absmax1(), [s](const torch::Tensor& t) { s->absmax1(t); });
    add(s->absmax2(), [s](const torch::Tensor& t) { s->absmax2(t); });
    add(s->exp_avg(), [s](const torch::Tensor& t) { s->exp_avg(t); });
    add(s->exp_avg_sq(), [s](const torch::Tensor& t) { s->exp_avg_sq(t); });
  }
  return out;
}

// Zero AdamW state for parameters without any, as torch's first step
// makes it (amsgrad's maximum too when asked for).
void CreateAdamWState(torch::optim::AdamW& adamw) {
  for (auto& group : adamw.param_groups()) {
    const auto& o =
        static_cast<const torch::optim::AdamWOptions&>(group.options());
    for (auto& p : group.params()) {
      if (adamw.state().count(p.unsafeGetTensorImpl()) != 0) continue;
      auto st = std::make_unique<torch::optim::AdamWParamState>();
      st->step(0);
      st->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
      st->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
      if (o.amsgrad()) {
        st->max_exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
      }
      adamw.state()[p.unsafeGetTensorImpl()] = std::move(st);
    }
  }
}

}  // namespace

absl::StatusOr<PagedState> PageOptimizerState(
    torch::optim::Optimizer& optimizer) {
  if (auto* adamw = dynamic_cast<torch::optim::AdamW*>(&optimizer)) {
    CreateAdamWState(*adamw);
  } else if (auto* eight = dynamic_cast<AdamW8bit*>(&optimizer)) {
    eight->CreateState();
  } else {
    return absl::InvalidArgumentError(
        "paged optimizer state: only AdamW and AdamW8bit can be paged");
  }
  PagedState out;
  bool any_cuda = false;
  for (auto& group : optimizer.param_groups()) {
    for (auto& p : group.params()) {
      auto it = optimizer.state().find(p.unsafeGetTensorImpl());
      if (it == optimizer.state().end()) continue;
      for (StateTensor& s : TensorsOf(*it->second)) {
        const int64_t bytes = s.value.numel() * s.value.element_size();
        out.bytes += bytes;
        ++out.tensors;
        if (!p.is_cuda()) continue;
        any_cuda = true;
        if (!cuda_bridge::IsManaged(s.value)) {
          LORAD_ASSIGN_OR_RETURN(
              torch::Tensor managed,
              cuda_bridge::ManagedCopy(s.value, p.device().index()));
          s.set(managed);
        }
        out.paged_bytes += bytes;
      }
    }
  }
  out.note = any_cuda
                 ? absl::StrCat(
                       "paged optimizer: ", out.paged_bytes,
                       " bytes of state in CUDA managed memory (", out.tensors,
                       " tensors); under device-memory pressure it moves "
                       "to host memory")
                 : absl::StrCat("paged optimizer: the ", out.bytes,
                                " bytes of state are in host memory already on "
                                "the CPU; paging is a no-op here");
  return out;
}

}  // namespace lorad::worker
