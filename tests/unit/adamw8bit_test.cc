// AdamW8bit against bitsandbytes' AdamW8bit (tests/golden/adamw8bit_peer.py,
// run on the CPU at test time), plus its checkpoint round trip, that it
// trains, and how much state it keeps next to torch::optim::AdamW.
#include "lorad/worker/adamw8bit.h"

#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lorad/common/files.h"
#include "lorad/model/tiny_model.h"
#include "lorad/worker/lora.h"
#include "nlohmann/json.hpp"
#include "test_dir.h"
#include "train_checkpoint.h"

namespace lorad::worker {
namespace {

struct Peer {
  bool available = false;  // false: no venv with bitsandbytes
  bool ok = false;
  std::string dir;
  std::string log;
  nlohmann::json manifest;
};

const Peer& RunPeer() {
  static const Peer* const kPeer = [] {
    auto* peer = new Peer();
    const std::string python = LORAD_PYTHON;
    if (!std::filesystem::exists(python) ||
        std::system(
            (python + " -c 'import bitsandbytes' 2>/dev/null").c_str()) != 0) {
      return peer;
    }
    peer->available = true;
    peer->dir = ::testing::TempDir() + "/adamw8bit_peer";
    std::filesystem::remove_all(peer->dir);
    const std::string log = peer->dir + ".log";
    const std::string command =
        absl::StrCat(python, " ", LORAD_SOURCE_DIR,
                     "/tests/golden/adamw8bit_peer.py ", peer->dir, " 2>", log);
    peer->ok = std::system(command.c_str()) == 0;
    peer->log = ReadFile(log).value_or("");
    if (peer->ok) {
      peer->manifest = nlohmann::json::parse(
          ReadFile(peer->dir + "/manifest.json").value_or("null"), nullptr,
          false);
      peer->ok = peer->manifest.is_object();
    }
    return peer;
  }();
  return *kPeer;
}

#define REQUIRE_PEER()                                                     \
  do {                                                                     \
    if (!RunPeer().available) GTEST_SKIP() << "no venv with bitsandbytes"; \
    ASSERT_TRUE(RunPeer().ok) << RunPeer().log;                            \
  } while (0)

// A tensor the peer wrote as raw bytes, with the dtype and shape it named.
torch::Tensor Load(const std::string& name) {
  const Peer& peer = RunPeer();
  const nlohmann::json& f = peer.manifest["files"][name];
  EXPECT_TRUE(f.is_object()) << "peer wrote no " << name;
  if (!f.is_object()) return torch::Tensor();
  const std::string dtype = f["dtype"];
  const std::vector<int64_t> shape = f["shape"];
  torch::Tensor t =
      torch::empty(shape, dtype == "uint8" ? torch::kUInt8 : torch::kFloat32);
  EXPECT_TRUE(dtype == "uint8" || dtype == "float32") << name << ": " << dtype;
  const std::string bytes =
      ReadFile(peer.dir + "/" + name + ".bin").value_or("");
  EXPECT_EQ(bytes.size(), t.nbytes()) << name;
  if (bytes.size() != t.nbytes()) return torch::Tensor();
  std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

const AdamW8bitParamState& StateOf(const AdamW8bit& opt,
                                   const torch::Tensor& p) {
  return static_cast<const AdamW8bitParamState&>(
      *opt.state().at(p.unsafeGetTensorImpl()));
}

int64_t Differing(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  EXPECT_EQ(a.scalar_type(), b.scalar_type());
  return (a.reshape({-1}) != b.reshape({-1})).sum().item<int64_t>();
}

double MaxRelativeError(const torch::Tensor& got, const torch::Tensor& want) {
  return ((got - want).abs() / want.abs().clamp_min(1e-30))
      .max()
      .item<double>();
}

TEST(AdamW8bitTest, MapsAreBitsandbytesDynamicMaps) {
  REQUIRE_PEER();
  EXPECT_EQ(Differing(AdamW8bit::SignedMap(), Load("dynamic_signed")), 0);
  EXPECT_EQ(Differing(AdamW8bit::UnsignedMap(), Load("dynamic_unsigned")), 0);
  // And the maps the optimizer's state was decoded with after its steps.
  EXPECT_EQ(Differing(AdamW8bit::SignedMap(), Load("qmap1")), 0);
  EXPECT_EQ(Differing(AdamW8bit::UnsignedMap(), Load("qmap2")), 0);
}

TEST(AdamW8bitTest, StateBytesAndParamsMatchBitsandbytes) {
  REQUIRE_PEER();
  const nlohmann::json& m = RunPeer().manifest;
  const size_t n = m["shapes"].size();
  std::vector<torch::Tensor> params;
  for (size_t i = 0; i < n; ++i) {
    params.push_back(Load(absl::StrCat("init", i)).requires_grad_(true));
  }
  const nlohmann::json& hp = m["hp"];
  AdamW8bit opt(params, AdamW8bitOptions(hp["lr"].get<double>())
                            .betas({hp["betas"][0].get<double>(),
                                    hp["betas"][1].get<double>()})
                            .eps(hp["eps"].get<double>())
                            .weight_decay(hp["weight_decay"].get<double>()));
  const int steps = m["steps"];
  for (int step = 0; step < steps; ++step) {
    for (size_t i = 0; i < n; ++i) {
      const std::string name = absl::StrCat("grad", i, "_", step);
      params[i].mutable_grad() =
          m["files"].contains(name) ? Load(name) : torch::Tensor();
    }
    opt.step();
  }
  for (size_t i = 0; i < n; ++i) {
    SCOPED_TRACE(absl::StrCat("param ", i));
    const nlohmann::json& want = m["states"][i];
    const AdamW8bitParamState& st = StateOf(opt, params[i]);
    EXPECT_EQ(st.step(), want["step"].get<int64_t>());
    ASSERT_EQ(st.quantized(), want["quantized"].get<bool>());
    EXPECT_LE(
        MaxRelativeError(params[i].detach(), Load(absl::StrCat("param", i))),
        1e-6);
    if (st.quantized()) {
      EXPECT_EQ(Differing(st.state1(), Load(absl::StrCat("state1_", i))), 0);
      EXPECT_EQ(Differing(st.state2(), Load(absl::StrCat("state2_", i))), 0);
      EXPECT_EQ(Differing(st.absmax1(), Load(absl::StrCat("absmax1_", i))), 0);
      EXPECT_EQ(Differing(st.absmax2(), Load(absl::StrCat("absmax2_", i))), 0);
    } else {
      EXPECT_EQ(Differing(st.exp_avg(), Load(absl::StrCat("state1_", i))), 0);
      EXPECT_EQ(Differing(st.exp_avg_sq(), Load(absl::StrCat("state2_", i))),
                0);
    }
  }
}

// A few steps of random gradients on `params`, the same for a given seed.
void Train(torch::optim::Optimizer& opt, std::vector<torch::Tensor>& params,
           int steps, uint64_t seed) {
  torch::manual_seed(seed);
  for (int s = 0; s < steps; ++s) {
    for (auto& p : params) p.mutable_grad() = torch::randn_like(p);
    opt.step();
  }
}

std::vector<torch::Tensor> Params(uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({77, 131}).requires_grad_(true),
          torch::randn({20, 30}).requires_grad_(true)};
}

std::string Save(torch::optim::Optimizer& opt) {
  torch::serialize::OutputArchive archive;
  opt.save(archive);
  std::string bytes;
  archive.save_to([&bytes](const void* data, size_t n) {
    bytes.append(static_cast<const char*>(data), n);
    return n;
  });
  return bytes;
}

void Restore(torch::optim::Optimizer& opt, const std::string& bytes) {
  torch::serialize::InputArchive archive;
  archive.load_from(bytes.data(), bytes.size());
  opt.load(archive);
}

void ExpectSameState(const AdamW8bitParamState& a,
                     const AdamW8bitParamState& b) {
  EXPECT_EQ(a.step(), b.step());
  ASSERT_EQ(a.quantized(), b.quantized());
  if (a.quantized()) {
    EXPECT_EQ(Differing(a.state1(), b.state1()), 0);
    EXPECT_EQ(Differing(a.state2(), b.state2()), 0);
    EXPECT_EQ(Differing(a.absmax1(), b.absmax1()), 0);
    EXPECT_EQ(Differing(a.absmax2(), b.absmax2()), 0);
  } else {
    EXPECT_EQ(Differing(a.exp_avg(), b.exp_avg()), 0);
    EXPECT_EQ(Differing(a.exp_avg_sq(), b.exp_avg_sq()), 0);
  }
}

TEST(AdamW8bitTest, SaveLoadRestoresExactStateAndContinuesIdentically) {
  std::vector<torch::Tensor> params = Params(7);
  AdamW8bit opt(params, AdamW8bitOptions(3e-3).betas({0.8, 0.99}));
  Train(opt, params, 3, 11);
  const std::string bytes = Save(opt);

  // A fresh optimizer over equal parameters, built with other options.
  std::vector<torch::Tensor> copies;
  for (const auto& p : params) {
    copies.push_back(p.detach().clone().requires_grad_(true));
  }
  AdamW8bit restored(copies, AdamW8bitOptions(1.0).weight_decay(0.5));
  Restore(restored, bytes);
  ASSERT_EQ(restored.state().size(), params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("param ", i));
    ExpectSameState(StateOf(opt, params[i]), StateOf(restored, copies[i]));
  }
  const auto& o = static_cast<const AdamW8bitOptions&>(
      restored.param_groups()[0].options());
  EXPECT_EQ(o.lr(), 3e-3);
  EXPECT_EQ(std::get<0>(o.betas()), 0.8);
  EXPECT_EQ(o.weight_decay(), 1e-2);

