// Our logits against HF transformers' on small random Llama, Qwen2, Qwen3,
// Mistral, Gemma 2 and Gemma 3 models built from configs (fp32, and NF4
// against bitsandbytes' NF4 inside transformers), and LoRA adapters we write
// or train against PEFT's use of them.
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "gtest/gtest.h"
#include "lorad/common/files.h"
#include "lorad/model/safetensors.h"
#include "lorad/model/tokenizer.h"
#include "lorad/model/training_data.h"
#include "lorad/worker/generator.h"
#include "lorad/worker/llama_model.h"
#include "lorad/worker/trainer.h"
#include "tiny_model_util.h"

namespace lorad::worker {
namespace {

const std::string kScript =
    std::string(LORAD_SOURCE_DIR) + "/tests/golden/hf_parity.py";

bool HavePython() {
  static const bool have =
      std::filesystem::exists(LORAD_PYTHON) &&
      std::system((std::string(LORAD_PYTHON) +
                   " -c 'import transformers, peft' 2>/dev/null")
                      .c_str()) == 0;
  return have;
}

torch::Tensor ReadTensor(const std::string& path, const std::string& name) {
  auto file = model::SafetensorsFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  const model::TensorInfo* t = (*file)->Find(name);
  EXPECT_NE(t, nullptr) << name;
  std::vector<int64_t> shape = t->shape;
  if (t->dtype == model::DType::kI64) {
    torch::Tensor out = torch::empty(shape, torch::kLong);
    std::memcpy(out.data_ptr(), t->data, t->nbytes);
    return out;
  }
  auto values = model::ToFloat32(*t);
  torch::Tensor out = torch::empty(shape, torch::kFloat32);
  std::memcpy(out.data_ptr(), values->data(), values->size() * 4);
  return out;
}

// PEFT's logits of the parity inputs for the model in `dir` with the
// adapter in `adapter_dir`.
torch::Tensor PeftLogits(const std::string& dir, const std::string& adapter_dir,
                         const std::string& out) {
  std::string cmd = std::string(LORAD_PYTHON) + " " + kScript +
                    " peft-logits " + dir + " " + adapter_dir + " " + out;
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return ReadTensor(out, "logits");
}

class HfParityTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!HavePython()) GTEST_SKIP() << "venv with transformers/peft missing";
    dir_ = ::testing::TempDir() + "/hf_parity_" + GetParam();
    static std::set<std::string>* built = new std::set<std::string>();
    if (built->count(dir_)) return;  // one model per arch and process
    built->insert(dir_);
    std::filesystem::remove_all(dir_);
    std::string cmd = std::string(LORAD_PYTHON) + " " + kScript +
                      " make-model " + GetParam() + " " + dir_;
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    ASSERT_TRUE(WriteFileAtomic(dir_ + "/tokenizer.json",
                                model::MakeByteLevelTokenizerJson())
                    .ok());
    // The file as it is: without a tokenizer class, transformers (and
    // lorad) would rebuild a Gemma model's tokenizer as GemmaTokenizer.
    ASSERT_TRUE(
        WriteFileAtomic(dir_ + "/tokenizer_config.json",
                        R"({"tokenizer_class": "PreTrainedTokenizerFast"})")
            .ok());
  }
  // PEFT's logits for the model with the adapter written at `adapter_dir`
  // differ from the base's (the adapter does something) and equal ours
  // with `adapter`; returns ours.
  torch::Tensor ExpectPeftAgrees(const LlamaModel& model,
                                 const AdapterSet& adapter,
                                 const std::string& adapter_dir) {
    torch::Tensor want =
        PeftLogits(dir_, adapter_dir, adapter_dir + "_peft.safetensors");
    torch::Tensor ids = ReadTensor(dir_ + "/logits.safetensors", "input_ids");
    torch::Tensor base = ReadTensor(dir_ + "/logits.safetensors", "logits");
    torch::NoGradGuard no_grad;
    ForwardOptions fo;
    fo.adapter = &adapter;
    torch::Tensor got = model.Forward(ids, fo);
    EXPECT_GT((want - base).abs().max().item<float>(), 1e-3f)
        << "the adapter should change PEFT's logits";
    EXPECT_LT((got - want).abs().max().item<float>(), 1e-4f);
    return got;
  }

  std::string dir_;
};

