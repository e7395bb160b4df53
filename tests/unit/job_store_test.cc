#include "store/job_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "fault_env.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "store/adapter_store.h"
#include "store/batch_job_store.h"
#include "store/dataset_store.h"
#include "store/db.h"
#include "test_dir.h"

namespace lorad::server {
namespace {

namespace v1 = ::lorad::v1;
using ::google::protobuf::util::MessageDifferencer;

std::string TestDir() { return FreshTestDir("job_store_test"); }

// One Db and the stores over it; null members when opening failed.
struct Stores {
  std::unique_ptr<Db> db;
  std::unique_ptr<JobStore> jobs;
  std::unique_ptr<DatasetStore> datasets;
};

Stores OpenOrDie(const std::string& path, Env* env = Env::Default()) {
  Stores s;
  auto db = Db::Open(path);
  EXPECT_TRUE(db.ok()) << db.status();
  if (!db.ok()) return s;
  s.db = *std::move(db);
  auto jobs = JobStore::Open(s.db.get(), env);
  auto datasets = DatasetStore::Open(s.db.get());
  EXPECT_TRUE(jobs.ok()) << jobs.status();
  EXPECT_TRUE(datasets.ok()) << datasets.status();
  if (jobs.ok()) s.jobs = *std::move(jobs);
  if (datasets.ok()) s.datasets = *std::move(datasets);
  return s;
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

// A proto as an SQL blob literal.
std::string BlobLiteral(const google::protobuf::MessageLite& m) {
  return absl::StrCat("X'", absl::BytesToHexString(m.SerializeAsString()), "'");
}

TEST(DatasetStoreTest, RoundTripNewestFirst) {
  auto s = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(s.jobs, nullptr);
  ASSERT_TRUE(s.datasets->PutDataset(MakeDataset("ds-a", 100)).ok());
  ASSERT_TRUE(s.datasets->PutDataset(MakeDataset("ds-b", 300)).ok());
  ASSERT_TRUE(s.datasets->PutDataset(MakeDataset("ds-c", 200)).ok());

  auto got = s.datasets->GetDataset("ds-b");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*got, MakeDataset("ds-b", 300)));

  auto all = s.datasets->ListDatasets();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(Ids(*all), (std::vector<std::string>{"ds-b", "ds-c", "ds-a"}));
}

TEST(DatasetStoreTest, PutReplacesById) {
  auto s = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(s.jobs, nullptr);
  ASSERT_TRUE(s.datasets->PutDataset(MakeDataset("ds-a", 100)).ok());
  v1::Dataset changed = MakeDataset("ds-a", 100);
  changed.set_num_examples(99);
  ASSERT_TRUE(s.datasets->PutDataset(changed).ok());
  auto all = s.datasets->ListDatasets();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].num_examples(), 99);
}

