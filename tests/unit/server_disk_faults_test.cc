// What the server's writers do on a failing disk, through a
// FaultInjectionEnv: a dataset upload and an adapter registration that meet
// a full disk fail with ResourceExhausted and leave no file and no record
// behind, and the same call succeeds once the disk has room again.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fault_env.h"
#include "fault_sweep.h"
#include "gtest/gtest.h"
#include "jobs/dataset_ingest.h"
#include "jobs/timer_queue.h"
#include "lorad/model/safetensors.h"
#include "options.h"
#include "serving/adapter_registry.h"
#include "store/adapter_store.h"
#include "store/dataset_store.h"
#include "store/db.h"
#include "store/job_store.h"
#include "test_dir.h"
#include "worker_link/worker_client.h"
#include "worker_link/worker_supervisor.h"

namespace lorad::server {
namespace {

std::string TestDir() { return FreshTestDir("server_disk_faults_test"); }

// Every regular file below `dir`, relative to it.
std::vector<std::string> FilesBelow(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file()) {
      files.push_back(std::filesystem::relative(e.path(), dir).string());
    }
  }
  return files;
}

std::unique_ptr<Db> OpenDb(const std::string& dir) {
  auto db = Db::Open(dir + "/lorad.db");
  EXPECT_TRUE(db.ok()) << db.status();
  return db.ok() ? *std::move(db) : nullptr;
}

