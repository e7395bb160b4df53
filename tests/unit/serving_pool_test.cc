// AdapterPool: validation, atomic replace, LRU residency, pinning, unload.
#include <torch/torch.h>

#include <atomic>

#include "gtest/gtest.h"
#include "lorad/model/block_linears.h"
#include "lorad/model/safetensors.h"
#include "lorad/worker/adapter_pool.h"
#include "serving_test_util.h"

namespace lorad::worker {
namespace {

using testing::AllTargets;
using testing::WriteAdapter;

class AdapterPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::TestRoot("pool");
    model_ = testing::LoadTiny(root_);
    ASSERT_NE(model_, nullptr);
  }
  std::unique_ptr<AdapterPool> MakePool(int max_device) {
    AdapterPoolOptions o;
    o.max_device_adapters = max_device;
    o.base_model_names = {"tiny", model_->dir()};
    o.now_ms = [this] { return ++clock_; };
    return std::make_unique<AdapterPool>(model_.get(), o);
  }
  std::string Adapter(const std::string& name, int64_t rank = 4,
                      uint64_t seed = 1) {
    std::string dir = root_ + "/adapters/" + name;
    WriteAdapter(dir, model_->config(), rank, 2.0 * rank, AllTargets(), seed);
    return dir;
  }
  std::map<std::string, bool> Residency(const AdapterPool& pool) {
    std::map<std::string, bool> out;
    for (const auto& i : pool.List()) out[i.name] = i.on_device;
    return out;
  }

  std::string root_;
  std::unique_ptr<LlamaModel> model_;
  int64_t clock_ = 0;
};

TEST_F(AdapterPoolTest, LoadListsAdapterWithItsShape) {
  auto pool = MakePool(4);
  auto info = pool->Load("a", 3, Adapter("a", 8), /*pinned=*/false);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, 3);
  EXPECT_EQ(info->rank, 8);
  EXPECT_EQ(info->target_modules.size(), 7u);
  EXPECT_TRUE(info->on_device);
  const model::ModelConfig& c = model_->config();
  int64_t per_layer = 0;
  for (const model::BlockLinear& l : model::BlockLinears(c)) {
    per_layer += 8 * (l.in + l.out);
  }
  EXPECT_EQ(info->size_bytes, per_layer * c.num_hidden_layers * 4);
  ASSERT_EQ(pool->List().size(), 1u);
  EXPECT_TRUE(pool->Acquire("a").ok());
  EXPECT_TRUE(absl::IsNotFound(pool->Acquire("b").status()));
}

TEST_F(AdapterPoolTest, LeastRecentlyUsedMoveToHostAndComeBack) {
  auto pool = MakePool(2);
  for (const char* n : {"a", "b", "c"}) {
    ASSERT_TRUE(pool->Load(n, 1, Adapter(n), false).ok());
  }
  // Loading c evicted a, the least recently used.
  EXPECT_EQ(Residency(*pool), (std::map<std::string, bool>{
                                  {"a", false}, {"b", true}, {"c", true}}));
  // Using a brings it back and sends b (now the oldest) to host.
  auto a = pool->Acquire("a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(Residency(*pool), (std::map<std::string, bool>{
                                  {"a", true}, {"b", false}, {"c", true}}));
  // The adapter that came back holds the same weights.
  auto reread = pool->ReadAdapter(root_ + "/adapters/a");
  ASSERT_TRUE(reread.ok());
  for (const auto& [k, w] : reread->weights()) {
    ASSERT_NE((*a)->Find(k), nullptr) << k;
    EXPECT_TRUE(torch::equal((*a)->Find(k)->b, w.b)) << k;
  }
}

