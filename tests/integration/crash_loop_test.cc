// A fine-tune job survives twenty kill -9s in a row, of the worker and of the
// daemon, at pseudo-random points of its steps (a fixed seed, printed, so a
// failure can be replayed), and ends SUCCEEDED with a continuous step
// history: every step from 1 to the last is there, and each time the steps
// go back it is to just after a checkpoint the job had saved. Steps the
// worker ran while lorad could not record them (stopped, then killed) come
// back from the checkpoint that holds them.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client_util.h"
#include "daemon_process.h"
#include "gtest/gtest.h"

namespace lorad::testing {
namespace {

constexpr int kSteps = 200;
constexpr int kCheckpointEvery = 2;
constexpr int kKills = 20;
constexpr uint32_t kSeed = 20261201;
constexpr char kSavedLog[] = "checkpoint saved at step ";
struct History {
  int resumes = 0;
  int resends = 0;  // resumes that sent events lost with a process again
};

// Checks a finished job's whole history: every step from 1 to kSteps, steps
// going back only to just after the checkpoint resumed, never resuming from
// an older checkpoint than the last reported or from a step never recorded.
History CheckHistory(const std::vector<v1::JobEvent>& events) {
  std::set<int> saved;  // checkpoints the job reported
  std::set<int> seen;   // every step that ran
  int previous = 0;
  int resumes = 0;
  int resends = 0;     // events lost with a killed process, sent again
  int resumed_at = 0;  // where the current attempt started (0: scratch)
  for (const v1::JobEvent& e : events) {
    const std::string text = EventText(e);
    if (e.has_state() && e.state().state() == v1::RUNNING) resumed_at = 0;
    if (int s = NumberAfter(text, kSavedLog); s > 0) saved.insert(s);
    if (absl::StrContains(text, "sent again the events of steps")) ++resends;
    if (int r = NumberAfter(text, kResumedLog); r > 0) {
      ++resumes;
      resumed_at = r;
      // Never an older checkpoint than the last one reported, never a step
      // that did not run. (A save whose event died with its process may
      // still be resumed from: the file was written before the event.)
      EXPECT_GE(r, saved.empty() ? 0 : *saved.rbegin())
          << "resumed from step " << r << ", older than the last checkpoint";
      EXPECT_LE(r, previous)
          << "resumed from step " << r << ", which never ran";
      EXPECT_EQ(r % kCheckpointEvery, 0);
    }
    if (!e.has_step()) continue;
    const int step = e.step().step();
    if (step != previous + 1) {
      // Steps only go back, and only to just after the checkpoint resumed.
      EXPECT_LE(step, previous + 1) << "a gap after step " << previous;
      EXPECT_EQ(step, resumed_at + 1)
          << "step " << step << " after step " << previous
          << " without resuming from the checkpoint before it";
    }
    seen.insert(step);
    previous = step;
  }
  EXPECT_EQ(previous, kSteps);
  EXPECT_EQ(seen.size(), static_cast<size_t>(kSteps));
  EXPECT_EQ(*seen.begin(), 1);
  return {resumes, resends};
}

// The newest checkpoint-<step>.pt in `dir` (0: none).
int NewestCheckpoint(const std::string& dir) {
  int newest = 0;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    if (absl::EndsWith(name, ".pt")) {
      newest = std::max(newest, NumberAfter(name, "checkpoint-"));
    }
  }
  return newest;
}

class CrashLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
    StartDaemon();
  }

  void StartDaemon() {
    auto daemon = StartWithWorker(data_dir(), {"--max_job_attempts=100"});
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = *std::move(daemon);
    client_ = std::make_unique<Client>(daemon_->address());
  }

  std::string data_dir() const { return dir_.path() + "/data"; }

  // After a kill of lorad: waits (up to 30 s) for its worker to go with it,
  // then starts lorad again.
  void RestartOnceGone(int64_t worker_pid) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (worker_pid > 0 && ProcessRunning(static_cast<pid_t>(worker_pid)) &&
           absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    StartDaemon();
  }

  // Watches the job to its end; it must have SUCCEEDED. Its whole history
  // goes into `events`.
  void FinishedHistory(v1::FineTuneJob& job,
                       std::vector<v1::JobEvent>* events) {
    grpc::Status status = Watch(*client_, job.id(), 0, events);
    ASSERT_TRUE(status.ok()) << Describe(status);
    ASSERT_TRUE(GetJob(*client_, job.id(), &job).ok());
    ASSERT_EQ(job.state(), v1::SUCCEEDED)
        << job.error().code() << ": " << job.error().message();
  }

  TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<Client> client_;
};