TEST(DatasetUploadFaultTest, FailedWritesLeaveNoFileAndNoRecord) {
  const std::string root = TestDir();
  auto db = OpenDb(root);
  ASSERT_NE(db, nullptr);
  auto store = DatasetStore::Open(db.get());
  ASSERT_TRUE(store.ok()) << store.status();
  const DataLayout layout(root);
  const std::string contents = "{\"text\": \"hello\"}\n{\"text\": \"again\"}\n";
  FaultInjectionEnv env;

  env.FailWrites(1);
  auto failed = IngestDataset(**store, &env, layout, "d.jsonl", contents);
  EXPECT_TRUE(absl::IsResourceExhausted(failed.status())) << failed.status();
  env.FailSyncs(1);
  EXPECT_FALSE(IngestDataset(**store, &env, layout, "d.jsonl", contents).ok());
  env.FailRenames(1);
  EXPECT_FALSE(IngestDataset(**store, &env, layout, "d.jsonl", contents).ok());
  EXPECT_TRUE(FilesBelow(layout.DatasetsDir()).empty())
      << "a partial dataset file was left behind";
  EXPECT_TRUE((*store)->ListDatasets()->empty());

  env.SetNow(absl::FromUnixSeconds(1'700'000'000));
  auto stored = IngestDataset(**store, &env, layout, "d.jsonl", contents);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->created_at_unix(), 1'700'000'000) << "the Env's clock";
  EXPECT_EQ(FilesBelow(layout.DatasetsDir()),
            std::vector<std::string>{stored->sha256() + ".jsonl"});
  EXPECT_EQ((*store)->ListDatasets()->size(), 1u);
}

// Each run on a fresh directory and database, so the fault meets the same
// sequence of calls every time.
TEST(DatasetUploadFaultTest, EveryWriteSyncAndRenameFailsCleanly) {
  const std::string root = TestDir();
  const std::string contents = "{\"text\": \"one\"}\n{\"text\": \"two\"}\n";
  FaultInjectionEnv env;
  int run = 0;
  std::unique_ptr<Db> db;
  std::unique_ptr<DatasetStore> store;
  std::unique_ptr<DataLayout> layout;
  const int points = SweepDiskFaults(
      env,
      [&] {
        store.reset();
        layout = std::make_unique<DataLayout>(absl::StrCat(root, "/", ++run));
        std::filesystem::create_directories(layout->root());
        db = OpenDb(layout->root());
        auto opened = DatasetStore::Open(db.get());
        if (!opened.ok()) return opened.status();
        store = *std::move(opened);
        return IngestDataset(*store, &env, *layout, "d.jsonl", contents)
            .status();
      },
      [&](FaultInjectionEnv::Fault fault, const absl::Status& status) {
        if (fault == FaultInjectionEnv::kWrite) {
          EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
        }
        EXPECT_TRUE(FilesBelow(layout->DatasetsDir()).empty())
            << "a partial dataset file was left behind";
        EXPECT_TRUE(store->ListDatasets()->empty());
      });
  EXPECT_GE(points, 3) << "a write, an fsync and a rename at least";
}

// A rank-4 PEFT adapter on q_proj of both layers of the tiny model.
std::string WriteTinyAdapter(const std::string& dir) {
  std::filesystem::create_directories(dir);
  Env* env = Env::Default();
  EXPECT_TRUE(
      env->WriteFileAtomic(dir + "/adapter_config.json",
                           R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8, )"
                           R"("target_modules": ["q_proj"], )"
                           R"("base_model_name_or_path": "tiny"})")
          .ok());
  const std::string a(4 * 64 * 4, '\0');
  const std::string b(64 * 4 * 4, '\0');
  std::vector<model::TensorToWrite> tensors;
  for (int layer = 0; layer < 2; ++layer) {
    const std::string key = absl::StrCat("base_model.model.model.layers.",
                                         layer, ".self_attn.q_proj.lora_");
    tensors.push_back({key + "A.weight", model::DType::kF32, {4, 64}, a});
    tensors.push_back({key + "B.weight", model::DType::kF32, {64, 4}, b});
  }
  EXPECT_TRUE(env->WriteFileAtomic(dir + "/adapter_model.safetensors",
                                   model::SerializeSafetensors(tensors, {}))
                  .ok());
  return dir;
}

TEST(AdapterRegistryFaultTest, FullDiskLeavesNoVersionAndNoRecord) {
  const std::string root = TestDir();
  auto db = OpenDb(root);
  ASSERT_NE(db, nullptr);
  auto adapters = AdapterStore::Open(db.get());
  auto jobs = JobStore::Open(db.get());
  ASSERT_TRUE(adapters.ok()) << adapters.status();
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  const std::string src = WriteTinyAdapter(root + "/upload");

  FaultInjectionEnv env;
  DaemonOptions options;
  options.data_dir = root + "/data";
  options.env = &env;
  // Never started: the registry only reaches the worker after the copy.
  WorkerSupervisor supervisor(WorkerSupervisor::Options{});
  TimerQueue timers;
  WorkerClient worker(&supervisor, &timers, WorkerClient::Options{});
  AdapterRegistry registry(options, adapters->get(), jobs->get(), &worker);

  env.FailWrites(1);
  auto failed = registry.Register("mine", src, "tiny", "", false);
  EXPECT_TRUE(absl::IsResourceExhausted(failed.status())) << failed.status();
  EXPECT_TRUE(FilesBelow(options.data_dir).empty())
      << "a partial adapter was left behind";
  EXPECT_TRUE(absl::IsNotFound((*adapters)->GetAdapter("mine").status()));

  env.FailSyncs(1);
  failed = registry.Register("mine", src, "tiny", "", false);
  EXPECT_FALSE(failed.ok());
  EXPECT_TRUE(FilesBelow(options.data_dir).empty());
  EXPECT_TRUE(absl::IsNotFound((*adapters)->GetAdapter("mine").status()));
}

TEST(AdapterRegistryFaultTest, EveryWriteSyncAndRenameFailsCleanly) {
  const std::string root = TestDir();
  const std::string src = WriteTinyAdapter(root + "/upload");
  FaultInjectionEnv env;
  // Never started: the registry only reaches the worker after the copy.
  WorkerSupervisor supervisor(WorkerSupervisor::Options{});
  TimerQueue timers;
  WorkerClient worker(&supervisor, &timers, WorkerClient::Options{});
  int run = 0;
  DaemonOptions options;
  options.env = &env;
  std::unique_ptr<AdapterRegistry> registry;
  std::unique_ptr<AdapterStore> adapters;
  std::unique_ptr<JobStore> jobs;
  std::unique_ptr<Db> db;
  const int points = SweepDiskFaults(
      env,
      [&]() -> absl::Status {
        registry.reset();
        adapters.reset();
        jobs.reset();
        const std::string dir = absl::StrCat(root, "/", ++run);
        options.data_dir = dir + "/data";
        std::filesystem::create_directories(dir);
        db = OpenDb(dir);
        auto a = AdapterStore::Open(db.get());
        auto j = JobStore::Open(db.get());
        if (!a.ok()) return a.status();
        if (!j.ok()) return j.status();
        adapters = *std::move(a);
        jobs = *std::move(j);
        registry = std::make_unique<AdapterRegistry>(options, adapters.get(),
                                                     jobs.get(), &worker);
        return registry->Register("mine", src, "tiny", "", false).status();
      },
      [&](FaultInjectionEnv::Fault fault, const absl::Status& status) {
        if (fault == FaultInjectionEnv::kWrite) {
          EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
        }
        EXPECT_TRUE(FilesBelow(options.data_dir).empty())
            << "a partial adapter was left behind";
        EXPECT_TRUE(absl::IsNotFound(adapters->GetAdapter("mine").status()));
      });
  // Two files, each written, synced and renamed.
  EXPECT_GE(points, 6);
}

}  // namespace
}  // namespace lorad::server