  Train(opt, params, 2, 12);
  Train(restored, copies, 2, 12);
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(torch::equal(params[i], copies[i])) << "param " << i;
    ExpectSameState(StateOf(opt, params[i]), StateOf(restored, copies[i]));
  }
}

AdapterSet MakeAdapter(uint64_t seed) {
  LoraOptions lo;
  lo.rank = 64;  // 64x64 matrices: at bitsandbytes' 8-bit threshold
  lo.target_modules = {"q_proj", "v_proj"};
  auto adapter = AdapterSet::CreateForTraining(model::TinyModelConfig(), lo,
                                               seed, torch::kCPU);
  EXPECT_TRUE(adapter.ok()) << adapter.status();
  return *std::move(adapter);
}

// Through the trainer's checkpoint files, as a torch::optim::Optimizer&.
TEST(AdamW8bitTest, TrainCheckpointRoundTripsTheState) {
  const std::string dir = FreshTestDir("adamw8bit_test");
  AdapterSet adapter = MakeAdapter(1);
  std::vector<torch::Tensor> params = adapter.Parameters();
  AdamW8bit opt(params, AdamW8bitOptions(1e-3));
  Train(opt, params, 2, 21);
  ASSERT_TRUE(SaveCheckpoint(dir, adapter, opt, CheckpointState{2, 0}).ok());

  AdapterSet restored = MakeAdapter(2);
  std::vector<torch::Tensor> copies = restored.Parameters();
  AdamW8bit restored_opt(copies, AdamW8bitOptions(1e-3));
  auto loaded = LoadCheckpoint(dir, restored, restored_opt);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->state.step, 2);
  int quantized = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("param ", i));
    EXPECT_TRUE(torch::equal(params[i], copies[i]));
    ExpectSameState(StateOf(opt, params[i]), StateOf(restored_opt, copies[i]));
    quantized += StateOf(opt, params[i]).quantized();
  }
  EXPECT_GT(quantized, 0);
}

