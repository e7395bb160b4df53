// The next-token loss of LlamaModel (llama_model.h): NextTokenNllOfLogits,
// and NextTokenNll, which for a large vocabulary never makes the logits: the
// head's matmul, soft-cap, log-softmax and their gradient run a chunk of
// rows at a time, so no more than a chunk of logits exists at once instead
// of tokens x vocab (of which autograd would keep several: the logits, their
// log-softmax, their gradients). The frozen head weight gets no gradient.
#include <algorithm>
#include <atomic>

#include "lorad/model/memory_estimate.h"
#include "lorad/model/training_data.h"
#include "lorad/worker/llama_model.h"

namespace lorad::worker {
namespace {

std::atomic<int64_t> g_logits_chunk_bytes{model::kLogitsChunkBytes};

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The capped logits of rows [n, H] in the weights' dtype, and (capped) the
// tanh they went through, for backward.
struct Logits {
  torch::Tensor z;     // [n, V] fp32, as the loss sees them
  torch::Tensor tanh;  // [n, V] in the weights' dtype; undefined: no cap
};

Logits ComputeLogits(const torch::Tensor& rows, const torch::Tensor& weight,
                     double softcap) {
  torch::Tensor y = torch::matmul(rows, weight.t());
  Logits out;
  if (softcap > 0) {
    out.tanh = torch::tanh(y / softcap);
    y = out.tanh * softcap;
  }
  out.z = y.to(torch::kFloat32);
  return out;
}

// Each row's loss depends on that row alone, so forward, which has each
// chunk's logits in hand, also makes the gradient of each row's loss with
// respect to its row, [M, H]; backward only scales the rows by the
// incoming gradient. Nothing is computed twice, and nothing of the size of
// the logits is kept.
class ChunkedHeadNllFunction
    : public torch::autograd::Function<ChunkedHeadNllFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor normed,
                               torch::Tensor weight, torch::Tensor targets,
                               double softcap, int64_t chunk_rows) {
    const int64_t m = normed.size(0);
    const bool grad = normed.requires_grad();
    torch::Tensor nll =
        torch::empty({m}, normed.options().dtype(torch::kFloat32));
    torch::Tensor row_grads =
        grad ? torch::empty_like(normed) : torch::Tensor();
    for (int64_t s = 0; s < m; s += chunk_rows) {
      const int64_t n = std::min(chunk_rows, m - s);
      Logits logits = ComputeLogits(normed.narrow(0, s, n), weight, softcap);
      const torch::Tensor lse = torch::logsumexp(logits.z, 1, true);
      const torch::Tensor target = targets.narrow(0, s, n).view({n, 1});
      nll.narrow(0, s, n).copy_((lse - logits.z.gather(1, target)).view({n}));
      if (!grad) continue;
      // d nll / d z = softmax(z) - onehot(target).
      torch::Tensor dz = logits.z.sub_(lse).exp_();
      dz.scatter_add_(1, target, torch::full({n, 1}, -1.0, dz.options()));
      torch::Tensor dy = dz.to(weight.scalar_type());
      // d(cap * tanh(y / cap)) / dy = 1 - tanh(y / cap)^2.
      if (softcap > 0) dy = dy * (1 - logits.tanh * logits.tanh);
      row_grads.narrow(0, s, n).copy_(torch::matmul(dy, weight));
    }
    ctx->save_for_backward({row_grads});
    return nll;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const torch::Tensor row_grads = ctx->get_saved_variables()[0];
    torch::Tensor d_normed =
        grads[0].defined()
            ? row_grads * grads[0].to(row_grads.scalar_type()).view({-1, 1})
            : torch::zeros_like(row_grads);
    return {d_normed, torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

void SetLogitsChunkBytes(int64_t bytes) {
  g_logits_chunk_bytes.store(std::max<int64_t>(0, bytes));
}

int64_t LogitsChunkBytes() { return g_logits_chunk_bytes.load(); }

torch::Tensor NextTokenNllOfLogits(const torch::Tensor& logits,
                                   const torch::Tensor& labels,
                                   at::Reduction::Reduction reduction) {
  const int64_t rows = logits.size(0), t = logits.size(1), v = logits.size(-1);
  torch::Tensor shifted = logits.slice(1, 0, -1).reshape({-1, v});
  torch::Tensor targets = labels.slice(1, 1).reshape({-1});
  torch::Tensor nll = torch::nn::functional::cross_entropy(
      shifted.to(torch::kFloat32), targets,
      torch::nn::functional::CrossEntropyFuncOptions()
          .ignore_index(model::kIgnoreLabel)
          .reduction(
              reduction == at::Reduction::Sum
                  ? torch::nn::functional::CrossEntropyFuncOptions::reduction_t(
                        torch::kSum)
                  : torch::nn::functional::CrossEntropyFuncOptions::reduction_t(
                        torch::kNone)));
  return reduction == at::Reduction::Sum ? nll : nll.view({rows, t - 1});
}

int64_t LlamaModel::LogitsChunkRows(int64_t tokens) const {
  return model::LogitsChunkRows(tokens, config_.vocab_size, LogitsChunkBytes());
}

torch::Tensor LlamaModel::NextTokenNll(
    const torch::Tensor& hidden, const torch::Tensor& labels,
    at::Reduction::Reduction reduction) const {
  const int64_t b = hidden.size(0), t = hidden.size(1);
  const int64_t chunk_rows = LogitsChunkRows(b * t);
  if (chunk_rows == 0) {
    return NextTokenNllOfLogits(Head(hidden), labels, reduction);
  }
  // Only the positions with a label go through the head.
  const torch::Tensor targets = labels.slice(1, 1).reshape({-1}).to(device_);
  const torch::Tensor kept = targets.ne(model::kIgnoreLabel).nonzero().view(-1);
  const torch::Tensor rows = hidden.slice(1, 0, -1)
                                 .reshape({-1, hidden.size(-1)})
                                 .index_select(0, kept);
  const torch::Tensor nll = ChunkedHeadNllFunction::apply(
      RmsNorm(rows, final_norm_), lm_head_, targets.index_select(0, kept),
      config_.final_logit_softcapping, chunk_rows);
  if (reduction == at::Reduction::Sum) return nll.sum();
  return torch::zeros({targets.size(0)}, nll.options())
      .index_add(0, kept, nll)
      .view({b, t - 1});
}

}  // namespace lorad::worker