TEST_F(AdapterPoolTest, PinnedAdaptersStayOnDevice) {
  auto pool = MakePool(2);
  ASSERT_TRUE(pool->Load("pinned", 1, Adapter("pinned"), true).ok());
  ASSERT_TRUE(pool->Load("b", 1, Adapter("b"), false).ok());
  ASSERT_TRUE(pool->Load("c", 1, Adapter("c"), false).ok());
  ASSERT_TRUE(pool->Acquire("b").ok());
  auto r = Residency(*pool);
  EXPECT_TRUE(r["pinned"]);
  EXPECT_TRUE(r["b"]);
  EXPECT_FALSE(r["c"]);
  // Two pinned would fill the bound; a third pin is refused.
  ASSERT_TRUE(pool->Load("p2", 1, Adapter("p2"), true).ok());
  auto third = pool->Load("p3", 1, Adapter("p3"), true);
  EXPECT_TRUE(absl::IsResourceExhausted(third.status())) << third.status();
  EXPECT_FALSE(pool->Contains("p3"));
}

TEST_F(AdapterPoolTest, ReplaceIsAtomicAndOldHoldersKeepTheirVersion) {
  auto pool = MakePool(4);
  ASSERT_TRUE(pool->Load("x", 1, Adapter("x1", 4, 11), false).ok());
  auto old = pool->Acquire("x");
  ASSERT_TRUE(old.ok());
  std::weak_ptr<const AdapterSet> old_weak = *old;
  ASSERT_TRUE(pool->Load("x", 2, Adapter("x2", 8, 22), false).ok());
  auto fresh = pool->Acquire("x");
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ((*old)->options().rank, 4);
  EXPECT_EQ((*fresh)->options().rank, 8);
  EXPECT_EQ(pool->List()[0].version, 2);
  // The pool kept no reference to the old version.
  old->reset();
  EXPECT_TRUE(old_weak.expired());
}

TEST_F(AdapterPoolTest, UnloadDropsEveryReference) {
  auto pool = MakePool(4);
  ASSERT_TRUE(pool->Load("a", 1, Adapter("a"), false).ok());
  std::weak_ptr<const AdapterSet> weak;
  {
    auto held = pool->Acquire("a");
    ASSERT_TRUE(held.ok());
    weak = *held;
    ASSERT_TRUE(pool->Unload("a").ok());
    EXPECT_FALSE(weak.expired()) << "a running request keeps it";
  }
  EXPECT_TRUE(weak.expired());
  EXPECT_TRUE(absl::IsNotFound(pool->Unload("a")));
  EXPECT_TRUE(pool->List().empty());
}

