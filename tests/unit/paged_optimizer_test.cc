// Paged optimizers: the same update as the unpaged ones, state placed up
// front; on the CPU a no-op that says so; on a CUDA device the state in
// managed memory (that part runs only where a device is visible).
#include "lorad/worker/paged_optimizer.h"

#include <torch/torch.h>

#include "gtest/gtest.h"
#include "lorad/common/files.h"
#include "lorad/cuda_bridge/kernels.h"
#include "lorad/cuda_bridge/managed_memory.h"
#include "lorad/worker/adamw8bit.h"
#include "lorad/worker/trainer.h"
#include "tiny_model_util.h"

namespace lorad::worker {
namespace {

std::vector<torch::Tensor> Params(torch::Device device) {
  torch::manual_seed(7);
  // One tensor big enough for 8-bit state, one kept in 32 bits.
  return {torch::randn({64, 96}).to(device).requires_grad_(),
          torch::randn({17}).to(device).requires_grad_()};
}

// Runs `steps` updates with fixed pseudo-random gradients.
void Steps(torch::optim::Optimizer& opt, std::vector<torch::Tensor>& params,
           int steps) {
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    for (size_t i = 0; i < params.size(); ++i) {
      torch::manual_seed(100 * s + static_cast<int64_t>(i));
      params[i].mutable_grad() =
          torch::randn(params[i].sizes()).to(params[i].device());
    }
    opt.step();
  }
}

std::unique_ptr<torch::optim::Optimizer> Make(
    bool eight_bit, const std::vector<torch::Tensor>& params) {
  if (eight_bit) {
    AdamW8bitOptions o(1e-2);
    o.weight_decay(0.01).min_8bit_size(1024);
    return std::make_unique<AdamW8bit>(params, o);
  }
  return std::make_unique<torch::optim::AdamW>(
      params, torch::optim::AdamWOptions(1e-2).weight_decay(0.01));
}

void ExpectPagedUpdateIsTheSame(bool eight_bit, torch::Device device) {
  std::vector<torch::Tensor> plain = Params(device);
  std::vector<torch::Tensor> paged = Params(device);
  auto a = Make(eight_bit, plain);
  auto b = Make(eight_bit, paged);
  auto state = PageOptimizerState(*b);
  ASSERT_TRUE(state.ok()) << state.status();
  // The state exists before the first step: 8 bytes an element for AdamW;
  // AdamW8bit's own count for its tensors.
  const int64_t want = eight_bit ? AdamW8bit::StateBytesFor(64 * 96, 1024) +
                                       AdamW8bit::StateBytesFor(17, 1024)
                                 : 8 * (64 * 96 + 17);
  EXPECT_EQ(state->bytes, want);
  EXPECT_EQ(state->tensors, eight_bit ? 6 : 4);
  Steps(*a, plain, 5);
  Steps(*b, paged, 5);
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_TRUE(torch::equal(plain[i], paged[i])) << "parameter " << i;
  }
  if (device.is_cpu()) {
    EXPECT_EQ(state->paged_bytes, 0);
    EXPECT_NE(state->note.find("no-op"), std::string::npos) << state->note;
  } else {
    EXPECT_EQ(state->paged_bytes, want);
    for (auto& [key, st] : b->state()) {
      (void)key;
      if (auto* s = dynamic_cast<torch::optim::AdamWParamState*>(st.get())) {
        EXPECT_TRUE(cuda_bridge::IsManaged(s->exp_avg()));
        EXPECT_TRUE(cuda_bridge::IsManaged(s->exp_avg_sq()));
      }
      if (auto* s = dynamic_cast<AdamW8bitParamState*>(st.get())) {
        EXPECT_TRUE(cuda_bridge::IsManaged(s->quantized() ? s->state1()
                                                          : s->exp_avg()));
      }
    }
  }
}

TEST(PagedOptimizer, AdamWUpdateUnchangedOnCpu) {
  ExpectPagedUpdateIsTheSame(false, torch::kCPU);
}

TEST(PagedOptimizer, AdamW8bitUpdateUnchangedOnCpu) {
  ExpectPagedUpdateIsTheSame(true, torch::kCPU);
}

TEST(PagedOptimizer, StateInManagedMemoryOnCuda) {
  if (!cuda_bridge::DeviceAvailable()) {
    GTEST_SKIP() << "no CUDA device visible";
  }
  ExpectPagedUpdateIsTheSame(false, torch::Device(torch::kCUDA, 0));
  ExpectPagedUpdateIsTheSame(true, torch::Device(torch::kCUDA, 0));
}

