// Regression: a WatchJob with after_seq past the job's last event never
// ended, even when the job did. It now ends OK once the job is final,
// having written nothing the caller already had.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client_util.h"
#include "daemon_process.h"
#include "gtest/gtest.h"

namespace lorad::testing {
namespace {

constexpr int64_t kFarPastTheEnd = int64_t{1} << 50;

TEST(FaultsWatchTest, WatchFromPastTheEndEndsWhenTheJobDoes) {
  if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
  TempDir dir;
  auto daemon = StartWithWorker(dir.path() + "/data");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  Client client((*daemon)->address());
  v1::FineTuneJob job;
  grpc::Status status = StartTinyJob(client, 30, 10, &job);
  ASSERT_TRUE(status.ok()) << Describe(status);

  // Started while the job is queued or running: only its final state can
  // end it.
  std::vector<v1::JobEvent> events;
  status = Watch(client, job.id(), kFarPastTheEnd, &events, absl::Minutes(5));
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_TRUE(events.empty()) << events.front().DebugString();
  v1::FineTuneJob done;
  status = GetJob(client, job.id(), &done);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(done.state(), v1::SUCCEEDED) << done.DebugString();

  // Started once the job is final: ends at once, empty.
  events.clear();
  status = Watch(client, job.id(), kFarPastTheEnd, &events, absl::Seconds(30));
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_TRUE(events.empty());

  // From the start it still gets the whole history, ending in the final state.
  events.clear();
  status = Watch(client, job.id(), 0, &events, absl::Seconds(30));
  ASSERT_TRUE(status.ok()) << Describe(status);
  ASSERT_FALSE(events.empty());
  EXPECT_TRUE(events.back().has_state());
}

}  // namespace
}  // namespace lorad::testing
