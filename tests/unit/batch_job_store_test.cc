#include "store/batch_job_store.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "store/db.h"
#include "store/job_store.h"
#include "test_dir.h"

namespace lorad::server {
namespace {

std::string TestDb() {
  return FreshTestDir("batch_job_store_test") + "/lorad.db";
}

// A Db and a BatchJobStore over it (the Db declared first, destroyed last).
struct Opened {
  std::unique_ptr<Db> db;
  std::unique_ptr<BatchJobStore> store;
};

Opened OpenOrDie(const std::string& path) {
  Opened o;
  auto db = Db::Open(path);
  EXPECT_TRUE(db.ok()) << db.status();
  if (!db.ok()) return o;
  o.db = *std::move(db);
  auto store = BatchJobStore::Open(o.db.get());
  EXPECT_TRUE(store.ok()) << store.status();
  if (store.ok()) o.store = *std::move(store);
  return o;
}

v1::BatchJob Job(const std::string& id, int64_t created, v1::JobState state) {
  v1::BatchJob job;
  job.set_id(id);
  job.set_created_at_unix(created);
  job.set_state(state);
  return job;
}

// The batch tables live beside the fine-tune ones in one file, through one
// Db, and survive a reopen.
TEST(BatchJobStoreTest, SharesOneDbWithTheJobStore) {
  const std::string path = TestDb();
  {
    Opened o = OpenOrDie(path);
    ASSERT_NE(o.store, nullptr);
    auto jobs = JobStore::Open(o.db.get());
    ASSERT_TRUE(jobs.ok()) << jobs.status();
    v1::FineTuneJob job;
    job.set_id("ftjob-1");
    ASSERT_TRUE((*jobs)->CreateJob(job).ok());
    ASSERT_TRUE(o.store->CreateBatchJob(Job("batch-1", 5, v1::QUEUED)).ok());
  }
  Opened o = OpenOrDie(path);
  ASSERT_NE(o.store, nullptr);
  auto jobs = JobStore::Open(o.db.get());
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  EXPECT_TRUE(o.store->GetBatchJob("batch-1").ok());
  EXPECT_TRUE((*jobs)->GetJob("ftjob-1").ok());
  EXPECT_TRUE(absl::IsNotFound(o.store->GetBatchJob("ftjob-1").status()));
}

TEST(BatchJobStoreTest, BatchJobsByStateAndOrder) {
  Opened o = OpenOrDie(TestDb());
  ASSERT_NE(o.store, nullptr);
  BatchJobStore* store = o.store.get();
  ASSERT_TRUE(store->CreateBatchJob(Job("batch-b", 2, v1::QUEUED)).ok());
  ASSERT_TRUE(store->CreateBatchJob(Job("batch-a", 1, v1::RUNNING)).ok());
  ASSERT_TRUE(store->CreateBatchJob(Job("batch-c", 3, v1::QUEUED)).ok());
  absl::Status again = store->CreateBatchJob(Job("batch-c", 3, v1::QUEUED));
  EXPECT_TRUE(absl::IsAlreadyExists(again));
  EXPECT_NE(again.message().find("batch job batch-c"), absl::string_view::npos);
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

TEST(BatchJobStoreTest, EventsGetConsecutiveSeqs) {
  Opened o = OpenOrDie(TestDb());
  ASSERT_NE(o.store, nullptr);
  BatchJobStore* store = o.store.get();
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

TEST(BatchJobStoreTest, ResultsComeBackInIndexOrder) {
  Opened o = OpenOrDie(TestDb());
  ASSERT_NE(o.store, nullptr);
  BatchJobStore* store = o.store.get();
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
