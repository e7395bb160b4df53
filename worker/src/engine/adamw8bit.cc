#include "lorad/worker/adamw8bit.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace lorad::worker {
namespace {

constexpr int64_t kBlock = AdamW8bit::kBlockSize;
constexpr int64_t kLutSize = 65536;

// bitsandbytes' create_dynamic_map(signed, max_exponent_bits=7,
// total_bits=8), built with the same float32 torch ops so every code is the
// same float: for each decade 10^-6 .. 10^0, the midpoints of an evenly
// spaced split of [0.1, 1] (twice as many when unsigned), mirrored when
// signed, plus 0 and 1.
torch::Tensor DynamicMap(bool is_signed) {
  constexpr int kExponentBits = 7;
  constexpr int kNonSignBits = 7;
  std::vector<float> data;
  for (int i = 0; i < kExponentBits; ++i) {
    const int64_t items = (int64_t{1} << (i + kNonSignBits - kExponentBits +
                                          (is_signed ? 0 : 1))) +
                          1;
    torch::Tensor bounds = torch::linspace(0.1, 1.0, items, torch::kFloat32);
    torch::Tensor means =
        (bounds.slice(0, 0, items - 1) + bounds.slice(0, 1)) / 2.0;
    const double scale = std::pow(10.0, -(kExponentBits - 1) + i);
    for (double sign : {1.0, -1.0}) {
      if (sign < 0 && !is_signed) break;
      torch::Tensor part = (means * (sign * scale)).contiguous();
      const float* p = part.data_ptr<float>();
      data.insert(data.end(), p, p + part.numel());
    }
  }
  data.push_back(0.0f);
  data.push_back(1.0f);
  TORCH_INTERNAL_ASSERT(data.size() == 256, "dynamic map has ", data.size());
  std::sort(data.begin(), data.end());
  return torch::tensor(data, torch::kFloat32);
}

// bitsandbytes' CPU quantisation table: 65536 bins evenly over [-1, 1], each
// holding the index of the code nearest to the bin's value (the count of
// code midpoints below it).
torch::Tensor NearestCodeTable(const torch::Tensor& map) {
  const float* code = map.data_ptr<float>();
  float mids[255];
  for (int i = 0; i < 255; ++i) mids[i] = 0.5f * (code[i] + code[i + 1]);
  torch::Tensor lut = torch::empty({kLutSize}, torch::kUInt8);
  uint8_t* out = lut.data_ptr<uint8_t>();
  int idx = 0;
  for (int64_t i = 0; i < kLutSize; ++i) {
    const float value = -1.0f + (2.0f * static_cast<float>(i)) /
                                    static_cast<float>(kLutSize - 1);
    while (idx < 255 && mids[idx] < value) ++idx;
    out[i] = static_cast<uint8_t>(idx);
  }
  return lut;
}

int64_t Blocks(int64_t numel) { return (numel + kBlock - 1) / kBlock; }

// `flat` padded with zeros to whole blocks, viewed as [blocks, 256].
torch::Tensor AsBlocks(const torch::Tensor& flat) {
  const int64_t n = flat.numel();
  const int64_t pad = Blocks(n) * kBlock - n;
  torch::Tensor full = pad ? at::constant_pad_nd(flat, {0, pad}, 0) : flat;
  return full.view({Blocks(n), kBlock});
}

torch::Tensor Dequantize(const torch::Tensor& codes,
                         const torch::Tensor& absmax,
                         const torch::Tensor& map) {
  const int64_t n = codes.numel();
  torch::Tensor values =
      map.index_select(0, codes.reshape({-1}).to(torch::kLong));
  torch::Tensor scaled = AsBlocks(values) * absmax.unsqueeze(1);
  return scaled.reshape({-1}).slice(0, 0, n).view(codes.sizes());
}

// Writes `values`' block maxima into `absmax` and its codes into `codes`:
// each value times the reciprocal of its block's absmax, clamped to [-1, 1],
// mapped to bin trunc((v + 1) * 0.5 * 65535 + 0.5) of `lut`, each step
// rounded to float as bitsandbytes does. All-zero blocks get code 0.
void Quantize(const torch::Tensor& values, const torch::Tensor& lut,
              const torch::Tensor& codes, const torch::Tensor& absmax) {
  const int64_t n = values.numel();
  torch::Tensor blocks = AsBlocks(values.reshape({-1}));
  torch::Tensor am = blocks.abs().amax(1);
  torch::Tensor live = am > 0;
  torch::Tensor inv =
      torch::where(live, am.reciprocal(), torch::zeros_like(am));
  torch::Tensor v = (blocks * inv.unsqueeze(1)).clamp(-1.0, 1.0);
  torch::Tensor bin = (v + 1.0)
                          .mul_(0.5)
                          .mul_(static_cast<double>(kLutSize - 1))
                          .add_(0.5)
                          .to(torch::kLong);
  torch::Tensor q = lut.index_select(0, bin.reshape({-1})).view({-1, kBlock});
  q.masked_fill_(live.logical_not().unsqueeze(1), 0);
  codes.copy_(q.reshape({-1}).slice(0, 0, n).view(codes.sizes()));
  absmax.copy_(am);
}

void CheckOptions(const AdamW8bitOptions& o) {
  TORCH_CHECK(o.lr() >= 0, "AdamW8bit: invalid learning rate: ", o.lr());
  TORCH_CHECK(o.eps() >= 0, "AdamW8bit: invalid epsilon value: ", o.eps());
  const auto [b1, b2] = o.betas();
  TORCH_CHECK(0 <= b1 && b1 < 1.0, "AdamW8bit: invalid beta1: ", b1);
  TORCH_CHECK(0 <= b2 && b2 < 1.0, "AdamW8bit: invalid beta2: ", b2);
  TORCH_CHECK(o.weight_decay() >= 0,
              "AdamW8bit: invalid weight_decay value: ", o.weight_decay());
}

int64_t BytesOf(const torch::Tensor& t) { return t.defined() ? t.nbytes() : 0; }

// Moves loaded state onto `device` and checks it fits a parameter of `numel`
// elements.
void FitState(AdamW8bitParamState& st, const torch::Device& device,
              int64_t numel) {
  auto fit = [&](const torch::Tensor& t, int64_t want, const char* name) {
    TORCH_CHECK(t.defined() && t.numel() == want, "AdamW8bit: state ", name,
                " has ", t.defined() ? t.numel() : 0,
                " elements where the parameter needs ", want);
    return t.to(device);
  };
  if (st.quantized()) {
    st.state1(fit(st.state1(), numel, "state1"));
    st.state2(fit(st.state2(), numel, "state2"));
    st.absmax1(fit(st.absmax1(), Blocks(numel), "absmax1"));
    st.absmax2(fit(st.absmax2(), Blocks(numel), "absmax2"));
    TORCH_CHECK(st.state1().scalar_type() == torch::kUInt8 &&
                    st.state2().scalar_type() == torch::kUInt8,
                "AdamW8bit: 8-bit state is not uint8");
  } else {
    st.exp_avg(fit(st.exp_avg(), numel, "exp_avg"));
    st.exp_avg_sq(fit(st.exp_avg_sq(), numel, "exp_avg_sq"));
  }
}

}  // namespace

