// A hung worker (SIGSTOP) is detected by the daemon's pings, killed and
// replaced within --worker_hang_timeout (plus a ping interval): the
// Generate streams it held fail UNAVAILABLE, health goes NOT_SERVING and
// back to SERVING, and the next Generate is served by a new worker.
#include <signal.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client_util.h"
#include "daemon_process.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "integration/protos/health_check.grpc.pb.h"

namespace lorad::testing {
namespace {

using grpc::health::v1::HealthCheckResponse;

constexpr absl::Duration kHangTimeout = absl::Seconds(2);
// Detection is due within 1.25 x the timeout; the rest is slack for a
// loaded machine, still far below the 30 s default and the stream deadline.
constexpr absl::Duration kBound = absl::Seconds(15);

v1::GenerateRequest LongRequest() {
  v1::GenerateRequest request;
  request.set_prompt("Count with me: one, two, three,");
  request.set_max_new_tokens(960);
  request.set_temperature(1.0f);
  request.set_seed(11);
  return request;
}

// Follows Health.Watch for one service name, keeping every status seen.
class HealthWatcher {
 public:
  HealthWatcher(const std::shared_ptr<grpc::Channel>& channel,
                const std::string& service)
      : stub_(grpc::health::v1::Health::NewStub(channel)) {
    request_.set_service(service);
    thread_ = std::thread([this] {
      auto reader = stub_->Watch(&context_, request_);
      HealthCheckResponse response;
      while (reader->Read(&response)) {
        absl::MutexLock lock(&mu_);
        seen_.push_back(response.status());
      }
      reader->Finish().IgnoreError();
    });
  }
  ~HealthWatcher() {
    context_.TryCancel();
    thread_.join();
  }

  // Waits until the statuses seen, in order, contain `want` as a
  // subsequence.
  bool Saw(const std::vector<HealthCheckResponse::ServingStatus>& want,
           absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto contains = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      size_t i = 0;
      for (auto s : seen_) {
        if (i < want.size() && s == want[i]) ++i;
      }
      return i == want.size();
    };
    return mu_.AwaitWithTimeout(absl::Condition(&contains), timeout);
  }

 private:
  std::unique_ptr<grpc::health::v1::Health::Stub> stub_;
  grpc::health::v1::HealthCheckRequest request_;
  grpc::ClientContext context_;
  absl::Mutex mu_;
  std::vector<HealthCheckResponse::ServingStatus> seen_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

HealthCheckResponse::ServingStatus Check(Client& client,
                                         const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(client.channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  if (!stub->Check(&context, request, &response).ok()) {
    return HealthCheckResponse::UNKNOWN;
  }
  return response.status();
}

TEST(FaultsLivenessTest, HungWorkerIsReplacedAndItsStreamsFailUnavailable) {
  if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
  TempDir dir;
  const std::string data_dir = dir.path() + "/data";
  auto daemon = StartWithWorker(
      data_dir, {absl::StrCat("--worker_hang_timeout=",
                              absl::FormatDuration(kHangTimeout))});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  Client client((*daemon)->address());
  EXPECT_EQ(Check(client, "lorad.liveness"), HealthCheckResponse::SERVING);

  HealthWatcher readiness(client.channel, "lorad.readiness");
  HealthWatcher overall(client.channel, "");
  ASSERT_TRUE(readiness.Saw({HealthCheckResponse::SERVING}, absl::Minutes(2)));
  const int64_t old_pid = WorkerPid(data_dir);
  ASSERT_GT(old_pid, 0);

  // Stream A is running when the worker stops.
  grpc::ClientContext a_context;
  a_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(5)));
  auto a = client.inference->Generate(&a_context, LongRequest());
  v1::GenerateResponse response;
  ASSERT_TRUE(a->Read(&response)) << Describe(a->Finish());
  const bool a_finished_before_stop = !response.finish_reason().empty();
  ASSERT_EQ(::kill(static_cast<pid_t>(old_pid), SIGSTOP), 0);
  const absl::Time stopped = absl::Now();

  // Stream B is sent to the stopped worker.
  grpc::ClientContext b_context;
  b_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(5)));
  auto b = client.inference->Generate(&b_context, LongRequest());
  while (b->Read(&response)) {
  }
  const grpc::Status b_status = b->Finish();
  const absl::Duration b_took = absl::Now() - stopped;
  EXPECT_EQ(b_status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << Describe(b_status);
  EXPECT_LT(b_took, kBound);

  bool a_finished = a_finished_before_stop;
  while (a->Read(&response)) {
    if (!response.finish_reason().empty()) a_finished = true;
  }
  const grpc::Status a_status = a->Finish();
  if (!a_finished) {
    EXPECT_EQ(a_status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << Describe(a_status);
    EXPECT_LT(absl::Now() - stopped, kBound);
  }

  EXPECT_FALSE(ProcessRunning(static_cast<pid_t>(old_pid)))
      << "the hung worker was not killed";
  const std::vector<HealthCheckResponse::ServingStatus> down_up = {
      HealthCheckResponse::SERVING, HealthCheckResponse::NOT_SERVING,
      HealthCheckResponse::SERVING};
  EXPECT_TRUE(readiness.Saw(down_up, absl::Minutes(2)));
  EXPECT_TRUE(overall.Saw(down_up, absl::Minutes(2)));
  EXPECT_EQ(Check(client, "lorad.liveness"), HealthCheckResponse::SERVING);

  // A new worker serves the next request.
  grpc::ClientContext c_context;
  c_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(2)));
  v1::GenerateRequest short_request = LongRequest();
  short_request.set_max_new_tokens(8);
  auto c = client.inference->Generate(&c_context, short_request);
  int chunks = 0;
  while (c->Read(&response)) ++chunks;
  const grpc::Status c_status = c->Finish();
  EXPECT_TRUE(c_status.ok()) << Describe(c_status);
  EXPECT_GT(chunks, 0);
  const int64_t new_pid = WorkerPid(data_dir);
  EXPECT_GT(new_pid, 0);
  EXPECT_NE(new_pid, old_pid);
}

}  // namespace
}  // namespace lorad::testing