TEST_F(CrashLoopTest, TwentyKillsInARowEndInAFinishedJob) {
  v1::FineTuneJob job;
  grpc::Status status = StartTinyJob(*client_, kSteps, kCheckpointEvery, &job);
  ASSERT_TRUE(status.ok()) << Describe(status);

  std::mt19937 rng(kSeed);
  SCOPED_TRACE(absl::StrCat("seed ", kSeed));
  int64_t after_seq = 0;
  for (int kill = 0; kill < kKills; ++kill) {
    // Which process, and after how many of this round's step events.
    const bool daemon = rng() % 2 == 1;
    const int steps_before_kill = 1 + static_cast<int>(rng() % 6);
    SCOPED_TRACE(absl::StrCat("kill ", kill + 1, ": the ",
                              daemon ? "daemon" : "worker", " after ",
                              steps_before_kill, " steps"));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(5)));
    v1::WatchFineTuneJobRequest request;
    request.set_job_id(job.id());
    request.set_after_seq(after_seq);
    auto reader = client_->fine_tuning->WatchJob(&context, request);
    v1::JobEvent event;
    int steps = 0;
    int64_t worker_pid = -1;
    bool killed = false;
    bool finished = false;
    while (reader->Read(&event)) {
      after_seq = event.seq();
      if (event.has_state() && (event.state().state() == v1::SUCCEEDED ||
                                event.state().state() == v1::FAILED ||
                                event.state().state() == v1::CANCELLED)) {
        finished = true;
      }
      if (!event.has_step() || killed) continue;
      if (++steps < steps_before_kill) continue;
      killed = true;
      if (daemon) {
        worker_pid = WorkerPid(data_dir());
        daemon_->Kill();
      } else {
        int64_t pid = WorkerPid(data_dir());
        ASSERT_GT(pid, 0);
        ASSERT_EQ(::kill(static_cast<pid_t>(pid), SIGKILL), 0);
        context.TryCancel();
      }
    }
    (void)reader->Finish();
    ASSERT_FALSE(finished) << "the job ended before the " << kKills
                           << " kills; raise kSteps";
    ASSERT_TRUE(killed) << "the watch ended without a step to kill at";
    if (daemon) RestartOnceGone(worker_pid);
  }

  // Let it finish, then read its whole history.
  std::vector<v1::JobEvent> events;
  ASSERT_NO_FATAL_FAILURE(FinishedHistory(job, &events));
  EXPECT_GE(job.attempts(), kKills + 1);

  const History history = CheckHistory(events);
  // A kill before the first checkpoint restarts from scratch (no "resumed");
  // later ones resume, so most of the kills show up here.
  EXPECT_GE(history.resumes, kKills / 2);
  std::printf("%d resumes, %d of them sent lost events again\n",
              history.resumes, history.resends);
}

// lorad stopped (SIGSTOP) while the worker goes on: the worker runs steps
// and saves checkpoints lorad never records. Once a checkpoint is past every
// step lorad could have recorded, lorad is killed (the worker goes with it).
// The restart resumes from that checkpoint, and the steps in between come
// back from it: the history is whole, and says they were sent again.
TEST_F(CrashLoopTest, StepsRunWhileLoradWasStoppedComeBackFromTheCheckpoint) {
  v1::FineTuneJob job;
  grpc::Status status = StartTinyJob(*client_, kSteps, kCheckpointEvery, &job);
  ASSERT_TRUE(status.ok()) << Describe(status);
  ASSERT_GE(WatchUntilStep(*client_, job.id(), 10), 10);
  const std::string job_dir = data_dir() + "/jobs/" + job.id();
  ASSERT_EQ(::kill(daemon_->pid(), SIGSTOP), 0);
  // On a failed assertion below, lorad must be able to take its SIGTERM.
  absl::Cleanup go_on = [this] {
    if (daemon_->pid() > 0) ::kill(daemon_->pid(), SIGCONT);
  };
  // lorad recorded at most the worker's step now, which is at most two past
  // the newest checkpoint (checkpoint_every 2; a save follows its step).
  const int newest = NewestCheckpoint(job_dir);
  ASSERT_GT(newest, 0) << "no checkpoint after step 10";
  const int64_t worker_pid = WorkerPid(data_dir());
  ASSERT_GT(worker_pid, 0);
  const absl::Time deadline = absl::Now() + absl::Minutes(2);
  while (NewestCheckpoint(job_dir) < newest + 2 * kCheckpointEvery &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  const int ahead = NewestCheckpoint(job_dir);
  daemon_->Kill();
  ASSERT_GE(ahead, newest + 2 * kCheckpointEvery)
      << "the worker did not go on while lorad was stopped";
  RestartOnceGone(worker_pid);

  std::vector<v1::JobEvent> events;
  ASSERT_NO_FATAL_FAILURE(FinishedHistory(job, &events));
  const History history = CheckHistory(events);
  EXPECT_GE(history.resumes, 1);
  EXPECT_GE(history.resends, 1)
      << "the checkpoint at step " << ahead
      << " was past lorad's record, yet nothing was sent again";
}

}  // namespace
}  // namespace lorad::testing
