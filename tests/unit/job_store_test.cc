#include "store/job_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace lorad::server {
namespace {

namespace v1 = ::lorad::v1;
using ::google::protobuf::util::MessageDifferencer;

// A fresh directory for the running test.
std::string TestDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) /
                              "job_store_test" / info->name();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::unique_ptr<JobStore> OpenOrDie(const std::string& path) {
  auto store = JobStore::Open(path);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(*store) : nullptr;
}

v1::Dataset MakeDataset(const std::string& id, int64_t created) {
  v1::Dataset ds;
  ds.set_id(id);
  ds.set_sha256("ab" + id);
  ds.set_filename(id + ".jsonl");
  ds.set_size_bytes(1234);
  ds.set_num_examples(10);
  ds.set_format("chat");
  ds.set_created_at_unix(created);
  return ds;
}

v1::FineTuneJob MakeJob(const std::string& id, int64_t created,
                        v1::JobState state = v1::QUEUED) {
  v1::FineTuneJob job;
  job.set_id(id);
  job.set_model("tiny-llama");
  job.set_training_file("ds-1");
  job.set_state(state);
  job.set_created_at_unix(created);
  job.mutable_hyperparameters()->set_rank(16);
  job.mutable_hyperparameters()->add_target_modules("q_proj");
  job.set_last_loss(1.25f);
  return job;
}

v1::JobEvent LogEvent(const std::string& job_id, const std::string& text) {
  v1::JobEvent ev;
  ev.set_job_id(job_id);
  ev.set_log(text);
  return ev;
}

std::vector<std::string> Ids(const auto& messages) {
  std::vector<std::string> ids;
  for (const auto& m : messages) ids.push_back(m.id());
  return ids;
}

// Runs one PRAGMA through a separate sqlite3 connection.
std::string PragmaOf(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr),
            SQLITE_OK);
  std::string value;
  auto cb = [](void* out, int n, char** values, char**) {
    if (n > 0 && values[0]) *static_cast<std::string*>(out) = values[0];
    return 0;
  };
  EXPECT_EQ(sqlite3_exec(db, sql, cb, &value, nullptr), SQLITE_OK);
  sqlite3_close(db);
  return value;
}

TEST(JobStoreTest, DatasetRoundTripNewestFirst) {
  auto store = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutDataset(MakeDataset("ds-a", 100)).ok());
  ASSERT_TRUE(store->PutDataset(MakeDataset("ds-b", 300)).ok());
  ASSERT_TRUE(store->PutDataset(MakeDataset("ds-c", 200)).ok());

  auto got = store->GetDataset("ds-b");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*got, MakeDataset("ds-b", 300)));

  auto all = store->ListDatasets();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(Ids(*all), (std::vector<std::string>{"ds-b", "ds-c", "ds-a"}));
}

TEST(JobStoreTest, PutDatasetReplacesById) {
  auto store = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutDataset(MakeDataset("ds-a", 100)).ok());
  v1::Dataset changed = MakeDataset("ds-a", 100);
  changed.set_num_examples(99);
  ASSERT_TRUE(store->PutDataset(changed).ok());
  auto all = store->ListDatasets();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].num_examples(), 99);
}

