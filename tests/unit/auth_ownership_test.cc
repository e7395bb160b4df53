#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "auth/ownership.h"
#include "gtest/gtest.h"
#include "store/batch_job_store.h"
#include "store/db.h"
#include "store/job_store.h"
#include "store/owner_store.h"

namespace lorad::server::auth {
namespace {

class OwnershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = ::testing::TempDir() + "/auth_ownership.db";
    std::remove(path.c_str());
    absl::StatusOr<std::unique_ptr<Db>> db = Db::Open(path);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    absl::StatusOr<std::unique_ptr<OwnerStore>> store =
        OwnerStore::Open(db_.get());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    owners_ = std::make_unique<Ownership>(store_.get());
  }

  std::unique_ptr<Db> db_;
  std::unique_ptr<OwnerStore> store_;
  std::unique_ptr<Ownership> owners_;
  const Identity alice_{"alice", Role::kTrainer};
  const Identity bob_{"bob", Role::kTrainer};
  const Identity admin_{"ada", Role::kAdmin};
  const Identity anonymous_{"", Role::kAdmin};
};

// A page of a non-admin's list is filtered in the query, before the limit:
// alice's five old jobs behind bob's twenty newer ones still fill her page.
TEST_F(OwnershipTest, ListPagesHoldTheCallersOwnObjectsUpToTheLimit) {
  absl::StatusOr<std::unique_ptr<JobStore>> jobs = JobStore::Open(db_.get());
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  absl::StatusOr<std::unique_ptr<BatchJobStore>> batches =
      BatchJobStore::Open(db_.get());
  ASSERT_TRUE(batches.ok()) << batches.status();
  for (int i = 0; i < 25; ++i) {
    const Identity& owner = i < 5 ? alice_ : bob_;
    v1::FineTuneJob job;
    job.set_id("ftjob-" + std::to_string(i));
    job.set_created_at_unix(1000 + i);
    ASSERT_TRUE((*jobs)->CreateJob(job).ok());
    ASSERT_TRUE(owners_->Claim(owner, Kind::kJob, job.id()).ok());
    v1::BatchJob batch;
    batch.set_id("batch-" + std::to_string(i));
    batch.set_created_at_unix(1000 + i);
    ASSERT_TRUE((*batches)->CreateBatchJob(batch).ok());
    ASSERT_TRUE(owners_->Claim(owner, Kind::kBatchJob, batch.id()).ok());
  }
  absl::StatusOr<std::vector<v1::FineTuneJob>> page =
      (*jobs)->ListJobs(5, owners_->ListFilter(alice_, Kind::kJob));
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->size(), 5u);
  EXPECT_EQ(page->front().id(), "ftjob-4");  // newest first
  EXPECT_EQ(page->back().id(), "ftjob-0");
  absl::StatusOr<std::vector<v1::BatchJob>> batch_page =
      (*batches)->ListBatchJobs(3,
                                owners_->ListFilter(alice_, Kind::kBatchJob));
  ASSERT_TRUE(batch_page.ok()) << batch_page.status();
  ASSERT_EQ(batch_page->size(), 3u);
  EXPECT_EQ(batch_page->front().id(), "batch-4");
  // An admin and an anonymous caller list everything: no filter.
  EXPECT_FALSE(owners_->ListFilter(admin_, Kind::kJob).has_value());
  EXPECT_FALSE(owners_->ListFilter(anonymous_, Kind::kJob).has_value());
  page = (*jobs)->ListJobs(5, owners_->ListFilter(admin_, Kind::kJob));
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 5u);
  EXPECT_EQ(page->front().id(), "ftjob-24");
  // Kinds do not mix: bob's jobs are not his batch jobs' ids.
  page = (*jobs)->ListJobs(100, owners_->ListFilter(bob_, Kind::kJob));
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->size(), 20u);
}

TEST_F(OwnershipTest, OthersObjectsAreNotFound) {
  ASSERT_TRUE(owners_->Claim(alice_, Kind::kJob, "ftjob-1").ok());
  EXPECT_TRUE(owners_->CheckVisible(alice_, Kind::kJob, "ftjob-1").ok());
  EXPECT_TRUE(owners_->CheckVisible(admin_, Kind::kJob, "ftjob-1").ok());
  absl::Status hidden = owners_->CheckVisible(bob_, Kind::kJob, "ftjob-1");
  EXPECT_EQ(hidden.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(hidden.message(), "job ftjob-1 not found");
  // The same id of another kind is another object.
  EXPECT_FALSE(owners_->CheckVisible(alice_, Kind::kBatchJob, "ftjob-1").ok());
  // Unowned (made without auth): admins only.
  EXPECT_FALSE(owners_->CheckVisible(alice_, Kind::kJob, "old").ok());
  EXPECT_TRUE(owners_->CheckVisible(admin_, Kind::kJob, "old").ok());
}

TEST_F(OwnershipTest, DatasetsMayHaveSeveralOwners) {
  ASSERT_TRUE(owners_->Claim(alice_, Kind::kDataset, "sha").ok());
  ASSERT_TRUE(owners_->Claim(bob_, Kind::kDataset, "sha").ok());
  ASSERT_TRUE(owners_->Claim(bob_, Kind::kDataset, "sha").ok());
  EXPECT_TRUE(owners_->CheckVisible(alice_, Kind::kDataset, "sha").ok());
  EXPECT_TRUE(owners_->CheckVisible(bob_, Kind::kDataset, "sha").ok());
  EXPECT_EQ(*store_->Owners("dataset", "sha"),
            (std::vector<std::string>{"alice", "bob"}));
}

TEST_F(OwnershipTest, AdapterNamesAreProtectedAndInherited) {
  EXPECT_TRUE(owners_->CheckAdapterName(bob_, "free").ok());
  ASSERT_TRUE(owners_->Claim(alice_, Kind::kJob, "ftjob-2").ok());
  ASSERT_TRUE(
      owners_->Inherit(Kind::kJob, "ftjob-2", Kind::kAdapter, "tiny-ft").ok());
  EXPECT_TRUE(owners_->CheckAdapterName(alice_, "tiny-ft").ok());
  EXPECT_TRUE(owners_->CheckAdapterName(admin_, "tiny-ft").ok());
  EXPECT_EQ(owners_->CheckAdapterName(bob_, "tiny-ft").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(owners_->CheckVisible(bob_, Kind::kAdapter, "tiny-ft").ok());
}

TEST_F(OwnershipTest, WithoutAuthNothingIsRecordedAndAllIsVisible) {
  ASSERT_TRUE(owners_->Claim(anonymous_, Kind::kJob, "ftjob-3").ok());
  EXPECT_TRUE(store_->Owners("job", "ftjob-3")->empty());
  EXPECT_TRUE(owners_->CheckVisible(anonymous_, Kind::kJob, "ftjob-3").ok());
  EXPECT_TRUE(owners_->CheckAdapterName(anonymous_, "any").ok());
}

}  // namespace
}  // namespace lorad::server::auth
