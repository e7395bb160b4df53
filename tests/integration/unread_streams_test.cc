// 600 concurrent Generate streams that a client opens and never reads must
// not cost the daemon a thread each: the relay is callback reactors chained
// end to end, not a thread per call. The daemon's thread count (from
// /proc/<pid>/status) stays bounded while they are open; once they are
// cancelled it still serves a normal Generate.
#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client_util.h"
#include "daemon_process.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/client_callback.h"
#include "gtest/gtest.h"

namespace lorad::testing {
namespace {

constexpr int kStreams = 600;
// Generous: the test must pass on a cold, loaded 2-core machine.
constexpr absl::Duration kDeadline = absl::Minutes(10);

// Threads: from /proc/<pid>/status, or -1.
int ThreadCount(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (!absl::StartsWith(line, "Threads:")) continue;
    int threads = -1;
    if (absl::SimpleAtoi(line.substr(8), &threads)) return threads;
  }
  return -1;
}

v1::GenerateRequest Request() {
  v1::GenerateRequest request;
  request.set_prompt("Count with me: one, two, three,");
  // Several chunks per stream; greedy so that no sampling state differs.
  request.set_max_new_tokens(8);
  return request;
}

// Counts what happened to all the streams.
struct Tally {
  absl::Mutex mu;
  int answered ABSL_GUARDED_BY(mu) = 0;  // the daemon's first write arrived
  int ended ABSL_GUARDED_BY(mu) = 0;
  std::vector<grpc::Status> failures ABSL_GUARDED_BY(mu);
};

// A Generate call that is started and never read. Its initial metadata come
// with the daemon's first response, which therefore says that the daemon
// has relayed a chunk from the worker.
class UnreadStream final
    : public grpc::ClientReadReactor<v1::GenerateResponse> {
 public:
  UnreadStream(v1::Inference::Stub* stub, Tally* tally)
      : tally_(tally), request_(Request()) {
    stub->async()->Generate(&context_, &request_, this);
    StartCall();
  }

  void Cancel() { context_.TryCancel(); }

  void OnReadInitialMetadataDone(bool ok) override {
    if (!ok) return;
    absl::MutexLock lock(&tally_->mu);
    ++tally_->answered;
  }

  void OnDone(const grpc::Status& status) override {
    absl::MutexLock lock(&tally_->mu);
    ++tally_->ended;
    if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
      tally_->failures.push_back(status);
    }
  }

 private:
  Tally* const tally_;
  const v1::GenerateRequest request_;
  grpc::ClientContext context_;
};

// A normal, read Generate call; the number of tokens it got.
int GenerateOnce(Client& client, grpc::Status* status) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kDeadline));
  auto reader = client.inference->Generate(&context, Request());
  int tokens = 0;
  v1::GenerateResponse response;
  while (reader->Read(&response)) tokens += response.token_ids_size();
  *status = reader->Finish();
  return tokens;
}

TEST(UnreadStreamsTest, DaemonThreadsStayBoundedAndItServesAfterwards) {
  if (!WorkerBuilt()) GTEST_SKIP() << "lorad-worker was not built";
  TempDir dir;
  auto daemon = StartWithWorker(dir.path() + "/data", {"--device=cpu"});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  Client client((*daemon)->address());

  // Warm up: the worker writes and loads the tiny model once.
  grpc::Status status;
  GenerateOnce(client, &status);
  ASSERT_TRUE(status.ok()) << Describe(status);
  const pid_t pid = (*daemon)->pid();
  const int baseline = ThreadCount(pid);
  ASSERT_GT(baseline, 0);
  // Room for gRPC's own pools to grow with the load, but not for a thread
  // per call.
  const int bound = std::max(100, baseline + 50);

  Tally tally;
  std::vector<std::unique_ptr<UnreadStream>> streams;
  int most = baseline;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(
        std::make_unique<UnreadStream>(client.inference.get(), &tally));
    if (i % 50 == 0) most = std::max(most, ThreadCount(pid));
  }

  // Every stream gets its first response while none is read; the daemon's
  // threads are sampled all along.
  const absl::Time deadline = absl::Now() + kDeadline;
  int answered = 0;
  while (absl::Now() < deadline) {
    most = std::max(most, ThreadCount(pid));
    {
      absl::MutexLock lock(&tally.mu);
      answered = tally.answered;
      ASSERT_TRUE(tally.failures.empty()) << Describe(tally.failures.front());
    }
    if (answered == kStreams) break;
    absl::SleepFor(absl::Milliseconds(20));  // poll interval
  }
  ASSERT_EQ(answered, kStreams) << "streams answered before the deadline";
  // And once more while they are all open and unread.
  most = std::max(most, ThreadCount(pid));
  EXPECT_LT(most, bound) << "daemon threads: " << baseline << " at rest, "
                         << most << " at most with " << kStreams
                         << " unread streams open";

  for (auto& stream : streams) stream->Cancel();
  {
    absl::MutexLock lock(&tally.mu);
    auto all_ended = [&tally]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(tally.mu) {
      return tally.ended == kStreams;
    };
    ASSERT_TRUE(
        tally.mu.AwaitWithTimeout(absl::Condition(&all_ended), kDeadline));
    for (const grpc::Status& failure : tally.failures) {
      ADD_FAILURE() << Describe(failure);
    }
  }
  streams.clear();

  EXPECT_GT(GenerateOnce(client, &status), 0);
  EXPECT_TRUE(status.ok()) << Describe(status);
}

}  // namespace
}  // namespace lorad::testing
