// Many jobs on one base through the real daemon and worker
// (--max_concurrent_jobs=2): a second job starts while the first runs,
// its micro-batches are fused with the first's (its log names the first
// job), it finishes with its own steps, loss and adapter while the first
// is still RUNNING, and the first, cancelled, is CANCELLED; its log named
// the second. With the
// default (one job at a time) the second would wait behind the first,
// which never ends on its own, and this test would time out.
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
  grpc::Status s =
      Upload(client, "pairs.jsonl", PromptCompletionJsonl(8), &data);
  ASSERT_TRUE(s.ok()) << Describe(s);

  // The first job would run for hours: only a cancel ends it.
  v1::FineTuneJob first;
  s = CreateJob(client, TinyJobRequest(data.id(), 1000000, 0), &first);
  ASSERT_TRUE(s.ok()) << Describe(s);
  // Wait for its first step, so that it is in the worker's group when the
  // second job hands in its first micro-batch.
  {
    grpc::ClientContext context;
    v1::WatchFineTuneJobRequest request;
    request.set_job_id(first.id());
    auto reader = client.fine_tuning->WatchJob(&context, request);
    v1::JobEvent event;
    bool stepped = false;
    while (!stepped && reader->Read(&event)) stepped = event.has_step();
    context.TryCancel();
    (void)reader->Finish();
    ASSERT_TRUE(stepped) << "the first job never stepped";
  }

  v1::CreateFineTuneJobRequest second_request = TinyJobRequest(data.id(), 6, 0);
  second_request.mutable_hyperparameters()->set_seed(11);
  second_request.mutable_hyperparameters()->set_rank(4);
  v1::FineTuneJob second;
  s = CreateJob(client, second_request, &second);
  ASSERT_TRUE(s.ok()) << Describe(s);
  std::vector<v1::JobEvent> events;
  s = Watch(client, second.id(), 0, &events, absl::Minutes(10));
  ASSERT_TRUE(s.ok()) << Describe(s);

  v1::FineTuneJob done;
  ASSERT_TRUE(GetJob(client, second.id(), &done).ok());
  EXPECT_EQ(done.state(), v1::SUCCEEDED) << done.error().message();
  EXPECT_EQ(done.step(), 6);
  EXPECT_FALSE(done.adapter_path().empty());
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
  {
    grpc::ClientContext context;
    v1::CancelFineTuneJobRequest request;
    request.set_job_id(first.id());
    v1::FineTuneJob cancelled;
    s = client.fine_tuning->CancelJob(&context, request, &cancelled);
    ASSERT_TRUE(s.ok()) << Describe(s);
  }
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

}  // namespace
}  // namespace lorad::testing
