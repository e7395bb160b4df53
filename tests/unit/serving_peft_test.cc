// Adapters made by PEFT (from PyPI) on a small random HF model give PEFT's
// logits through lorad's serving path, alone and mixed in one batch.
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>

#include "gtest/gtest.h"
#include "lorad/common/files.h"
#include "lorad/model/safetensors.h"
#include "lorad/model/tokenizer.h"
#include "lorad/worker/adapter_pool.h"
#include "lorad/worker/batched_lora.h"
#include "lorad/worker/llama_model.h"

namespace lorad::worker {
namespace {

const std::string kParity =
    std::string(LORAD_SOURCE_DIR) + "/tests/golden/hf_parity.py";
const std::string kPeft =
    std::string(LORAD_SOURCE_DIR) + "/tests/golden/serving_peft.py";

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
  if (t->dtype == model::DType::kI64) {
    torch::Tensor out = torch::empty(t->shape, torch::kLong);
    std::memcpy(out.data_ptr(), t->data, t->nbytes);
    return out;
  }
  auto values = model::ToFloat32(*t);
  torch::Tensor out = torch::empty(t->shape, torch::kFloat32);
  std::memcpy(out.data_ptr(), values->data(), values->size() * 4);
  return out;
}

class PeftServingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!HavePython()) return;
    dir_ = new std::string(::testing::TempDir() + "/serving_peft");
    std::filesystem::remove_all(*dir_);
    std::string cmd = std::string(LORAD_PYTHON) + " " + kParity +
                      " make-model llama " + *dir_ + "/model";
    ok_ = std::system(cmd.c_str()) == 0 &&
          WriteFileAtomic(*dir_ + "/model/tokenizer.json",
                          model::MakeByteLevelTokenizerJson())
              .ok();
    struct Spec {
      const char* name;
      const char* args;
    } specs[] = {{"qv4", "4 8 q_proj,v_proj 1"},
                 {"all8",
                  "8 16 q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,"
                  "down_proj 2"},
                 {"mlp2", "2 5 gate_proj,down_proj 3"}};
    for (const Spec& s : specs) {
      cmd = std::string(LORAD_PYTHON) + " " + kPeft + " make-adapter " + *dir_ +
            "/model " + *dir_ + "/" + s.name + " " + s.args;
      ok_ = ok_ && std::system(cmd.c_str()) == 0;
    }
  }
  void SetUp() override {
    if (!HavePython()) GTEST_SKIP() << "venv with transformers/peft missing";
    ASSERT_TRUE(ok_) << "making the PEFT adapters failed";
    LoadOptions o;
    o.quantize = false;
    auto model = LlamaModel::Load(*dir_ + "/model", o);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
    AdapterPoolOptions po;
    po.base_model_names = {*dir_ + "/model"};
    pool_ = std::make_unique<AdapterPool>(model_.get(), po);
    for (const char* n : {"qv4", "all8", "mlp2"}) {
      auto info = pool_->Load(n, 1, *dir_ + "/" + n, false);
      ASSERT_TRUE(info.ok()) << info.status();
    }
  }
  torch::Tensor PeftLogits(const std::string& name) {
    return ReadTensor(*dir_ + "/" + name + "/peft_logits.safetensors",
                      "logits");
  }

  static std::string* dir_;
  static bool ok_;
  std::unique_ptr<LlamaModel> model_;
  std::unique_ptr<AdapterPool> pool_;
};
std::string* PeftServingTest::dir_ = nullptr;
bool PeftServingTest::ok_ = false;

TEST_F(PeftServingTest, PeftAdapterLoadsWithItsConfig) {
  std::map<std::string, PooledAdapterInfo> infos;
  for (const auto& i : pool_->List()) infos[i.name] = i;
  EXPECT_EQ(infos["qv4"].rank, 4);
  EXPECT_EQ(infos["qv4"].target_modules,
            (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_EQ(infos["all8"].target_modules.size(), 7u);
  EXPECT_EQ(infos["mlp2"].rank, 2);
}

TEST_F(PeftServingTest, FullSequenceLogitsMatchPeft) {
  torch::Tensor ids =
      ReadTensor(*dir_ + "/qv4/peft_logits.safetensors", "input_ids");
  torch::NoGradGuard no_grad;
  for (const char* n : {"qv4", "all8", "mlp2"}) {
    auto adapter = pool_->Acquire(n);
    ASSERT_TRUE(adapter.ok());
    ForwardOptions fo;
    fo.adapter = adapter->get();
    torch::Tensor got = model_->Forward(ids, fo);
    torch::Tensor want = PeftLogits(n);
    EXPECT_LT((got - want).abs().max().item<float>(), 1e-4f) << n;
  }
}

// Every row of one ragged batch (three PEFT adapters and the base, each row
// a whole prompt, then one decode step) matches PEFT at its last position.
TEST_F(PeftServingTest, MixedServingBatchMatchesPeftPerRow) {
  torch::Tensor ids =
      ReadTensor(*dir_ + "/qv4/peft_logits.safetensors", "input_ids");
  const int64_t t = ids.size(1);
  const std::vector<std::string> names = {"qv4", "all8", "mlp2", ""};
  std::vector<std::shared_ptr<const AdapterSet>> adapters;
  for (const std::string& n : names) {
    adapters.push_back(n.empty() ? nullptr : *pool_->Acquire(n));
  }
  std::vector<KvCache> caches;
  for (size_t i = 0; i < names.size(); ++i) {
    caches.push_back(model_->ReserveCache(t));
  }
  // Prefill all but the last token of each row (rows alternate between the
  // two input sequences), then decode the last token in one batched step.
  auto run = [&](int64_t from, int64_t len) {
    std::vector<int64_t> flat;
    std::vector<LoraSegment> segs;
    RaggedBatch batch;
    for (size_t i = 0; i < names.size(); ++i) {
      torch::Tensor row = ids[i % 2].slice(0, from, from + len);
      segs.push_back(
          {adapters[i].get(), static_cast<int64_t>(flat.size()), len});
      for (int64_t j = 0; j < len; ++j) flat.push_back(row[j].item<int64_t>());
      batch.lengths.push_back(len);
      batch.caches.push_back(&caches[i]);
    }
    batch.ids = torch::tensor(flat, torch::kLong);
    BatchedLora lora = BuildBatchedLora(segs, model_->config(),
                                        model_->device(), model_->dtype());
    batch.lora = &lora;
    return model_->ForwardRagged(batch);
  };
  run(0, t - 1);
  torch::Tensor last = run(t - 1, 1);
  torch::Tensor base =
      ReadTensor(*dir_ + "/model/logits.safetensors", "logits");
  for (size_t i = 0; i < names.size(); ++i) {
    torch::Tensor want = names[i].empty() ? base[i % 2][t - 1]
                                          : PeftLogits(names[i])[i % 2][t - 1];
    EXPECT_LT((last[i] - want).abs().max().item<float>(), 1e-4f)
        << "row " << i << " (" << names[i] << ")";
  }
}

}  // namespace
}  // namespace lorad::worker