TEST_P(HfParityTest, Fp32LogitsMatchTransformers) {
  LoadOptions o;
  o.quantize = false;
  auto model = LlamaModel::Load(dir_, o);
  ASSERT_TRUE(model.ok()) << model.status();
  torch::Tensor ids = ReadTensor(dir_ + "/logits.safetensors", "input_ids");
  torch::Tensor want = ReadTensor(dir_ + "/logits.safetensors", "logits");
  torch::NoGradGuard no_grad;
  torch::Tensor got = (*model)->Forward(ids, ForwardOptions());
  EXPECT_LT((got - want).abs().max().item<float>(), 1e-4f);

  // The serving path: both rows as one ragged batch, the prompt but its last
  // token first, then that token; the logits of each row's last position.
  const int64_t rows = ids.size(0), t = ids.size(1);
  std::vector<KvCache> caches;
  for (int64_t r = 0; r < rows; ++r)
    caches.push_back((*model)->ReserveCache(t));
  RaggedBatch prefill;
  prefill.ids = ids.narrow(1, 0, t - 1).reshape({-1});
  RaggedBatch step;
  step.ids = ids.narrow(1, t - 1, 1).reshape({-1});
  for (int64_t r = 0; r < rows; ++r) {
    prefill.lengths.push_back(t - 1);
    prefill.caches.push_back(&caches[r]);
    step.lengths.push_back(1);
    step.caches.push_back(&caches[r]);
  }
  (*model)->ForwardRagged(prefill);
  torch::Tensor last = (*model)->ForwardRagged(step);
  EXPECT_LT((last - want.select(1, t - 1)).abs().max().item<float>(), 1e-4f);
}

// The first row's prompt is BOS + "Hello, worl": as text, the tokenizer's
// post-processor must give back that BOS, and greedy decoding the same
// tokens as transformers' generate(), stopping where it stops.
TEST_P(HfParityTest, GreedyGenerationMatchesTransformers) {
  LoadOptions o;
  o.quantize = false;
  auto model = LlamaModel::Load(dir_, o);
  ASSERT_TRUE(model.ok()) << model.status();
  torch::Tensor want = ReadTensor(dir_ + "/logits.safetensors", "greedy");
  std::vector<int32_t> want_ids;
  for (int64_t i = 0; i < want.size(0); ++i) {
    want_ids.push_back(static_cast<int32_t>(want[i].item<int64_t>()));
  }
  // generate() reports the EOS it stopped on; lorad does not stream it.
  if (!want_ids.empty() && want_ids.back() == 257) want_ids.pop_back();
  lorad::worker::v1::Sampling request;
  request.set_prompt("Hello, worl");
  request.set_max_new_tokens(4);
  request.set_temperature(0);
  std::vector<int32_t> got;
  absl::Status status =
      Generate(**model, nullptr, request,
               [&got](const lorad::worker::v1::GenerateChunk& chunk) {
                 got.insert(got.end(), chunk.token_ids().begin(),
                            chunk.token_ids().end());
                 return true;
               });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(got, want_ids);
}

// The same NF4 bytes as bitsandbytes (nf4_test) must give the logits
// transformers gives with bitsandbytes' NF4 layers: equal up to float
// rounding, far closer than to the fp32 model.
TEST_P(HfParityTest, Nf4LogitsMatchBitsandbytesInTransformers) {
  auto model = LlamaModel::Load(dir_, LoadOptions());
  ASSERT_TRUE(model.ok()) << model.status();
  torch::Tensor ids = ReadTensor(dir_ + "/logits.safetensors", "input_ids");
  torch::Tensor fp32 = ReadTensor(dir_ + "/logits.safetensors", "logits");
  torch::Tensor want = ReadTensor(dir_ + "/logits.safetensors", "nf4_logits");
  torch::NoGradGuard no_grad;
  torch::Tensor got = (*model)->Forward(ids, ForwardOptions());
  const float quantization_error = (fp32 - want).abs().mean().item<float>();
  ASSERT_GT(quantization_error, 1e-3f) << "NF4 should move the logits";
  EXPECT_LT((got - want).abs().max().item<float>(), 1e-4f)
      << "fp32 vs bitsandbytes NF4, mean abs: " << quantization_error;
}