TEST(JobStoreTest, MissingRecordsAreNotFoundNamingTheId) {
  auto store = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(store, nullptr);
  auto ds = store->GetDataset("ds-nope");
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(ds.status().message().find("ds-nope"), absl::string_view::npos);
  auto job = store->GetJob("ftjob-nope");
  EXPECT_EQ(job.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(job.status().message().find("ftjob-nope"), absl::string_view::npos);
  EXPECT_EQ(store->UpdateJob(MakeJob("ftjob-nope", 1)).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store->AppendEvent(LogEvent("ftjob-nope", "x")).status().code(),
            absl::StatusCode::kNotFound);
  auto events = store->EventsAfter("ftjob-nope", 0, 0);
  ASSERT_TRUE(events.ok());
  EXPECT_TRUE(events->empty());
}

TEST(JobStoreTest, EmptyIdsAreInvalidArgument) {
  auto store = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->PutDataset(MakeDataset("", 1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->CreateJob(MakeJob("", 1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->AppendEvent(LogEvent("", "x")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(JobStoreTest, JobRoundTripAndUpdate) {
  auto store = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(store, nullptr);
  v1::FineTuneJob job = MakeJob("ftjob-1", 1000);
  ASSERT_TRUE(store->CreateJob(job).ok());
  auto got = store->GetJob("ftjob-1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*got, job));

  job.set_state(v1::RUNNING);
  job.set_step(7);
  job.mutable_error()->set_code("INTERNAL");
  ASSERT_TRUE(store->UpdateJob(job).ok());
  got = store->GetJob("ftjob-1");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(MessageDifferencer::Equals(*got, job));
  auto running = store->JobsInStates({v1::RUNNING});
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(Ids(*running), std::vector<std::string>{"ftjob-1"});
  auto queued = store->JobsInStates({v1::QUEUED});
  ASSERT_TRUE(queued.ok());
  EXPECT_TRUE(queued->empty());
}

TEST(JobStoreTest, DuplicateJobIsAlreadyExists) {
  auto store = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateJob(MakeJob("ftjob-1", 1)).ok());
  absl::Status again = store->CreateJob(MakeJob("ftjob-1", 2));
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(again.message().find("ftjob-1"), absl::string_view::npos);
  auto got = store->GetJob("ftjob-1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->created_at_unix(), 1) << "the first job was overwritten";
}

TEST(JobStoreTest, ListJobsNewestFirstWithLimit) {
  auto store = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateJob(MakeJob("ftjob-old", 10)).ok());
  ASSERT_TRUE(store->CreateJob(MakeJob("ftjob-new", 30)).ok());
  ASSERT_TRUE(store->CreateJob(MakeJob("ftjob-mid", 20)).ok());
  // Same second: the one created later is newer.
  ASSERT_TRUE(store->CreateJob(MakeJob("ftjob-a-later", 30)).ok());
  auto two = store->ListJobs(2);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(Ids(*two),
            (std::vector<std::string>{"ftjob-a-later", "ftjob-new"}));
  auto all = store->ListJobs(0);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Ids(*all), (std::vector<std::string>{"ftjob-a-later", "ftjob-new",
                                                 "ftjob-mid", "ftjob-old"}));
}

TEST(JobStoreTest, ListJobsDefaultLimitIs100) {
  auto store = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 105; ++i) {
    ASSERT_TRUE(
        store->CreateJob(MakeJob("ftjob-" + std::to_string(i), i)).ok());
  }
  auto jobs = store->ListJobs(-1);
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 100u);
  EXPECT_EQ(jobs->front().id(), "ftjob-104");
}

TEST(JobStoreTest, JobsInStatesOldestFirstThenById) {
  auto store = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateJob(MakeJob("ftjob-c", 50, v1::QUEUED)).ok());
  ASSERT_TRUE(store->CreateJob(MakeJob("ftjob-b", 20, v1::RUNNING)).ok());
  ASSERT_TRUE(store->CreateJob(MakeJob("ftjob-z", 10, v1::SUCCEEDED)).ok());
  ASSERT_TRUE(store->CreateJob(MakeJob("ftjob-y", 20, v1::QUEUED)).ok());
  ASSERT_TRUE(store->CreateJob(MakeJob("ftjob-a", 20, v1::VALIDATING)).ok());

  auto got = store->JobsInStates({v1::QUEUED, v1::RUNNING, v1::VALIDATING});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(Ids(*got), (std::vector<std::string>{"ftjob-a", "ftjob-b",
                                                 "ftjob-y", "ftjob-c"}));
  auto done = store->JobsInStates({v1::SUCCEEDED, v1::SUCCEEDED});
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(Ids(*done), std::vector<std::string>{"ftjob-z"});
  auto none = store->JobsInStates({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(JobStoreTest, EventSeqsArePerJobAndReadBackInOrder) {
  auto store = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateJob(MakeJob("ftjob-1", 1)).ok());
  ASSERT_TRUE(store->CreateJob(MakeJob("ftjob-2", 2)).ok());

  v1::JobEvent step;
  step.set_job_id("ftjob-1");
  step.set_seq(77);  // ignored: the store assigns it
  step.set_time_unix_ms(123456);
  step.mutable_step()->set_step(3);
  step.mutable_step()->set_loss(0.5f);
  EXPECT_EQ(*store->AppendEvent(LogEvent("ftjob-1", "a")), 1);
  EXPECT_EQ(*store->AppendEvent(LogEvent("ftjob-2", "b")), 1);
  EXPECT_EQ(*store->AppendEvent(step), 2);
  EXPECT_EQ(*store->AppendEvent(LogEvent("ftjob-1", "c")), 3);
  EXPECT_EQ(*store->AppendEvent(LogEvent("ftjob-2", "d")), 2);

  auto all = store->EventsAfter("ftjob-1", 0, 0);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ((*all)[i].seq(), i + 1);
    EXPECT_EQ((*all)[i].job_id(), "ftjob-1");
  }
  EXPECT_EQ((*all)[0].log(), "a");
  EXPECT_GT((*all)[0].time_unix_ms(), 1'600'000'000'000)
      << "a zero time is set to now";
  EXPECT_EQ((*all)[1].time_unix_ms(), 123456) << "a set time is kept";
  EXPECT_EQ((*all)[1].step().step(), 3);
  EXPECT_FLOAT_EQ((*all)[1].step().loss(), 0.5f);
  EXPECT_EQ((*all)[2].log(), "c");

  auto after = store->EventsAfter("ftjob-1", 1, 1);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].seq(), 2);
  auto none = store->EventsAfter("ftjob-1", 3, 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(JobStoreTest, ReopenKeepsEverything) {
  const std::string path = TestDir() + "/lorad.db";
  v1::FineTuneJob job = MakeJob("ftjob-1", 5, v1::RUNNING);
  {
    auto store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->PutDataset(MakeDataset("ds-1", 4)).ok());
    ASSERT_TRUE(store->CreateJob(job).ok());
    ASSERT_TRUE(store->AppendEvent(LogEvent("ftjob-1", "one")).ok());
    ASSERT_TRUE(store->AppendEvent(LogEvent("ftjob-1", "two")).ok());
  }
  auto store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  auto ds = store->GetDataset("ds-1");
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*ds, MakeDataset("ds-1", 4)));
  auto got = store->GetJob("ftjob-1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*got, job));
  auto running = store->JobsInStates({v1::RUNNING});
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(running->size(), 1u);
  auto events = store->EventsAfter("ftjob-1", 0, 0);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[1].log(), "two");
  // Seqs go on from where they were.
  EXPECT_EQ(*store->AppendEvent(LogEvent("ftjob-1", "three")), 3);
}

TEST(JobStoreTest, ConcurrentAppendsGiveUniqueConsecutiveSeqs) {
  auto store = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateJob(MakeJob("ftjob-1", 1)).ok());
  ASSERT_TRUE(store->CreateJob(MakeJob("ftjob-2", 1)).ok());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  std::vector<std::vector<int64_t>> seqs(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto seq = store->AppendEvent(
            LogEvent("ftjob-1", std::to_string(t) + ":" + std::to_string(i)));
        if (seq.ok()) seqs[t].push_back(*seq);
        // Interleave another job's events and some reads.
        (void)store->AppendEvent(LogEvent("ftjob-2", "x"));
        (void)store->EventsAfter("ftjob-1", 0, 5);
      }
    });
  }
  for (auto& th : threads) th.join();

  std::set<int64_t> unique;
  for (const auto& s : seqs) {
    ASSERT_EQ(s.size(), static_cast<size_t>(kPerThread));
    EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
    unique.insert(s.begin(), s.end());
  }
  ASSERT_EQ(unique.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(*unique.begin(), 1);
  EXPECT_EQ(*unique.rbegin(), kThreads * kPerThread);

  auto events = store->EventsAfter("ftjob-1", 0, 0);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), static_cast<size_t>(kThreads * kPerThread));
  for (size_t i = 0; i < events->size(); ++i) {
    EXPECT_EQ((*events)[i].seq(), static_cast<int64_t>(i + 1));
  }
  auto other = store->EventsAfter("ftjob-2", 0, 0);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST(JobStoreTest, FileIsInWalModeWithSchemaVersion) {
  const std::string path = TestDir() + "/lorad.db";
  auto store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(PragmaOf(path, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(PragmaOf(path, "PRAGMA user_version"),
            std::to_string(JobStore::kSchemaVersion));
}

TEST(JobStoreTest, NewerSchemaIsRefused) {
  const std::string path = TestDir() + "/lorad.db";
  { ASSERT_NE(OpenOrDie(path), nullptr); }
  PragmaOf(path, "PRAGMA user_version = 99");
  auto store = JobStore::Open(path);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(JobStoreTest, UnopenableFilesAreErrorsNotCrashes) {
  auto missing_dir = JobStore::Open(TestDir() + "/no/such/dir/lorad.db");
  EXPECT_EQ(missing_dir.status().code(), absl::StatusCode::kFailedPrecondition)
      << missing_dir.status();

  const std::string garbage = TestDir() + "/garbage.db";
  std::ofstream(garbage) << std::string(8192, 'G');
  auto not_db = JobStore::Open(garbage);
  EXPECT_EQ(not_db.status().code(), absl::StatusCode::kFailedPrecondition)
      << not_db.status();
  EXPECT_NE(not_db.status().message().find("job store"),
            absl::string_view::npos);
}

}  // namespace
}  // namespace lorad::server