TEST(AdamW8bitTest, StateOfAnotherShapeIsRefusedOnStep) {
  std::vector<torch::Tensor> params = Params(7);
  AdamW8bit opt(params);
  Train(opt, params, 1, 11);
  std::vector<torch::Tensor> other = {
      torch::randn({70, 131}).requires_grad_(true),
      torch::randn({20, 30}).requires_grad_(true)};
  AdamW8bit wrong(other);
  Restore(wrong, Save(opt));
  for (auto& p : other) p.mutable_grad() = torch::ones_like(p);
  try {
    wrong.step();
    FAIL() << "a step over state of another shape succeeded";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("state1"), std::string::npos)
        << e.what();
  }
}

TEST(AdamW8bitTest, SmallTensorsKeep32BitState) {
  std::vector<torch::Tensor> params = {
      torch::randn({4095}).requires_grad_(true),
      torch::randn({4096}).requires_grad_(true),
      torch::randn({4097}).requires_grad_(true)};
  AdamW8bit opt(params);
  EXPECT_EQ(opt.StateBytes(), 0);
  Train(opt, params, 1, 3);
  EXPECT_FALSE(StateOf(opt, params[0]).quantized());
  EXPECT_TRUE(StateOf(opt, params[1]).quantized());
  EXPECT_TRUE(StateOf(opt, params[2]).quantized());
  EXPECT_EQ(StateOf(opt, params[2]).absmax1().numel(), 17);
  EXPECT_EQ(StateOf(opt, params[2]).state1().scalar_type(), torch::kUInt8);
  EXPECT_EQ(opt.StateBytes(), AdamW8bit::StateBytesFor(4095) +
                                  AdamW8bit::StateBytesFor(4096) +
                                  AdamW8bit::StateBytesFor(4097));
  EXPECT_EQ(AdamW8bit::StateBytesFor(4095), 4095 * 8);
  EXPECT_EQ(AdamW8bit::StateBytesFor(4097), 4097 * 2 + 17 * 2 * 4);
}

