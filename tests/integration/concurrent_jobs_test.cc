// Many jobs on one base through the real daemon and worker
// (--max_concurrent_jobs=2): a second job starts while the first runs,
// its micro-batches are fused with the first's (its log names the first
// job), it finishes with its own steps, loss and adapter while the first
// is still RUNNING, and the first, cancelled, is CANCELLED; its log named
// the second. With the
// default (one job at a time) the second would wait behind the first,
// which never ends on its own, and this test would time out. With four
// jobs running (--max_concurrent_jobs=4, --worker_threads=2: two LibTorch
// threads in the worker) they train in two lanes: the fourth's passes fuse it
// with one other job, never with all three.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "auth_util.h"
#include "client_util.h"
#include "daemon_process.h"
#include "gtest/gtest.h"

namespace lorad::testing {
namespace {

// Blocks until job `id` has reported a step.
void WaitForAStep(Client& client, const std::string& id) {
  grpc::ClientContext context;
  v1::WatchFineTuneJobRequest request;
  request.set_job_id(id);
  auto reader = client.fine_tuning->WatchJob(&context, request);
  v1::JobEvent event;
  bool stepped = false;
  while (!stepped && reader->Read(&event)) stepped = event.has_step();
  context.TryCancel();
  (void)reader->Finish();
  ASSERT_TRUE(stepped) << "job " << id << " never stepped";
}

void Cancel(Client& client, const std::string& id) {
  grpc::ClientContext context;
  v1::CancelFineTuneJobRequest request;
  request.set_job_id(id);
  v1::FineTuneJob cancelled;
  grpc::Status s = client.fine_tuning->CancelJob(&context, request, &cancelled);
  ASSERT_TRUE(s.ok()) << Describe(s);
}

// Creates a 6-step job and follows it to its end: SUCCEEDED, 6 steps, an
// adapter; `events` are its events.
void RunToTheEnd(Client& client, const v1::CreateFineTuneJobRequest& request,
                 v1::FineTuneJob* job, std::vector<v1::JobEvent>* events) {
  grpc::Status s = CreateJob(client, request, job);
  ASSERT_TRUE(s.ok()) << Describe(s);
  s = Watch(client, job->id(), 0, events, absl::Minutes(10));
  ASSERT_TRUE(s.ok()) << Describe(s);
  v1::FineTuneJob done;
  ASSERT_TRUE(GetJob(client, job->id(), &done).ok());
  EXPECT_EQ(done.state(), v1::SUCCEEDED) << done.error().message();
  EXPECT_EQ(done.step(), 6);
  EXPECT_FALSE(done.adapter_path().empty());
}

TEST(ConcurrentJobsTest, ASecondJobOnTheSameBaseRunsFusedWithTheFirst) {
  if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
  TempDir dir;
  auto daemon = StartLogged(dir.path() + "/data",
                            {absl::StrCat("--worker_binary=", WorkerBinary()),
                             "--max_concurrent_jobs=2"},
                            dir.path() + "/lorad.log");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  Client client((*daemon)->address());
  v1::Dataset data;
  grpc::Status s = UploadPairs(client, &data);
  ASSERT_TRUE(s.ok()) << Describe(s);

  // The first job would run for hours: only a cancel ends it.
  v1::FineTuneJob first;
  s = CreateJob(client, TinyJobRequest(data.id(), 1000000, 0), &first);
  ASSERT_TRUE(s.ok()) << Describe(s);
  // Wait for its first step, so that it is in the worker's group when the
  // second job hands in its first micro-batch.
  WaitForAStep(client, first.id());
  if (HasFatalFailure()) return;

  v1::CreateFineTuneJobRequest second_request = TinyJobRequest(data.id(), 6, 0);
  second_request.mutable_hyperparameters()->set_seed(11);
  second_request.mutable_hyperparameters()->set_rank(4);
  v1::FineTuneJob second;
  std::vector<v1::JobEvent> events;
  RunToTheEnd(client, second_request, &second, &events);
  if (HasFatalFailure()) return;
  std::vector<v1::TrainStep> steps = Steps(events);
  ASSERT_EQ(steps.size(), 6u);
  for (const v1::TrainStep& step : steps) EXPECT_GT(step.loss(), 0);
  bool fused = false;
  for (const v1::JobEvent& e : events) {
    fused = fused ||
            absl::StrContains(EventText(e),
                              absl::StrCat("micro-batches fused with job ",
                                           first.id(), " on the same base"));
  }
  EXPECT_TRUE(fused) << "the second job's log never said it was fused with "
                     << first.id();

  v1::FineTuneJob still;
  ASSERT_TRUE(GetJob(client, first.id(), &still).ok());
  EXPECT_EQ(still.state(), v1::RUNNING);
  Cancel(client, first.id());
  std::vector<v1::JobEvent> first_events;
  s = Watch(client, first.id(), 0, &first_events, absl::Minutes(5));
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_TRUE(GetJob(client, first.id(), &still).ok());
  EXPECT_EQ(still.state(), v1::CANCELLED);
  // The first job's log says when the second joined its passes (while
  // both ran; what it logs after the cancel may be dropped with the call).
  bool joined = false;
  for (const v1::JobEvent& e : first_events) {
    joined = joined ||
             absl::StrContains(
                 EventText(e),
                 absl::StrCat("micro-batches fused with job ", second.id()));
  }
  EXPECT_TRUE(joined);
}

TEST(ConcurrentJobsTest, FourJobsTrainInTwoLanes) {
  if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
  // The worker's lanes are its LibTorch threads: two, whatever the cores.
  TempDir dir;
  auto daemon = StartLogged(dir.path() + "/data",
                            {absl::StrCat("--worker_binary=", WorkerBinary()),
                             "--max_concurrent_jobs=4", "--worker_threads=2"},
                            dir.path() + "/lorad.log");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  Client client((*daemon)->address());
  v1::Dataset data;
  grpc::Status s = UploadPairs(client, &data);
  ASSERT_TRUE(s.ok()) << Describe(s);
  // Three jobs that only a cancel ends, each in the group before the next.
  std::vector<std::string> long_jobs;
  for (int i = 0; i < 3; ++i) {
    v1::CreateFineTuneJobRequest request =
        TinyJobRequest(data.id(), 1000000, 0);
    request.mutable_hyperparameters()->set_seed(20 + i);
    v1::FineTuneJob job;
    s = CreateJob(client, request, &job);
    ASSERT_TRUE(s.ok()) << Describe(s);
    WaitForAStep(client, job.id());
    if (HasFatalFailure()) return;
    long_jobs.push_back(job.id());
  }
  v1::CreateFineTuneJobRequest request = TinyJobRequest(data.id(), 6, 0);
  request.mutable_hyperparameters()->set_seed(30);
  v1::FineTuneJob fourth;
  std::vector<v1::JobEvent> events;
  RunToTheEnd(client, request, &fourth, &events);
  if (HasFatalFailure()) return;
  int fused_logs = 0;
  for (const v1::JobEvent& e : events) {
    const std::string text = EventText(e);
    if (!absl::StrContains(text, "micro-batches fused with")) continue;
    ++fused_logs;
    EXPECT_TRUE(
        absl::StrContains(text, "(one forward and backward for 2 jobs)"))
        << text;
  }
  EXPECT_GT(fused_logs, 0) << "the fourth job's log never said it was fused";
  for (const std::string& id : long_jobs) {
    v1::FineTuneJob still;
    ASSERT_TRUE(GetJob(client, id, &still).ok());
    EXPECT_EQ(still.state(), v1::RUNNING) << id;
    Cancel(client, id);
  }
  for (const std::string& id : long_jobs) {
    std::vector<v1::JobEvent> ignored;
    ASSERT_TRUE(Watch(client, id, 0, &ignored, absl::Minutes(5)).ok()) << id;
  }
}

TEST(ConcurrentJobsTest, OutOfRangeWorkerThreadsAreRefusedByName) {
  for (const char* value : {"-1", "1025"}) {
    const CommandResult r = RunCommand(absl::StrCat(
        LoradBinary(), " --worker_threads=", value, " 2>&1 < /dev/null"));
    EXPECT_EQ(r.exit_code, 2) << value << ": " << r.output;
    EXPECT_TRUE(absl::StrContains(
        r.output,
        absl::StrCat("--worker_threads must be in [0, 1024], got ", value)))
        << r.output;
  }
}

}  // namespace
}  // namespace lorad::testing