TEST_P(HfParityTest, AdapterWeWriteGivesPeftTheSameLogits) {
  LoadOptions o;
  o.quantize = false;
  auto model = LlamaModel::Load(dir_, o);
  ASSERT_TRUE(model.ok()) << model.status();
  LoraOptions lo;
  lo.rank = 4;
  lo.alpha = 8;
  lo.target_modules = {"q_proj", "v_proj", "o_proj", "up_proj", "down_proj"};
  auto adapter =
      AdapterSet::CreateForTraining((*model)->config(), lo, 3, torch::kCPU);
  ASSERT_TRUE(adapter.ok());
  {
    torch::NoGradGuard no_grad;
    for (const auto& [k, w] : adapter->weights()) w.b.normal_(0, 0.1);
  }
  ASSERT_TRUE(adapter->SavePeft(dir_ + "/adapter", dir_).ok());
  ExpectPeftAgrees(**model, *adapter, dir_ + "/adapter");

  // And what we wrote reads back to the same tensors.
  auto reread =
      AdapterSet::LoadPeft(dir_ + "/adapter", (*model)->config(), torch::kCPU);
  ASSERT_TRUE(reread.ok()) << reread.status();
  for (const auto& [k, w] : adapter->weights()) {
    const LoraWeights* r = reread->Find(k);
    ASSERT_NE(r, nullptr) << k;
    EXPECT_TRUE(torch::equal(r->a, w.a.detach()) &&
                torch::equal(r->b, w.b.detach()))
        << k;
  }
}

// An adapter trained by a lorad fine-tune (the worker's training loop, on
// the dense base) is read by PEFT and gives there the logits it gives here.
TEST_P(HfParityTest, AdapterTrainedHereGivesPeftTheSameLogits) {
  LoadOptions o;
  o.quantize = false;
  auto model = LlamaModel::Load(dir_, o);
  ASSERT_TRUE(model.ok()) << model.status();
  std::string data;
  for (const char* w : {"alpha", "bravo", "charlie", "delta"}) {
    data += std::string("{\"prompt\": \"say ") + w +
            ":\", \"completion\": \" " + w + "\"}\n";
  }
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/train.jsonl", data).ok());
  TrainJob job;
  job.job_id = "parity";
  job.base_model_name = dir_;
  job.training_path = dir_ + "/train.jsonl";
  job.job_dir = dir_ + "/job";
  job.adapter_dir = dir_ + "/trained";
  std::filesystem::remove_all(job.job_dir);
  auto& hp = job.hp;
  hp.set_rank(4);
  hp.set_alpha(8);
  for (const char* t : {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                        "up_proj", "down_proj"}) {
    hp.add_target_modules(t);
  }
  hp.set_learning_rate(2e-2f);
  hp.set_batch_size(4);
  hp.set_gradient_accumulation(1);
  hp.set_max_grad_norm(1.0f);
  hp.set_lr_scheduler("linear");
  hp.set_max_seq_len(32);
  hp.set_seed(7);
  hp.set_max_steps(6);
  ASSERT_TRUE(RunTraining(**model, job, TrainCallbacks()).ok());
  auto adapter =
      AdapterSet::LoadPeft(job.adapter_dir, (*model)->config(), torch::kCPU);
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  const torch::Tensor got =
      ExpectPeftAgrees(**model, *adapter, job.adapter_dir);
  torch::Tensor ids = ReadTensor(dir_ + "/logits.safetensors", "input_ids");
  torch::NoGradGuard no_grad;

  // Merged into the base and written as a checkpoint of the same family,
  // it loads back (every norm of the family written) and gives the same
  // logits up to bf16 rounding.
  const std::string merged = dir_ + "/merged";
  ASSERT_TRUE((*model)->ExportMerged(&*adapter, merged, torch::kBFloat16).ok());
  auto reloaded = LlamaModel::Load(merged, o);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  torch::Tensor again = (*reloaded)->Forward(ids, ForwardOptions());
  EXPECT_LT((again - got).abs().max().item<float>(),
            0.05f * got.abs().max().item<float>());
}

