#include "store/serving_store.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "store/job_store.h"

namespace lorad::server {
namespace {

std::string TestDb() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) /
                              "serving_store_test" / info->name();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return (dir / "lorad.db").string();
}

v1::BatchJob Job(const std::string& id, int64_t created, v1::JobState state) {
  v1::BatchJob job;
  job.set_id(id);
  job.set_created_at_unix(created);
  job.set_state(state);
  return job;
}

TEST(ServingStoreTest, AdaptersPutGetListDelete) {
  auto store = ServingStore::Open(TestDb());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE(absl::IsNotFound((*store)->GetAdapter("a").status()));
  v1::Adapter a;
  a.set_name("b");
  a.set_version(1);
  ASSERT_TRUE((*store)->PutAdapter(a).ok());
  a.set_name("a");
  ASSERT_TRUE((*store)->PutAdapter(a).ok());
  a.set_version(2);
  ASSERT_TRUE((*store)->PutAdapter(a).ok());  // replaces
  auto got = (*store)->GetAdapter("a");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version(), 2);
  auto all = (*store)->ListAdapters();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name(), "a");
  EXPECT_EQ((*all)[1].name(), "b");
  EXPECT_TRUE((*store)->DeleteAdapter("a").ok());
  EXPECT_TRUE(absl::IsNotFound((*store)->DeleteAdapter("a")));
  EXPECT_EQ((*store)->ListAdapters()->size(), 1u);
}

// The serving tables live beside the JobStore's in one file, and both
// connections work on it at once.
TEST(ServingStoreTest, SharesTheJobStoreFile) {
  const std::string db = TestDb();
  auto jobs = JobStore::Open(db);
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  auto store = ServingStore::Open(db);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->created_registry());
  v1::Dataset ds;
  ds.set_id("ds-1");
  ASSERT_TRUE((*jobs)->PutDataset(ds).ok());
  ASSERT_TRUE((*store)->CreateBatchJob(Job("batch-1", 5, v1::QUEUED)).ok());
  store->reset();
  auto reopened = ServingStore::Open(db);
  ASSERT_TRUE(reopened.ok());
  EXPECT_FALSE((*reopened)->created_registry());
  EXPECT_TRUE((*reopened)->GetBatchJob("batch-1").ok());
  EXPECT_TRUE((*jobs)->GetDataset("ds-1").ok());
}

TEST(ServingStoreTest, BatchJobsByStateAndOrder) {
  auto store = *ServingStore::Open(TestDb());
  ASSERT_TRUE(store->CreateBatchJob(Job("batch-b", 2, v1::QUEUED)).ok());
  ASSERT_TRUE(store->CreateBatchJob(Job("batch-a", 1, v1::RUNNING)).ok());
  ASSERT_TRUE(store->CreateBatchJob(Job("batch-c", 3, v1::QUEUED)).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(
      store->CreateBatchJob(Job("batch-c", 3, v1::QUEUED))));
  auto queued = store->BatchJobsInStates({v1::QUEUED});
  ASSERT_TRUE(queued.ok());
  ASSERT_EQ(queued->size(), 2u);
  EXPECT_EQ((*queued)[0].id(), "batch-b");
  auto newest = store->ListBatchJobs(2);
  ASSERT_TRUE(newest.ok());
  ASSERT_EQ(newest->size(), 2u);
  EXPECT_EQ((*newest)[0].id(), "batch-c");
  v1::BatchJob a = Job("batch-a", 1, v1::SUCCEEDED);
  ASSERT_TRUE(store->UpdateBatchJob(a).ok());
  EXPECT_EQ(store->GetBatchJob("batch-a")->state(), v1::SUCCEEDED);
  EXPECT_TRUE(absl::IsNotFound(store->UpdateBatchJob(Job("x", 1, v1::QUEUED))));
}

TEST(ServingStoreTest, EventsGetConsecutiveSeqs) {
  auto store = *ServingStore::Open(TestDb());
  v1::JobEvent event;
  event.set_job_id("batch-1");
  EXPECT_TRUE(absl::IsNotFound(store->AppendBatchEvent(event).status()));
  ASSERT_TRUE(store->CreateBatchJob(Job("batch-1", 1, v1::QUEUED)).ok());
  for (int i = 0; i < 3; ++i) {
    event.mutable_batch()->set_completed(i);
    auto seq = store->AppendBatchEvent(event);
    ASSERT_TRUE(seq.ok());
    EXPECT_EQ(*seq, i + 1);
  }
  auto after = store->BatchEventsAfter("batch-1", 1, 0);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 2u);
  EXPECT_EQ((*after)[0].seq(), 2);
  EXPECT_EQ((*after)[1].batch().completed(), 2);
}

TEST(ServingStoreTest, ResultsComeBackInIndexOrder) {
  auto store = *ServingStore::Open(TestDb());
  for (int64_t i : {4, 0, 2}) {
    ASSERT_TRUE(
        store->PutBatchResult("batch-1", i, "{\"i\":" + std::to_string(i) + "}")
            .ok());
  }
  ASSERT_TRUE(store->PutBatchResult("batch-1", 2, "{\"again\":2}").ok());
  ASSERT_TRUE(store->PutBatchResult("batch-2", 1, "{}").ok());
  auto indices = store->BatchResultIndices("batch-1");
  ASSERT_TRUE(indices.ok());
  EXPECT_EQ(*indices, (std::vector<int64_t>{0, 2, 4}));
  auto page = store->BatchResults("batch-1", 0, 1);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].first, 2);
  EXPECT_EQ((*page)[0].second, "{\"again\":2}");
  EXPECT_EQ(store->BatchResults("batch-1", -1, 0)->size(), 3u);
}

}  // namespace
}  // namespace lorad::server
