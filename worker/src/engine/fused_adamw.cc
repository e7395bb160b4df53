#include "lorad/worker/fused_adamw.h"

#include <map>
#include <memory>
#include <tuple>
#include <utility>

namespace lorad::worker {
namespace {

// The tensors of one fused call: all on one device, of one dtype, at one
// step count (the kernel reads each tensor's step; the same scalar serves
// them all).
struct Bucket {
  std::vector<torch::Tensor> params, grads, exp_avgs, exp_avg_sqs,
      max_exp_avg_sqs;
};

}  // namespace

FusedAdamW::FusedAdamW(const std::vector<torch::Tensor>& params,
                       const torch::optim::AdamWOptions& options)
    : torch::optim::AdamW(params, options) {}

torch::Tensor FusedAdamW::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode enable(true);
    loss = closure();
  }
  for (auto& group : param_groups()) {
    const auto& o =
        static_cast<const torch::optim::AdamWOptions&>(group.options());
    using Key = std::tuple<std::string, c10::ScalarType, int64_t>;
    std::map<Key, Bucket> buckets;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      TORCH_CHECK(!p.grad().is_sparse(),
                  "AdamW does not support sparse gradients");
      auto it = state_.find(p.unsafeGetTensorImpl());
      if (it == state_.end()) {
        auto st = std::make_unique<torch::optim::AdamWParamState>();
        st->step(0);
        st->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        st->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        if (o.amsgrad()) {
          st->max_exp_avg_sq(
              torch::zeros_like(p, torch::MemoryFormat::Preserve));
        }
        it = state_.emplace(p.unsafeGetTensorImpl(), std::move(st)).first;
      }
      auto& st = static_cast<torch::optim::AdamWParamState&>(*it->second);
      st.step(st.step() + 1);
      // State loaded from a checkpoint on the CPU follows its parameter.
      if (st.exp_avg().device() != p.device()) {
        st.exp_avg(st.exp_avg().to(p.device()));
        st.exp_avg_sq(st.exp_avg_sq().to(p.device()));
        if (st.max_exp_avg_sq().defined()) {
          st.max_exp_avg_sq(st.max_exp_avg_sq().to(p.device()));
        }
      }
      Bucket& b = buckets[{p.device().str(), p.scalar_type(), st.step()}];
      b.params.push_back(p);
      b.grads.push_back(p.grad().contiguous());
      b.exp_avgs.push_back(st.exp_avg());
      b.exp_avg_sqs.push_back(st.exp_avg_sq());
      if (o.amsgrad()) b.max_exp_avg_sqs.push_back(st.max_exp_avg_sq());
    }
    for (auto& [key, b] : buckets) {
      torch::Tensor step =
          torch::full({}, static_cast<double>(std::get<2>(key)),
                      torch::TensorOptions()
                          .dtype(torch::kFloat32)
                          .device(b.params[0].device()));
      std::vector<torch::Tensor> steps(b.params.size(), step);
      at::_fused_adamw_(b.params, b.grads, b.exp_avgs, b.exp_avg_sqs,
                        b.max_exp_avg_sqs, steps, o.lr(),
                        std::get<0>(o.betas()), std::get<1>(o.betas()),
                        o.weight_decay(), o.eps(), o.amsgrad(),
                        /*maximize=*/false);
    }
  }
  return loss;
}

}  // namespace lorad::worker