TEST(AdamW8bitTest, FitsALinearRegression) {
  torch::manual_seed(5);
  const torch::Tensor x = torch::randn({256, 128});
  const torch::Tensor y = x.mm(torch::randn({128, 64})) + 0.5;
  torch::Tensor w = torch::zeros({128, 64}).requires_grad_(true);  // 8-bit
  torch::Tensor b = torch::zeros({64}).requires_grad_(true);       // 32-bit
  AdamW8bit opt({w, b}, AdamW8bitOptions(0.05).weight_decay(0.0));
  auto loss = [&] { return (x.mm(w) + b - y).pow(2).mean(); };
  const double first = loss().item<double>();
  for (int s = 0; s < 300; ++s) {
    opt.zero_grad();
    loss().backward();
    opt.step();
  }
  const double last = loss().item<double>();
  EXPECT_TRUE(StateOf(opt, w).quantized());
  EXPECT_LT(last, first * 1e-2) << "first " << first << " last " << last;
}

// A bfloat16 parameter is updated in float and written back rounded.
TEST(AdamW8bitTest, Bfloat16ParametersStepThroughFloat) {
  torch::manual_seed(9);
  torch::Tensor half = torch::randn({64, 80}, torch::kBFloat16);
  std::vector<torch::Tensor> low = {half.clone().requires_grad_(true)};
  std::vector<torch::Tensor> high = {
      half.to(torch::kFloat).requires_grad_(true)};
  AdamW8bit low_opt(low), high_opt(high);
  const torch::Tensor grad = torch::randn({64, 80}, torch::kBFloat16);
  low[0].mutable_grad() = grad;
  high[0].mutable_grad() = grad.to(torch::kFloat);
  low_opt.step();
  high_opt.step();
  EXPECT_EQ(low[0].scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(low[0], high[0].to(torch::kBFloat16)));
  EXPECT_FALSE(torch::equal(low[0], half));
  ExpectSameState(StateOf(low_opt, low[0]), StateOf(high_opt, high[0]));
}