// The next-token loss made a few rows at a time (a large vocabulary's path,
// forced here by a chunk of 3 rows) against the loss from the whole logits:
// the same loss per token and summed, and the same gradient reaching the
// hidden states (soft-capped for Gemma 2), in fp32 and bf16; positions
// without a label give 0 and no gradient.
TEST_P(HfParityTest, ChunkedNextTokenLossEqualsTheWholeLogits) {
  for (torch::ScalarType dtype : {torch::kFloat32, torch::kBFloat16}) {
    SCOPED_TRACE(c10::toString(dtype));
    LoadOptions o;
    o.quantize = false;
    o.dtype = dtype;
    auto loaded = LlamaModel::Load(dir_, o);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    const LlamaModel& model = **loaded;
    torch::Tensor ids = ReadTensor(dir_ + "/logits.safetensors", "input_ids");
    const int64_t rows = ids.size(0), t = ids.size(1);
    torch::Tensor labels = ids.clone();
    labels.narrow(1, 0, t / 3).fill_(model::kIgnoreLabel);  // a prompt
    labels[1][t - 2] = model::kIgnoreLabel;
    torch::Tensor hidden;
    {
      torch::NoGradGuard no_grad;
      ForwardOptions fo;
      fo.hidden_out = true;
      hidden = model.Forward(ids, fo);
    }
    // Weighted, so that each position's gradient is its own.
    const torch::Tensor weights =
        torch::arange(1, rows * (t - 1) + 1, torch::kFloat32)
            .view({rows, t - 1});
    struct Result {
      torch::Tensor each, sum, grad;
      int64_t chunk_rows = 0;
    };
    auto run = [&](int64_t chunk_bytes) {
      ScopedLogitsChunkBytes chunking(chunk_bytes);
      Result r;
      r.chunk_rows = model.LogitsChunkRows(rows * t);
      torch::Tensor h = hidden.clone().requires_grad_();
      r.each = model.NextTokenNll(h, labels, at::Reduction::None);
      (r.each * weights).sum().backward();
      r.grad = h.grad().to(torch::kFloat32);
      r.each = r.each.detach();
      r.sum = model.NextTokenNll(hidden, labels, at::Reduction::Sum);
      return r;
    };
    const Result whole = run(0);
    const Result chunked = run(3 * model.config().vocab_size * 4);
    EXPECT_EQ(whole.chunk_rows, 0);
    EXPECT_EQ(chunked.chunk_rows, 3);
    const double tol = dtype == torch::kFloat32 ? 1e-5 : 2e-2;
    const torch::Tensor unlabelled = labels.slice(1, 1).eq(model::kIgnoreLabel);
    EXPECT_EQ(chunked.each.masked_select(unlabelled).abs().max().item<float>(),
              0.0f);
    EXPECT_GT(whole.each.min().item<float>(), -1e-6f);
    EXPECT_LT((chunked.each - whole.each).abs().max().item<double>(),
              tol * whole.each.abs().max().item<double>());
    EXPECT_NEAR(chunked.sum.item<double>(), whole.sum.item<double>(),
                tol * whole.sum.item<double>());
    const double grad_max = whole.grad.abs().max().item<double>();
    EXPECT_GT(grad_max, 0);
    EXPECT_LT((chunked.grad - whole.grad).abs().max().item<double>(),
              tol * grad_max);
    // The last position predicts nothing; an unlabelled one gets nothing.
    EXPECT_EQ(chunked.grad.select(1, t - 1).abs().max().item<float>(), 0.0f);
    EXPECT_EQ(chunked.grad[1][t - 3].abs().max().item<float>(), 0.0f);
  }
}

INSTANTIATE_TEST_SUITE_P(Archs, HfParityTest,
                         ::testing::Values("llama", "qwen2", "qwen3", "mistral",
                                           "gemma2", "gemma3"));

}  // namespace
}  // namespace lorad::worker