AdamW8bitOptions::AdamW8bitOptions(double lr) : lr_(lr) {}

void AdamW8bitOptions::serialize(
    torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(betas);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(min_8bit_size);
}

void AdamW8bitOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(betas_t, betas);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, eps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
  c10::IValue min_size;
  if (archive.try_read("min_8bit_size", min_size)) {
    min_8bit_size(min_size.toInt());
  }
}

double AdamW8bitOptions::get_lr() const { return lr(); }
void AdamW8bitOptions::set_lr(const double lr) { this->lr(lr); }

int64_t AdamW8bitParamState::Bytes() const {
  return BytesOf(state1()) + BytesOf(state2()) + BytesOf(absmax1()) +
         BytesOf(absmax2()) + BytesOf(exp_avg()) + BytesOf(exp_avg_sq());
}

void AdamW8bitParamState::serialize(
    torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(state1);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(state2);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(absmax1);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(absmax2);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq);
}

void AdamW8bitParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, state1);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, state2);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, absmax1);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, absmax2);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq);
}

AdamW8bit::AdamW8bit(
    const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
    AdamW8bitOptions defaults)
    : Optimizer(param_groups, std::make_unique<AdamW8bitOptions>(defaults)) {
  CheckOptions(defaults);
  for (const auto& group : param_groups_) {
    CheckOptions(static_cast<const AdamW8bitOptions&>(group.options()));
  }
}

torch::Tensor AdamW8bit::SignedMap() { return DynamicMap(true); }
torch::Tensor AdamW8bit::UnsignedMap() { return DynamicMap(false); }

const AdamW8bit::Tables& AdamW8bit::TablesOn(const torch::Device& device) {
  for (const Tables& t : tables_) {
    if (t.device == device) return t;
  }
  torch::Tensor s = SignedMap(), u = UnsignedMap();
  tables_.push_back(Tables{device, s.to(device), u.to(device),
                           NearestCodeTable(s).to(device),
                           NearestCodeTable(u).to(device)});
  return tables_.back();
}