TEST(JobStoreTest, MissingRecordsAreNotFoundNamingTheId) {
  auto s = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(s.jobs, nullptr);
  auto ds = s.datasets->GetDataset("ds-nope");
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(ds.status().message().find("ds-nope"), absl::string_view::npos);
  auto job = s.jobs->GetJob("ftjob-nope");
  EXPECT_EQ(job.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(job.status().message().find("ftjob-nope"), absl::string_view::npos);
  EXPECT_EQ(s.jobs->UpdateJob(MakeJob("ftjob-nope", 1)).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(s.jobs->AppendEvent(LogEvent("ftjob-nope", "x")).status().code(),
            absl::StatusCode::kNotFound);
  auto events = s.jobs->EventsAfter("ftjob-nope", 0, 0);
  ASSERT_TRUE(events.ok());
  EXPECT_TRUE(events->empty());
}

TEST(JobStoreTest, EmptyIdsAreInvalidArgument) {
  auto s = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(s.jobs, nullptr);
  EXPECT_EQ(s.datasets->PutDataset(MakeDataset("", 1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.jobs->CreateJob(MakeJob("", 1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.jobs->AppendEvent(LogEvent("", "x")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(JobStoreTest, JobRoundTripAndUpdate) {
  auto s = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(s.jobs, nullptr);
  v1::FineTuneJob job = MakeJob("ftjob-1", 1000);
  ASSERT_TRUE(s.jobs->CreateJob(job).ok());
  auto got = s.jobs->GetJob("ftjob-1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*got, job));

  job.set_state(v1::RUNNING);
  job.set_step(7);
  job.mutable_error()->set_code("INTERNAL");
  ASSERT_TRUE(s.jobs->UpdateJob(job).ok());
  got = s.jobs->GetJob("ftjob-1");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(MessageDifferencer::Equals(*got, job));
  auto running = s.jobs->JobsInStates({v1::RUNNING});
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(Ids(*running), std::vector<std::string>{"ftjob-1"});
  auto queued = s.jobs->JobsInStates({v1::QUEUED});
  ASSERT_TRUE(queued.ok());
  EXPECT_TRUE(queued->empty());
}

TEST(JobStoreTest, DuplicateJobIsAlreadyExists) {
  auto s = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(s.jobs, nullptr);
  ASSERT_TRUE(s.jobs->CreateJob(MakeJob("ftjob-1", 1)).ok());
  absl::Status again = s.jobs->CreateJob(MakeJob("ftjob-1", 2));
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(again.message().find("ftjob-1"), absl::string_view::npos);
  auto got = s.jobs->GetJob("ftjob-1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->created_at_unix(), 1) << "the first job was overwritten";
}

TEST(JobStoreTest, ListJobsNewestFirstWithLimit) {
  auto s = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(s.jobs, nullptr);
  ASSERT_TRUE(s.jobs->CreateJob(MakeJob("ftjob-old", 10)).ok());
  ASSERT_TRUE(s.jobs->CreateJob(MakeJob("ftjob-new", 30)).ok());
  ASSERT_TRUE(s.jobs->CreateJob(MakeJob("ftjob-mid", 20)).ok());
  // Same second: the one created later is newer.
  ASSERT_TRUE(s.jobs->CreateJob(MakeJob("ftjob-a-later", 30)).ok());
  auto two = s.jobs->ListJobs(2);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(Ids(*two),
            (std::vector<std::string>{"ftjob-a-later", "ftjob-new"}));
  auto all = s.jobs->ListJobs(0);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Ids(*all), (std::vector<std::string>{"ftjob-a-later", "ftjob-new",
                                                 "ftjob-mid", "ftjob-old"}));
}

TEST(JobStoreTest, ListJobsDefaultLimitIs100) {
  auto s = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(s.jobs, nullptr);
  for (int i = 0; i < 105; ++i) {
    ASSERT_TRUE(
        s.jobs->CreateJob(MakeJob("ftjob-" + std::to_string(i), i)).ok());
  }
  auto jobs = s.jobs->ListJobs(-1);
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 100u);
  EXPECT_EQ(jobs->front().id(), "ftjob-104");
}

TEST(JobStoreTest, JobsInStatesOldestFirstThenById) {
  auto s = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(s.jobs, nullptr);
  ASSERT_TRUE(s.jobs->CreateJob(MakeJob("ftjob-c", 50, v1::QUEUED)).ok());
  ASSERT_TRUE(s.jobs->CreateJob(MakeJob("ftjob-b", 20, v1::RUNNING)).ok());
  ASSERT_TRUE(s.jobs->CreateJob(MakeJob("ftjob-z", 10, v1::SUCCEEDED)).ok());
  ASSERT_TRUE(s.jobs->CreateJob(MakeJob("ftjob-y", 20, v1::QUEUED)).ok());
  ASSERT_TRUE(s.jobs->CreateJob(MakeJob("ftjob-a", 20, v1::VALIDATING)).ok());

  auto got = s.jobs->JobsInStates({v1::QUEUED, v1::RUNNING, v1::VALIDATING});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(Ids(*got), (std::vector<std::string>{"ftjob-a", "ftjob-b",
                                                 "ftjob-y", "ftjob-c"}));
  auto done = s.jobs->JobsInStates({v1::SUCCEEDED, v1::SUCCEEDED});
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(Ids(*done), std::vector<std::string>{"ftjob-z"});
  auto none = s.jobs->JobsInStates({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(JobStoreTest, EventSeqsArePerJobAndReadBackInOrder) {
  auto s = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(s.jobs, nullptr);
  ASSERT_TRUE(s.jobs->CreateJob(MakeJob("ftjob-1", 1)).ok());
  ASSERT_TRUE(s.jobs->CreateJob(MakeJob("ftjob-2", 2)).ok());

  v1::JobEvent step;
  step.set_job_id("ftjob-1");
  step.set_seq(77);  // ignored: the store assigns it
  step.set_time_unix_ms(123456);
  step.mutable_step()->set_step(3);
  step.mutable_step()->set_loss(0.5f);
  EXPECT_EQ(*s.jobs->AppendEvent(LogEvent("ftjob-1", "a")), 1);
  EXPECT_EQ(*s.jobs->AppendEvent(LogEvent("ftjob-2", "b")), 1);
  EXPECT_EQ(*s.jobs->AppendEvent(step), 2);
  EXPECT_EQ(*s.jobs->AppendEvent(LogEvent("ftjob-1", "c")), 3);
  EXPECT_EQ(*s.jobs->AppendEvent(LogEvent("ftjob-2", "d")), 2);

  auto all = s.jobs->EventsAfter("ftjob-1", 0, 0);
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

  auto after = s.jobs->EventsAfter("ftjob-1", 1, 1);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].seq(), 2);
  auto none = s.jobs->EventsAfter("ftjob-1", 3, 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(JobStoreTest, ReopenKeepsEverything) {
  const std::string path = TestDir() + "/lorad.db";
  v1::FineTuneJob job = MakeJob("ftjob-1", 5, v1::RUNNING);
  {
    auto s = OpenOrDie(path);
    ASSERT_NE(s.jobs, nullptr);
    ASSERT_TRUE(s.datasets->PutDataset(MakeDataset("ds-1", 4)).ok());
    ASSERT_TRUE(s.jobs->CreateJob(job).ok());
    ASSERT_TRUE(s.jobs->AppendEvent(LogEvent("ftjob-1", "one")).ok());
    ASSERT_TRUE(s.jobs->AppendEvent(LogEvent("ftjob-1", "two")).ok());
  }
  auto s = OpenOrDie(path);
  ASSERT_NE(s.jobs, nullptr);
  auto ds = s.datasets->GetDataset("ds-1");
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*ds, MakeDataset("ds-1", 4)));
  auto got = s.jobs->GetJob("ftjob-1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*got, job));
  auto running = s.jobs->JobsInStates({v1::RUNNING});
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(running->size(), 1u);
  auto events = s.jobs->EventsAfter("ftjob-1", 0, 0);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[1].log(), "two");
  // Seqs go on from where they were.
  EXPECT_EQ(*s.jobs->AppendEvent(LogEvent("ftjob-1", "three")), 3);
}

TEST(JobStoreTest, ConcurrentAppendsGiveUniqueConsecutiveSeqs) {
  auto s = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(s.jobs, nullptr);
  ASSERT_TRUE(s.jobs->CreateJob(MakeJob("ftjob-1", 1)).ok());
  ASSERT_TRUE(s.jobs->CreateJob(MakeJob("ftjob-2", 1)).ok());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  std::vector<std::vector<int64_t>> seqs(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto seq = s.jobs->AppendEvent(
            LogEvent("ftjob-1", std::to_string(t) + ":" + std::to_string(i)));
        if (seq.ok()) seqs[t].push_back(*seq);
        // Interleave another job's events and some reads.
        (void)s.jobs->AppendEvent(LogEvent("ftjob-2", "x"));
        (void)s.jobs->EventsAfter("ftjob-1", 0, 5);
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

  auto events = s.jobs->EventsAfter("ftjob-1", 0, 0);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), static_cast<size_t>(kThreads * kPerThread));
  for (size_t i = 0; i < events->size(); ++i) {
    EXPECT_EQ((*events)[i].seq(), static_cast<int64_t>(i + 1));
  }
  auto other = s.jobs->EventsAfter("ftjob-2", 0, 0);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST(JobStoreTest, EventTimeComesFromTheEnv) {
  FaultInjectionEnv env;
  env.SetNow(absl::FromUnixMillis(1'700'000'000'123));
  auto s = OpenOrDie(TestDir() + "/lorad.db", &env);
  ASSERT_NE(s.jobs, nullptr);
  ASSERT_TRUE(s.jobs->CreateJob(MakeJob("ftjob-1", 1)).ok());
  ASSERT_TRUE(s.jobs->AppendEvent(LogEvent("ftjob-1", "x")).ok());
  auto events = s.jobs->EventsAfter("ftjob-1", 0, 0);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].time_unix_ms(), 1'700'000'000'123);
}

TEST(JobStoreTest, ErrorsNameTheStoreAndOperation) {
  auto s = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(s.jobs, nullptr);
  ASSERT_TRUE(
      s.db->Exec(Op{"test", "break"}, "DROP TABLE job_events", {}).ok());
  ASSERT_TRUE(s.jobs->CreateJob(MakeJob("ftjob-1", 1)).ok());
  auto events = s.jobs->EventsAfter("ftjob-1", 0, 0);
  EXPECT_FALSE(events.ok());
  EXPECT_NE(
      events.status().message().find("job store: read events of job ftjob-1"),
      absl::string_view::npos)
      << events.status();
}

// A lorad.db written by the code before the Db layer (JobStore and
// ServingStore each opening the file, user_version 1) opens and reads:
// recovery after an upgrade depends on it. The schema below is that code's,
// frozen.
TEST(StoreCompatibilityTest, FileOfThePreviousLayoutOpensAndReads) {
  const std::string path = TestDir() + "/lorad.db";
  v1::Dataset ds = MakeDataset("ds-1", 4);
  v1::FineTuneJob job = MakeJob("ftjob-1", 5, v1::RUNNING);
  v1::JobEvent event = LogEvent("ftjob-1", "one");
  event.set_seq(1);
  v1::Adapter adapter;
  adapter.set_name("a");
  adapter.set_version(2);
  v1::BatchJob batch;
  batch.set_id("batch-1");
  batch.set_state(v1::QUEUED);
  batch.set_created_at_unix(6);
  const std::string legacy = absl::StrCat(
      "PRAGMA journal_mode=WAL;"
      "CREATE TABLE datasets (id TEXT PRIMARY KEY NOT NULL, created_at "
      "INTEGER NOT NULL, proto BLOB NOT NULL);"
      "CREATE INDEX datasets_by_created ON datasets (created_at);"
      "CREATE TABLE jobs (id TEXT PRIMARY KEY NOT NULL, state INTEGER NOT "
      "NULL, created_at INTEGER NOT NULL, proto BLOB NOT NULL);"
      "CREATE INDEX jobs_by_state ON jobs (state, created_at, id);"
      "CREATE INDEX jobs_by_created ON jobs (created_at);"
      "CREATE TABLE job_events (job_id TEXT NOT NULL, seq INTEGER NOT NULL, "
      "proto BLOB NOT NULL, PRIMARY KEY (job_id, seq)) WITHOUT ROWID;"
      "PRAGMA user_version = 1;"
      "CREATE TABLE adapters (name TEXT PRIMARY KEY NOT NULL, proto BLOB NOT "
      "NULL);"
      "CREATE TABLE batch_jobs (id TEXT PRIMARY KEY NOT NULL, state INTEGER "
      "NOT NULL, created_at INTEGER NOT NULL, proto BLOB NOT NULL);"
      "CREATE INDEX batch_jobs_by_state ON batch_jobs (state, created_at, "
      "id);"
      "CREATE TABLE batch_events (job_id TEXT NOT NULL, seq INTEGER NOT NULL, "
      "proto BLOB NOT NULL, PRIMARY KEY (job_id, seq)) WITHOUT ROWID;"
      "CREATE TABLE batch_results (job_id TEXT NOT NULL, idx INTEGER NOT "
      "NULL, json TEXT NOT NULL, PRIMARY KEY (job_id, idx)) WITHOUT ROWID;",
      "INSERT INTO datasets VALUES ('ds-1', 4, ", BlobLiteral(ds), ");",
      "INSERT INTO jobs VALUES ('ftjob-1', ", static_cast<int>(v1::RUNNING),
      ", 5, ", BlobLiteral(job), ");",
      "INSERT INTO job_events VALUES ('ftjob-1', 1, ", BlobLiteral(event), ");",
      "INSERT INTO adapters VALUES ('a', ", BlobLiteral(adapter), ");",
      "INSERT INTO batch_jobs VALUES ('batch-1', ",
      static_cast<int>(v1::QUEUED), ", 6, ", BlobLiteral(batch), ");",
      "INSERT INTO batch_results VALUES ('batch-1', 0, '{}');");
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, legacy.c_str(), nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(raw);
  sqlite3_close(raw);

  auto s = OpenOrDie(path);
  ASSERT_NE(s.jobs, nullptr);
  auto adapters = AdapterStore::Open(s.db.get());
  auto batches = BatchJobStore::Open(s.db.get());
  ASSERT_TRUE(adapters.ok()) << adapters.status();
  ASSERT_TRUE(batches.ok()) << batches.status();
  EXPECT_FALSE((*adapters)->created_registry());

  auto got_ds = s.datasets->GetDataset("ds-1");
  ASSERT_TRUE(got_ds.ok()) << got_ds.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*got_ds, ds));
  auto running = s.jobs->JobsInStates({v1::RUNNING});
  ASSERT_TRUE(running.ok()) << running.status();
  ASSERT_EQ(running->size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals((*running)[0], job));
  EXPECT_EQ(*s.jobs->AppendEvent(LogEvent("ftjob-1", "two")), 2)
      << "seqs go on from the old file's";
  EXPECT_EQ((*adapters)->GetAdapter("a")->version(), 2);
  auto queued = (*batches)->BatchJobsInStates({v1::QUEUED});
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_EQ(Ids(*queued), std::vector<std::string>{"batch-1"});
  EXPECT_EQ(*(*batches)->BatchResultIndices("batch-1"),
            std::vector<int64_t>{0});
}

}  // namespace
}  // namespace lorad::server
