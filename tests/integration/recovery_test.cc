// Training survives a kill -9 of the worker and of the daemon itself: the
// job resumes from its last checkpoint and finishes.
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client_util.h"
#include "daemon_process.h"
#include "gtest/gtest.h"

namespace lorad::testing {
namespace {

constexpr int kSteps = 60;
constexpr int kCheckpointEvery = 5;
constexpr char kCheckpointLog[] = "checkpoint saved at step ";

// The step of a "checkpoint saved at step N" log event, or -1.
int CheckpointStep(const v1::JobEvent& event) {
  if (!absl::StartsWith(event.log(), kCheckpointLog)) return -1;
  return std::stoi(event.log().substr(sizeof(kCheckpointLog) - 1));
}

// The index of the first event after `from` for which `match` holds, or -1.
template <typename Match>
int FindEvent(const std::vector<v1::JobEvent>& events, int from, Match match) {
  for (int i = from; i < static_cast<int>(events.size()); ++i) {
    if (match(events[i])) return i;
  }
  return -1;
}

class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
    StartDaemon();
    v1::Dataset dataset;
    grpc::Status status = UploadPairs(*client_, &dataset);
    ASSERT_TRUE(status.ok()) << Describe(status);
    status = CreateJob(*client_,
                       TinyJobRequest(dataset.id(), kSteps, kCheckpointEvery),
                       &job_);
    ASSERT_TRUE(status.ok()) << Describe(status);
  }

  void StartDaemon() {
    auto daemon = StartWithWorker(data_dir());
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = *std::move(daemon);
    client_ = std::make_unique<Client>(daemon_->address());
  }

  std::string data_dir() const { return dir_.path() + "/data"; }

  // Steps seen after events[from], checked to continue from a checkpoint at
  // or after `checkpoint` and not past the last step the history holds
  // before events[from], plus one.
  void ExpectResumed(const std::vector<v1::JobEvent>& events, int from,
                     int checkpoint) {
    int last_step_before = 0;
    for (int i = 0; i < from; ++i) {
      if (events[i].has_step()) last_step_before = events[i].step().step();
    }
    int first = FindEvent(events, from,
                          [](const v1::JobEvent& e) { return e.has_step(); });
    ASSERT_GE(first, 0) << "no step events after the restart";
    const int resumed_at = events[first].step().step();
    EXPECT_GT(resumed_at, checkpoint) << "training restarted from scratch";
    EXPECT_LE(resumed_at, last_step_before + 1)
        << "steps after " << last_step_before << " are missing";
    EXPECT_GE(FindEvent(events, from,
                        [](const v1::JobEvent& e) {
                          return absl::StrContains(e.log(), "resumed from");
                        }),
              0);
    int last_step = 0;
    for (const v1::TrainStep& s : Steps(
             std::vector<v1::JobEvent>(events.begin() + first, events.end()))) {
      EXPECT_GT(s.step(), last_step);
      last_step = s.step();
    }
    EXPECT_EQ(last_step, kSteps);
  }

  TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<Client> client_;
  v1::FineTuneJob job_;
};

TEST_F(RecoveryTest, WorkerKilledMidJobResumesFromCheckpoint) {
  int checkpoint = -1;
  int64_t killed_pid = -1;
  std::vector<v1::JobEvent> events;
  grpc::Status status =
      Watch(*client_, job_.id(), 0, &events, absl::Minutes(20),
            [&](const v1::JobEvent& event) {
              if (killed_pid >= 0 || CheckpointStep(event) < 0) return;
              checkpoint = CheckpointStep(event);
              killed_pid = WorkerPid(data_dir());
              ASSERT_GT(killed_pid, 0);
              ::kill(static_cast<pid_t>(killed_pid), SIGKILL);
            });
  ASSERT_TRUE(status.ok()) << Describe(status);
  ASSERT_GT(killed_pid, 0) << "never saw a checkpoint";

  ASSERT_TRUE(GetJob(*client_, job_.id(), &job_).ok());
  ASSERT_EQ(job_.state(), v1::SUCCEEDED)
      << job_.error().code() << ": " << job_.error().message();
  EXPECT_GE(job_.attempts(), 2);
  const int restarted = FindEvent(events, 0, [](const v1::JobEvent& e) {
    return absl::StrContains(e.log(), "worker restarted; resuming");
  });
  ASSERT_GE(restarted, 0);
  ExpectResumed(events, restarted, checkpoint);
  const int64_t new_pid = WorkerPid(data_dir());
  EXPECT_GT(new_pid, 0);
  EXPECT_NE(new_pid, killed_pid);
}

TEST_F(RecoveryTest, DaemonKilledMidJobResumesAfterRestart) {
  int checkpoint = -1;
  int64_t worker_pid = -1;
  std::vector<v1::JobEvent> before;
  // The stream breaks when the daemon dies.
  (void)Watch(*client_, job_.id(), 0, &before, absl::Minutes(20),
              [&](const v1::JobEvent& event) {
                if (worker_pid >= 0 || CheckpointStep(event) < 0) return;
                checkpoint = CheckpointStep(event);
                worker_pid = WorkerPid(data_dir());
                daemon_->Kill();
              });
  ASSERT_GT(worker_pid, 0) << "never saw a checkpoint";

  // The worker dies with the daemon.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (ProcessRunning(static_cast<pid_t>(worker_pid)) &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_FALSE(ProcessRunning(static_cast<pid_t>(worker_pid)));

  StartDaemon();
  std::vector<v1::JobEvent> events;
  grpc::Status status = Watch(*client_, job_.id(), 0, &events);
  ASSERT_TRUE(status.ok()) << Describe(status);
  ASSERT_TRUE(GetJob(*client_, job_.id(), &job_).ok());
  ASSERT_EQ(job_.state(), v1::SUCCEEDED)
      << job_.error().code() << ": " << job_.error().message();
  EXPECT_GE(job_.attempts(), 2);
  const int requeued = FindEvent(events, 0, [](const v1::JobEvent& e) {
    return e.has_state() && e.state().state() == v1::QUEUED &&
           absl::StrContains(e.state().message(), "lorad restarted");
  });
  ASSERT_GE(requeued, 0);
  ExpectResumed(events, requeued, checkpoint);
}

}  // namespace
}  // namespace lorad::testing