int64_t AdamW8bit::StateBytesFor(int64_t numel, int64_t min_8bit_size) {
  if (numel < min_8bit_size) return 2 * numel * int64_t{sizeof(float)};
  return 2 * numel + 2 * Blocks(numel) * int64_t{sizeof(float)};
}

int64_t AdamW8bit::StateBytes() const {
  int64_t total = 0;
  for (const auto& [key, st] : state_) {
    total += static_cast<const AdamW8bitParamState&>(*st).Bytes();
  }
  return total;
}

AdamW8bit::StateMap::iterator AdamW8bit::CreateStateFor(const torch::Tensor& p,
                                                        int64_t min_8bit_size) {
  const int64_t numel = p.numel();
  auto st = std::make_unique<AdamW8bitParamState>();
  if (numel >= min_8bit_size) {
    const auto bytes = torch::TensorOptions(p.device()).dtype(torch::kUInt8);
    const auto floats = torch::TensorOptions(p.device()).dtype(torch::kFloat);
    st->state1(torch::zeros(p.sizes(), bytes));
    st->state2(torch::zeros(p.sizes(), bytes));
    st->absmax1(torch::zeros({Blocks(numel)}, floats));
    st->absmax2(torch::zeros({Blocks(numel)}, floats));
  } else {
    const auto floats = p.options().dtype(torch::kFloat);
    st->exp_avg(torch::zeros(p.sizes(), floats));
    st->exp_avg_sq(torch::zeros(p.sizes(), floats));
  }
  return state_.emplace(p.unsafeGetTensorImpl(), std::move(st)).first;
}

void AdamW8bit::CreateState() {
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const AdamW8bitOptions&>(group.options());
    for (auto& p : group.params()) {
      if (state_.find(p.unsafeGetTensorImpl()) == state_.end()) {
        CreateStateFor(p, o.min_8bit_size());
      }
    }
  }
}

torch::Tensor AdamW8bit::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const AdamW8bitOptions&>(group.options());
    const auto [beta1, beta2] = o.betas();
    const double lr = o.lr(), eps = o.eps(), wd = o.weight_decay();
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const int64_t numel = p.numel();
      auto it = state_.find(p.unsafeGetTensorImpl());
      if (it == state_.end()) it = CreateStateFor(p, o.min_8bit_size());
      auto& st = static_cast<AdamW8bitParamState&>(*it->second);
      FitState(st, p.device(), numel);
      st.step(st.step() + 1);
      const double k = static_cast<double>(st.step());
      const double correction1 = 1.0 - std::pow(beta1, k);
      const double correction2 = std::sqrt(1.0 - std::pow(beta2, k));

      // A float, contiguous parameter is updated in place; any other is
      // updated as a float copy and written back.
      const bool in_place =
          p.scalar_type() == torch::kFloat && p.is_contiguous();
      torch::Tensor work = p.detach().contiguous().to(torch::kFloat);
      const torch::Tensor grad =
          p.grad().detach().contiguous().to(torch::kFloat).view(p.sizes());

      if (st.quantized()) {
        const Tables& t = TablesOn(p.device());
        torch::Tensor m = Dequantize(st.state1(), st.absmax1(), t.signed_map);
        torch::Tensor v = Dequantize(st.state2(), st.absmax2(), t.unsigned_map);
        m.mul_(beta1).add_(grad, 1.0 - beta1);
        v.mul_(beta2).addcmul_(grad, grad, 1.0 - beta2);
        torch::Tensor denom = (v.sqrt() / correction2).add_(eps);
        if (wd > 0.0) work.mul_(1.0 - lr * wd);
        work.addcdiv_(m, denom, -lr / correction1);
        Quantize(m, t.signed_lut, st.state1(), st.absmax1());
        Quantize(v, t.unsigned_lut, st.state2(), st.absmax2());
      } else {
        const torch::Tensor& m = st.exp_avg();
        const torch::Tensor& v = st.exp_avg_sq();
        m.mul_(beta1).add_(grad, 1.0 - beta1);
        v.mul_(beta2).addcmul_(grad, grad, 1.0 - beta2);
        const double step_size = -lr * correction2 / correction1;
        if (wd > 0.0) work.mul_(1.0 - lr * wd);
        torch::Tensor update = m / (v.sqrt() + eps * correction2);
        work.add_(update, step_size);
      }
      if (!in_place) p.detach().copy_(work);
    }
  }
  return loss;
}

void AdamW8bit::save(torch::serialize::OutputArchive& archive) const {
  torch::optim::serialize<AdamW8bitParamState, AdamW8bitOptions>(archive,
                                                                 *this);
}

void AdamW8bit::load(torch::serialize::InputArchive& archive) {
  torch::optim::serialize<AdamW8bitParamState, AdamW8bitOptions>(archive,
                                                                 *this);
}

}  // namespace lorad::worker
