// A job's state change and its events are one transaction: when storing an
// event fails, the state change is not stored either. Fine-tune jobs and
// batch inference jobs alike.
#include <sqlite3.h>

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "store/batch_job_store.h"
#include "store/db.h"
#include "store/job_store.h"
#include "test_dir.h"

namespace lorad::server {
namespace {

class FaultsJobTransaction : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = FreshTestDir("faults_job_transaction") + "/lorad.db";
    absl::StatusOr<std::unique_ptr<Db>> db = Db::Open(path_);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(db_.get());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    v1::FineTuneJob job;
    job.set_id("ftjob-1");
    job.set_state(v1::QUEUED);
    ASSERT_TRUE(store_->CreateJob(job).ok());
  }

  // Makes every insert into `table` fail, through a second connection as
  // another process would.
  void BreakEventInserts(const std::string& table = "job_events") {
    sqlite3* other = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
    char* error = nullptr;
    const std::string sql = "CREATE TRIGGER no_events_" + table +
                            " BEFORE INSERT ON " + table +
                            " BEGIN SELECT RAISE(ABORT, 'injected event "
                            "failure'); END;";
    const int rc = sqlite3_exec(other, sql.c_str(), nullptr, nullptr, &error);
    EXPECT_EQ(rc, SQLITE_OK) << (error ? error : "");
    sqlite3_free(error);
    sqlite3_close(other);
  }

  std::string path_;
  std::unique_ptr<Db> db_;
  std::unique_ptr<JobStore> store_;
};

std::vector<v1::JobEvent> RunningEvent() {
  std::vector<v1::JobEvent> events(1);
  events[0].mutable_state()->set_state(v1::RUNNING);
  return events;
}

TEST_F(FaultsJobTransaction, StateAndEventsAreStoredTogether) {
  v1::FineTuneJob job = *store_->GetJob("ftjob-1");
  job.set_state(v1::RUNNING);
  std::vector<v1::JobEvent> events = RunningEvent();
  ASSERT_TRUE(store_->UpdateJobWithEvents(job, events).ok());
  EXPECT_EQ(events[0].job_id(), "ftjob-1");
  EXPECT_EQ(events[0].seq(), 1);
  EXPECT_EQ(store_->GetJob("ftjob-1")->state(), v1::RUNNING);
  absl::StatusOr<std::vector<v1::JobEvent>> stored =
      store_->EventsAfter("ftjob-1", 0, 0);
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].state().state(), v1::RUNNING);
}

TEST_F(FaultsJobTransaction, FailedEventLeavesTheStateUnchanged) {
  BreakEventInserts();
  v1::FineTuneJob job = *store_->GetJob("ftjob-1");
  job.set_state(v1::RUNNING);
  std::vector<v1::JobEvent> events = RunningEvent();
  absl::Status status = store_->UpdateJobWithEvents(job, events);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("injected event failure"), std::string::npos)
      << status;
  EXPECT_EQ(store_->GetJob("ftjob-1")->state(), v1::QUEUED)
      << "the state change was stored without its event";
  EXPECT_TRUE(store_->EventsAfter("ftjob-1", 0, 0)->empty());
}

TEST_F(FaultsJobTransaction, BatchJobStateAndEventsAreOneTransaction) {
  absl::StatusOr<std::unique_ptr<BatchJobStore>> batches =
      BatchJobStore::Open(db_.get());
  ASSERT_TRUE(batches.ok()) << batches.status();
  v1::BatchJob job;
  job.set_id("batch-1");
  job.set_state(v1::QUEUED);
  ASSERT_TRUE((*batches)->CreateBatchJob(job).ok());

  job.set_state(v1::RUNNING);
  std::vector<v1::JobEvent> events = RunningEvent();
  ASSERT_TRUE((*batches)->UpdateBatchJobWithEvents(job, events).ok());
  EXPECT_EQ(events[0].job_id(), "batch-1");
  EXPECT_EQ(events[0].seq(), 1);
  EXPECT_EQ((*batches)->GetBatchJob("batch-1")->state(), v1::RUNNING);

  BreakEventInserts("batch_events");
  job.set_state(v1::SUCCEEDED);
  events = RunningEvent();
  events[0].mutable_state()->set_state(v1::SUCCEEDED);
  absl::Status status = (*batches)->UpdateBatchJobWithEvents(job, events);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("injected event failure"), std::string::npos)
      << status;
  EXPECT_EQ((*batches)->GetBatchJob("batch-1")->state(), v1::RUNNING)
      << "the state change was stored without its event";
  EXPECT_EQ((*batches)->BatchEventsAfter("batch-1", 0, 0)->size(), 1u);
}

}  // namespace
}  // namespace lorad::server
