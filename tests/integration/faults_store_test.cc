// Regression: a store error while a job ran left it RUNNING forever. A
// trigger added to the daemon's real SQLite file makes every write that
// keeps a job RUNNING fail mid-job; the job must then end FAILED with the
// store's error, visibly, and the daemon keep serving.
#include <sqlite3.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client_util.h"
#include "daemon_process.h"
#include "gtest/gtest.h"

namespace lorad::testing {
namespace {

constexpr char kFault[] = "injected store fault";

// Adds a trigger that aborts every update leaving a job RUNNING; "" or why
// it could not.
std::string BreakRunningJobUpdates(const std::string& db_path) {
  sqlite3* db = nullptr;
  if (sqlite3_open(db_path.c_str(), &db) != SQLITE_OK) {
    std::string error = sqlite3_errmsg(db);
    sqlite3_close(db);
    return error;
  }
  sqlite3_busy_timeout(db, 30000);
  const std::string sql = absl::StrCat(
      "CREATE TRIGGER faults_store_test BEFORE UPDATE ON jobs WHEN "
      "NEW.state = ",
      static_cast<int>(v1::RUNNING), " BEGIN SELECT RAISE(ABORT, '", kFault,
      "'); END;");
  char* message = nullptr;
  std::string error;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    error = message == nullptr ? "sqlite3_exec failed" : message;
  }
  sqlite3_free(message);
  sqlite3_close(db);
  return error;
}

TEST(FaultsStoreTest, StoreErrorMidJobFailsTheJobVisibly) {
  if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
  TempDir dir;
  const std::string data_dir = dir.path() + "/data";
  auto daemon = StartWithWorker(data_dir);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  Client client((*daemon)->address());
  v1::FineTuneJob job;
  // Long enough that it is still running when the store breaks.
  grpc::Status status = StartTinyJob(client, 5000, 1000, &job);
  ASSERT_TRUE(status.ok()) << Describe(status);

  std::string broke = "not tried";
  std::vector<v1::JobEvent> events;
  status = Watch(client, job.id(), 0, &events, absl::Minutes(5),
                 [&](const v1::JobEvent& event) {
                   if (event.has_step() && broke == "not tried") {
                     broke = BreakRunningJobUpdates(data_dir + "/lorad.db");
                   }
                 });
  ASSERT_EQ(broke, "") << "the trigger was not added";
  ASSERT_TRUE(status.ok()) << Describe(status);
  ASSERT_FALSE(events.empty());
  const v1::JobEvent& last = events.back();
  ASSERT_TRUE(last.has_state()) << last.DebugString();
  EXPECT_EQ(last.state().state(), v1::FAILED);
  EXPECT_TRUE(absl::StrContains(last.state().message(), kFault))
      << last.state().message();

  v1::FineTuneJob stored;
  status = GetJob(client, job.id(), &stored);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(stored.state(), v1::FAILED);
  EXPECT_TRUE(absl::StrContains(stored.error().message(), kFault))
      << stored.DebugString();
}

}  // namespace
}  // namespace lorad::testing
