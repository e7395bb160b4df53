#include "lorad/worker/checkpointing.h"

#include <mutex>
#include <utility>
#include <vector>

namespace lorad::worker {
namespace {

// The generators a block's LoRA dropout draws from: the adapter's, or each
// row segment's (undefined: the device's default one), each once.
std::vector<at::Generator> DropoutGenerators(
    const torch::Device& device, const at::Generator& generator,
    const std::vector<AdapterRows>* row_adapters) {
  std::vector<at::Generator> out;
  auto add = [&](at::Generator g) {
    if (!g.defined()) g = at::globalContext().defaultGenerator(device);
    for (const at::Generator& o : out) {
      if (o.unsafeGetGeneratorImpl() == g.unsafeGetGeneratorImpl()) return;
    }
    out.push_back(std::move(g));
  };
  if (row_adapters != nullptr) {
    for (const AdapterRows& r : *row_adapters) add(r.generator);
  } else {
    add(generator);
  }
  return out;
}

// Everything the recompute needs travels in the autograd context's saved
// data, so nothing outside the graph has to outlive backward.
class CheckpointFunction
    : public torch::autograd::Function<CheckpointFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx,
                               torch::Tensor hidden, at::TensorList params,
                               torch::Tensor cos, torch::Tensor sin,
                               const LlamaModel* model, int64_t layer,
                               const AdapterSet* adapter,
                               const std::vector<AdapterRows>* row_adapters,
                               bool training, at::Generator generator) {
    // Each generator's state now, so that the recompute draws the same
    // dropout masks.
    std::vector<torch::Tensor> states;
    for (at::Generator& g :
         DropoutGenerators(hidden.device(), generator, row_adapters)) {
      std::lock_guard<std::mutex> lock(g.mutex());
      states.push_back(g.get_state());
    }
    ctx->saved_data["rng"] = states;
    if (generator.defined()) ctx->saved_data["generator"] = generator;
    ctx->saved_data["model"] = reinterpret_cast<int64_t>(model);
    ctx->saved_data["adapter"] = reinterpret_cast<int64_t>(adapter);
    ctx->saved_data["row_adapters"] = reinterpret_cast<int64_t>(row_adapters);
    ctx->saved_data["layer"] = layer;
    ctx->saved_data["training"] = training;
    ctx->saved_data["cos"] = cos;
    ctx->saved_data["sin"] = sin;
    std::vector<torch::Tensor> saved = {hidden};
    saved.insert(saved.end(), params.begin(), params.end());
    ctx->save_for_backward(saved);
    ForwardOptions options;
    options.adapter = adapter;
    options.row_adapters = row_adapters;
    options.training = training;
    options.dropout_generator = generator;
    return model->Block(layer, hidden, cos, sin, options);
  }

  static torch::autograd::variable_list backward(
      torch::autograd::AutogradContext* ctx,
      torch::autograd::variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    const auto* model =
        reinterpret_cast<const LlamaModel*>(ctx->saved_data["model"].toInt());
    ForwardOptions options;
    options.adapter =
        reinterpret_cast<const AdapterSet*>(ctx->saved_data["adapter"].toInt());
    options.row_adapters = reinterpret_cast<const std::vector<AdapterRows>*>(
        ctx->saved_data["row_adapters"].toInt());
    options.training = ctx->saved_data["training"].toBool();
    if (ctx->saved_data.count("generator") != 0) {
      options.dropout_generator = ctx->saved_data["generator"].toGenerator();
    }
    const int64_t layer = ctx->saved_data["layer"].toInt();
    torch::Tensor cos = ctx->saved_data["cos"].toTensor();
    torch::Tensor sin = ctx->saved_data["sin"].toTensor();
    // The block's input needs a gradient only where it came out of a
    // trainable part of the graph: the first block's input (the embedding
    // output) does not, and its input gradient is never computed.
    const bool input_grad = saved[0].requires_grad();
    torch::Tensor input = saved[0].detach().requires_grad_(input_grad);
    std::vector<torch::Tensor> inputs;
    if (input_grad) inputs.push_back(input);
    inputs.insert(inputs.end(), saved.begin() + 1, saved.end());

    std::vector<at::Generator> gens = DropoutGenerators(
        input.device(), options.dropout_generator, options.row_adapters);
    std::vector<torch::Tensor> states = ctx->saved_data["rng"].toTensorVector();
    std::vector<torch::Tensor> outer(gens.size());
    for (size_t i = 0; i < gens.size(); ++i) {
      std::lock_guard<std::mutex> lock(gens[i].mutex());
      outer[i] = gens[i].get_state();
      gens[i].set_state(states[i]);
    }
    torch::Tensor out;
    {
      torch::AutoGradMode enable(true);
      out = model->Block(layer, input, cos, sin, options);
    }
    for (size_t i = 0; i < gens.size(); ++i) {
      std::lock_guard<std::mutex> lock(gens[i].mutex());
      gens[i].set_state(outer[i]);
    }
    torch::autograd::variable_list grads =
        inputs.empty() ? torch::autograd::variable_list{}
                       : torch::autograd::grad({out}, inputs, {grad_out[0]},
                                               /*retain_graph=*/false,
                                               /*create_graph=*/false,
                                               /*allow_unused=*/true);
    if (!input_grad) grads.insert(grads.begin(), torch::Tensor());
    // cos, sin, model, layer, adapter, row_adapters, training and the
    // generator get none.
    for (int i = 0; i < 8; ++i) grads.push_back(torch::Tensor());
    return grads;
  }
};

}  // namespace

torch::Tensor CheckpointedBlock(const LlamaModel& model, int64_t layer,
                                const torch::Tensor& hidden,
                                const torch::Tensor& cos,
                                const torch::Tensor& sin,
                                const ForwardOptions& options) {
  std::vector<torch::Tensor> params;
  if (options.adapter != nullptr) {
    params = options.adapter->LayerParameters(layer);
  } else if (options.row_adapters != nullptr) {
    for (const AdapterRows& r : *options.row_adapters) {
      if (r.adapter == nullptr) continue;
      std::vector<torch::Tensor> p = r.adapter->LayerParameters(layer);
      params.insert(params.end(), p.begin(), p.end());
    }
  }
  return CheckpointFunction::apply(
      hidden, at::TensorList(params), cos, sin, &model, layer, options.adapter,
      options.row_adapters, options.training, options.dropout_generator);
}

}  // namespace lorad::worker
