// SIGTERM checkpoints the running job: a job that saves no periodic
// checkpoint (checkpoint_every past its last step) is stopped by a SIGTERM
// of lorad mid-run; lorad exits 0, and the next start resumes the job from
// the step it had reached instead of from scratch.
#include <sys/wait.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client_util.h"
#include "daemon_process.h"
#include "gtest/gtest.h"

namespace lorad::testing {
namespace {

constexpr int kSteps = 400;
constexpr int kStopAfter = 10;

TEST(DrainCheckpointTest, SigtermCheckpointsTheRunningJob) {
  if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
  TempDir dir;
  const std::string data_dir = dir.path() + "/data";
  const std::vector<std::string> flags = {
      absl::StrCat("--worker_binary=", WorkerBinary())};
  auto daemon = DaemonProcess::Start(data_dir, flags);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = std::make_unique<Client>((*daemon)->address());
  v1::FineTuneJob job;
  // No periodic checkpoint before the end.
  grpc::Status status = StartTinyJob(*client, kSteps, 100000, &job);
  ASSERT_TRUE(status.ok()) << Describe(status);

  const int reached = WatchUntilStep(*client, job.id(), kStopAfter);
  ASSERT_GE(reached, kStopAfter) << "the job never got going";
  const int wait_status = (*daemon)->Terminate(absl::Seconds(60));
  ASSERT_TRUE(WIFEXITED(wait_status)) << wait_status;
  EXPECT_EQ(WEXITSTATUS(wait_status), 0);

  daemon = DaemonProcess::Start(data_dir, flags);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  client = std::make_unique<Client>((*daemon)->address());
  std::vector<v1::JobEvent> events;
  status = Watch(*client, job.id(), 0, &events);
  ASSERT_TRUE(status.ok()) << Describe(status);
  ASSERT_TRUE(GetJob(*client, job.id(), &job).ok());
  ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.error().message();
  int resumed = -1;
  for (const v1::JobEvent& e : events) {
    if (int r = NumberAfter(EventText(e), kResumedLog); r >= 0) resumed = r;
  }
  EXPECT_GE(resumed, reached)
      << "the restart did not resume from where SIGTERM stopped the job "
         "(step "
      << reached << ")";
}

}  // namespace
}  // namespace lorad::testing