TEST(PagedOptimizer, ResumedStateIsPagedAgainAndContinuesTheSame) {
  std::vector<torch::Tensor> plain = Params(torch::kCPU);
  std::vector<torch::Tensor> paged = Params(torch::kCPU);
  auto a = Make(true, plain);
  auto b = Make(true, paged);
  ASSERT_TRUE(PageOptimizerState(*b).ok());
  Steps(*a, plain, 3);
  Steps(*b, paged, 3);
  std::stringstream saved;
  {
    torch::serialize::OutputArchive out;
    b->save(out);
    out.save_to(saved);
  }
  auto c = Make(true, paged);
  torch::serialize::InputArchive in;
  in.load_from(saved);
  c->load(in);
  auto state = PageOptimizerState(*c);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->tensors, 6);
  Steps(*a, plain, 2);
  Steps(*c, paged, 2);
  EXPECT_TRUE(torch::equal(plain[0], paged[0]));
  EXPECT_TRUE(torch::equal(plain[1], paged[1]));
}

TEST(PagedOptimizer, OtherOptimizersAreRefused) {
  std::vector<torch::Tensor> p = Params(torch::kCPU);
  torch::optim::SGD sgd(p, torch::optim::SGDOptions(0.1));
  auto state = PageOptimizerState(sgd);
  EXPECT_EQ(state.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ManagedMemory, BadDeviceIsInvalidArgument) {
  if (!cuda_bridge::KernelsBuilt()) {
    EXPECT_EQ(cuda_bridge::ManagedCopy(torch::ones({3}), 0).status().code(),
              absl::StatusCode::kUnimplemented);
    return;
  }
  auto copy = cuda_bridge::ManagedCopy(torch::ones({3}), 4096);
  EXPECT_EQ(copy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(copy.status().message().find("4096"), std::string::npos);
  EXPECT_FALSE(cuda_bridge::IsManaged(torch::ones({3})));
}

// Through the trainer: paged_adamw trains exactly as adamw on the CPU, says
// that paging is a no-op there, and its estimate marks the state pageable.
TEST(PagedOptimizer, TrainerJobMatchesUnpagedAndSaysNoOp) {
  const std::string root = FreshTestDir("paged_optimizer_test");
  auto model = LoadTinyModel(root);
  ASSERT_TRUE(model.ok()) << model.status();
  std::string data;
  for (const char* w : {"apple", "banana", "lime", "grape", "mango"}) {
    data += std::string("{\"prompt\": \"fruit ->\", \"completion\": \" ") + w +
            "\"}\n";
  }
  ASSERT_TRUE(WriteFileAtomic(root + "/train.jsonl", data).ok());
  auto run = [&](const std::string& optimizer, std::vector<std::string>* logs,
                 lorad::worker::v1::MemoryEstimate* estimate) {
    TrainJob job;
    job.job_id = optimizer;
    job.base_model_name = "tiny";
    job.training_path = root + "/train.jsonl";
    job.job_dir = root + "/jobs/" + optimizer;
    job.adapter_dir = root + "/adapters/" + optimizer;
    auto& hp = job.hp;
    hp.set_rank(4);
    hp.set_alpha(8);
    hp.add_target_modules("q_proj");
    hp.add_target_modules("v_proj");
    hp.set_learning_rate(1e-2f);
    hp.set_batch_size(5);
    hp.set_gradient_accumulation(1);
    hp.set_max_grad_norm(1.0f);
    hp.set_lr_scheduler("constant");
    hp.set_max_seq_len(32);
    hp.set_seed(3);
    hp.set_max_steps(4);
    hp.set_optimizer(optimizer);
    TrainCallbacks cb;
    cb.on_event = [&](const lorad::worker::v1::TrainEvent& e) {
      if (e.has_log()) logs->push_back(e.log());
      if (e.has_started()) *estimate = e.started().memory_estimate();
    };
    absl::Status status = RunTraining(**model, job, cb);
    EXPECT_TRUE(status.ok()) << status;
    auto bytes = ReadFile(job.adapter_dir + "/adapter_model.safetensors");
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    return bytes.ok() ? *bytes : std::string();
  };
  std::vector<std::string> plain_logs, paged_logs;
  lorad::worker::v1::MemoryEstimate plain_est, paged_est;
  const std::string plain = run("adamw", &plain_logs, &plain_est);
  const std::string paged = run("paged_adamw", &paged_logs, &paged_est);
  ASSERT_FALSE(plain.empty());
  EXPECT_EQ(plain, paged) << "paged_adamw trained other weights than adamw";
  EXPECT_EQ(plain_est.pageable_bytes(), 0);
  EXPECT_EQ(paged_est.pageable_bytes(), paged_est.optimizer_bytes());
  EXPECT_GT(paged_est.optimizer_bytes(), 0);
  bool said = false;
  for (const std::string& l : paged_logs) {
    said |= l.find("paged optimizer") != std::string::npos &&
            l.find("no-op") != std::string::npos;
  }
  EXPECT_TRUE(said) << "no log line says paging is a no-op on the CPU";
  for (const std::string& l : plain_logs) {
    EXPECT_EQ(l.find("paged optimizer"), std::string::npos) << l;
  }
}

}  // namespace
}  // namespace lorad::worker
