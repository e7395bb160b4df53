// The job store's commits (state changes and their events) are durable:
// the connection runs WAL with synchronous=FULL, so a commit is on disk
// before it returns.
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "store/db.h"
#include "test_dir.h"

namespace lorad::server {
namespace {

TEST(FaultsDbDurability, CommitsAreSynchronousFull) {
  const std::string path = FreshTestDir("faults_db_durability") + "/lorad.db";
  absl::StatusOr<std::unique_ptr<Db>> db = Db::Open(path);
  ASSERT_TRUE(db.ok()) << db.status();
  int64_t synchronous = -1;
  std::string journal_mode;
  const Op op{"test", "read pragmas"};
  ASSERT_TRUE((*db)
                  ->Query(op, "PRAGMA synchronous", {},
                          [&](const Row& row) {
                            synchronous = row.Int(0);
                            return absl::OkStatus();
                          })
                  .ok());
  ASSERT_TRUE((*db)
                  ->Query(op, "PRAGMA journal_mode", {},
                          [&](const Row& row) {
                            journal_mode = std::string(row.Text(0));
                            return absl::OkStatus();
                          })
                  .ok());
  EXPECT_EQ(synchronous, 2) << "2 is FULL; 1 would be NORMAL";
  EXPECT_EQ(journal_mode, "wal");
}

}  // namespace
}  // namespace lorad::server