TEST(AdamW8bitTest, InvalidOptionsThrow) {
  std::vector<torch::Tensor> p = {torch::zeros({3}).requires_grad_(true)};
  EXPECT_THROW(AdamW8bit(p, AdamW8bitOptions(-1.0)), c10::Error);
  EXPECT_THROW(AdamW8bit(p, AdamW8bitOptions().betas({0.9, 1.0})), c10::Error);
  EXPECT_THROW(AdamW8bit(p, AdamW8bitOptions().eps(-1e-8)), c10::Error);
  EXPECT_THROW(AdamW8bit(p, AdamW8bitOptions().weight_decay(-0.1)), c10::Error);
}

// Prints the state kept for a million parameters next to AdamW's.
TEST(AdamW8bitTest, KeepsAQuarterOfAdamWsState) {
  std::vector<torch::Tensor> a = {
      torch::randn({1000, 1000}).requires_grad_(true)};
  std::vector<torch::Tensor> b = {a[0].detach().clone().requires_grad_(true)};
  AdamW8bit small(a);
  torch::optim::AdamW full(b);
  Train(small, a, 1, 1);
  Train(full, b, 1, 1);
  int64_t full_bytes = 0;
  for (const auto& [key, st] : full.state()) {
    const auto& s = static_cast<const torch::optim::AdamWParamState&>(*st);
    full_bytes += s.exp_avg().nbytes() + s.exp_avg_sq().nbytes();
  }
  const int64_t small_bytes = small.StateBytes();
  std::printf(
      "{\"params\": 1000000, \"adamw_state_bytes\": %lld, "
      "\"adamw8bit_state_bytes\": %lld, \"ratio\": %.3f}\n",
      static_cast<long long>(full_bytes), static_cast<long long>(small_bytes),
      static_cast<double>(full_bytes) / small_bytes);
  EXPECT_EQ(small_bytes, AdamW8bit::StateBytesFor(1000000));
  EXPECT_GT(static_cast<double>(full_bytes) / small_bytes, 3.9);
}

// The same steps on CUDA as on the CPU. Float rounding in CUDA's kernels
// may differ in the last bit, so a few codes may land one bin apart.
TEST(AdamW8bitTest, CudaFollowsTheCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  std::vector<torch::Tensor> cpu = Params(7);
  std::vector<torch::Tensor> gpu;
  for (const auto& p : cpu) {
    gpu.push_back(p.detach().to(torch::kCUDA).requires_grad_(true));
  }
  AdamW8bit on_cpu(cpu), on_gpu(gpu);
  for (int s = 0; s < 5; ++s) {
    torch::manual_seed(100 + s);
    for (size_t i = 0; i < cpu.size(); ++i) {
      cpu[i].mutable_grad() = torch::randn_like(cpu[i]);
      gpu[i].mutable_grad() = cpu[i].grad().to(torch::kCUDA);
    }
    on_cpu.step();
    on_gpu.step();
  }
  for (size_t i = 0; i < cpu.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("param ", i));
    EXPECT_LE(MaxRelativeError(gpu[i].detach().cpu(), cpu[i].detach()), 1e-4);
    const AdamW8bitParamState& c = StateOf(on_cpu, cpu[i]);
    const AdamW8bitParamState& g = StateOf(on_gpu, gpu[i]);
    if (c.quantized()) {
      EXPECT_TRUE(g.state1().is_cuda());
      EXPECT_LE(Differing(c.state1(), g.state1().cpu()), cpu[i].numel() / 100);
      EXPECT_LE(Differing(c.state2(), g.state2().cpu()), cpu[i].numel() / 100);
    }
  }
}

}  // namespace
}  // namespace lorad::worker
