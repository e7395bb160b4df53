#include "lorad/worker/batched_lora.h"

#include <utility>

#include "lorad/model/block_linears.h"

namespace lorad::worker {
namespace {

class TorchBackend final : public BatchedLoraBackend {
 public:
  void AddDelta(const torch::Tensor& x, const std::vector<LoraGroup>& groups,
                torch::Tensor& y) const override {
    for (const LoraGroup& g : groups) {
      torch::Tensor xs = g.tokens.defined() ? x.index_select(0, g.tokens) : x;
      xs = xs.view({g.segments, g.segment_length, x.size(-1)});
      torch::Tensor d = torch::bmm(torch::bmm(xs, g.a_t), g.b_t) * g.scale;
      d = d.view({g.segments * g.segment_length, y.size(-1)});
      if (g.tokens.defined()) {
        y.index_add_(0, g.tokens, d);
      } else {
        y.add_(d);
      }
    }
  }
};

struct Pending {
  std::vector<int64_t> tokens;
  std::vector<torch::Tensor> a, b;
  std::vector<double> scales;
};

}  // namespace

const BatchedLoraBackend& TorchLoraBackend() {
  static const TorchBackend* backend = new TorchBackend();
  return *backend;
}

BatchedLora BuildBatchedLora(const std::vector<LoraSegment>& segments,
                             const model::ModelConfig& config,
                             torch::Device device, torch::ScalarType dtype) {
  BatchedLora out;
  int64_t total = 0;
  for (const LoraSegment& s : segments) total += s.length;
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    for (const model::BlockLinear& l : model::BlockLinears(config)) {
      const std::string key = model::BlockLinearKey(layer, l.path);
      std::map<std::pair<int64_t, int64_t>, Pending> by_shape;
      for (const LoraSegment& s : segments) {
        if (s.adapter == nullptr || s.length == 0) continue;
        const LoraWeights* w = s.adapter->Find(key);
        if (w == nullptr) continue;
        Pending& p = by_shape[{w->a.size(0), s.length}];
        for (int64_t t = 0; t < s.length; ++t) p.tokens.push_back(s.start + t);
        p.a.push_back(w->a);
        p.b.push_back(w->b);
        p.scales.push_back(s.adapter->scale());
      }
      if (by_shape.empty()) continue;
      std::vector<LoraGroup>& groups = out.modules[key];
      for (auto& [shape, p] : by_shape) {
        LoraGroup g;
        g.segments = static_cast<int64_t>(p.a.size());
        g.segment_length = shape.second;
        bool in_order = static_cast<int64_t>(p.tokens.size()) == total;
        for (size_t i = 0; in_order && i < p.tokens.size(); ++i) {
          in_order = p.tokens[i] == static_cast<int64_t>(i);
        }
        if (!in_order) {
          g.tokens = torch::tensor(p.tokens, torch::kLong).to(device);
        }
        g.a_t =
            torch::stack(p.a).transpose(1, 2).to(device, dtype).contiguous();
        g.b_t =
            torch::stack(p.b).transpose(1, 2).to(device, dtype).contiguous();
        g.scale = torch::tensor(p.scales, torch::kFloat64)
                      .view({g.segments, 1, 1})
                      .to(device, dtype);
        groups.push_back(std::move(g));
      }
    }
  }
  return out;
}

}  // namespace lorad::worker