TEST_F(AdapterPoolTest, BadAdaptersAreRefusedAndNothingChanges) {
  auto pool = MakePool(4);
  ASSERT_TRUE(pool->Load("good", 1, Adapter("good", 4, 5), false).ok());
  auto before = pool->Acquire("good");
  ASSERT_TRUE(before.ok());

  // Another base model's adapter (same shapes, different name).
  std::string other = root_ + "/adapters/other";
  WriteAdapter(other, model_->config(), 4, 8, AllTargets(), 3, "meta/Other-7B");
  // Shapes of a wider model.
  model::ModelConfig wide = model_->config();
  wide.hidden_size = 128;
  wide.head_dim = 32;
  std::string shapes = root_ + "/adapters/shapes";
  WriteAdapter(shapes, wide, 4, 8, {"q_proj"}, 3);
  // A target module the base does not have.
  std::string unknown = root_ + "/adapters/unknown";
  WriteAdapter(unknown, model_->config(), 4, 8, {"q_proj"}, 3);
  {
    auto file =
        model::SafetensorsFile::Open(unknown + "/adapter_model.safetensors");
    ASSERT_TRUE(file.ok());
    std::vector<model::TensorToWrite> tensors;
    for (const model::TensorInfo& t : (*file)->tensors()) {
      tensors.push_back(
          {t.name, t.dtype, t.shape,
           std::string_view(reinterpret_cast<const char*>(t.data), t.nbytes)});
    }
    std::vector<float> a(4 * 64, 0.1f), b(64 * 4, 0.1f);
    const std::string p = "base_model.model.model.layers.0.self_attn.";
    tensors.push_back(
        {p + "qkv_proj.lora_A.weight",
         model::DType::kF32,
         {4, 64},
         std::string_view(reinterpret_cast<char*>(a.data()), a.size() * 4)});
    tensors.push_back(
        {p + "qkv_proj.lora_B.weight",
         model::DType::kF32,
         {64, 4},
         std::string_view(reinterpret_cast<char*>(b.data()), b.size() * 4)});
    std::string out = unknown + "/adapter_model.safetensors.new";
    ASSERT_TRUE(model::WriteSafetensors(out, std::move(tensors), {}).ok());
    file->reset();
    std::filesystem::rename(out, unknown + "/adapter_model.safetensors");
  }
  // Integer weights.
  std::string ints = root_ + "/adapters/ints";
  {
    std::filesystem::create_directories(ints);
    std::filesystem::copy_file(root_ + "/adapters/good/adapter_config.json",
                               ints + "/adapter_config.json");
    std::vector<int32_t> a(4 * 64, 1), b(64 * 4, 1);
    const std::string p = "base_model.model.model.layers.0.self_attn.q_proj.";
    ASSERT_TRUE(model::WriteSafetensors(
                    ints + "/adapter_model.safetensors",
                    {{p + "lora_A.weight",
                      model::DType::kI32,
                      {4, 64},
                      std::string_view(reinterpret_cast<char*>(a.data()),
                                       a.size() * 4)},
                     {p + "lora_B.weight",
                      model::DType::kI32,
                      {64, 4},
                      std::string_view(reinterpret_cast<char*>(b.data()),
                                       b.size() * 4)}},
                    {})
                    .ok());
  }
  struct Case {
    std::string dir;
    absl::StatusCode code;
    std::string says;
  } cases[] = {
      {other, absl::StatusCode::kFailedPrecondition, "meta/Other-7B"},
      {shapes, absl::StatusCode::kInvalidArgument, "does not fit"},
      {unknown, absl::StatusCode::kInvalidArgument,
       "does not exist in the base model"},
      {ints, absl::StatusCode::kInvalidArgument, "I32"},
      {root_ + "/adapters/missing", absl::StatusCode::kNotFound, "missing"},
  };
  for (const Case& c : cases) {
    // Refused as a new name and as a replacement of "good".
    for (const char* name : {"new", "good"}) {
      auto r = pool->Load(name, 9, c.dir, false);
      EXPECT_EQ(r.status().code(), c.code) << c.dir << ": " << r.status();
      EXPECT_NE(r.status().message().find(c.says), std::string::npos)
          << r.status();
    }
  }
  ASSERT_EQ(pool->List().size(), 1u);
  EXPECT_EQ(pool->List()[0].version, 1);
  auto after = pool->Acquire("good");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->get(), before->get());
}

TEST_F(AdapterPoolTest, ConcurrentAcquireAndReplaceNeverSeeAPartialAdapter) {
  auto pool = MakePool(1);
  std::string v1 = Adapter("v1", 4, 1), v2 = Adapter("v2", 8, 2);
  ASSERT_TRUE(pool->Load("x", 1, v1, false).ok());
  ASSERT_TRUE(pool->Load("y", 1, v2, false).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0}, seen{0}, reads{0};
  std::vector<std::thread> readers;
  const size_t modules = 7 * model_->config().num_hidden_layers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      while (!stop) {
        for (const char* n : {"x", "y"}) {
          auto a = pool->Acquire(n);
          ++reads;
          if (!a.ok() || (*a)->weights().size() != modules) {
            ++bad;
            continue;
          }
          const int64_t r = (*a)->options().rank;
          for (const auto& [k, w] : (*a)->weights()) {
            if (w.a.size(0) != r || w.b.size(1) != r) ++bad;
          }
          ++seen;
        }
      }
    });
  }
  // Readers are reading before the first replace and after the last, on a
  // loaded machine too (progress, not time, decides).
  auto wait_for_reads = [&](int n) {
    while (reads.load() < n) std::this_thread::yield();
  };
  wait_for_reads(6);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(pool->Load("x", i + 2, i % 2 ? v1 : v2, false).ok());
  }
  wait_for_reads(reads.load() + 6);
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(seen.load(), 0);
}

}  // namespace
}  // namespace lorad::worker
