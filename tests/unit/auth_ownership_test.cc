#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "auth/ownership.h"
#include "gtest/gtest.h"
#include "store/db.h"
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
