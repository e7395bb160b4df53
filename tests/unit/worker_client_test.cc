// WorkerClient against a real supervised process (tests/unit/fake_worker.cc):
// readiness waits that end at their deadline or when cancelled, unary calls
// to a SIGSTOPped worker that end within their deadline, Train liveness, and
// the Generate stream.
#include "worker_link/worker_client.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "jobs/timer_queue.h"
#include "worker_link/worker_supervisor.h"

namespace lorad::server {
namespace {

// Generous: the suite must pass on a cold, loaded 2-core machine.
constexpr absl::Duration kSlack = absl::Seconds(10);

class WorkerClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/lorad-wc-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    if (stopped_pid_ > 0) ::kill(stopped_pid_, SIGCONT);
    client_.reset();
    if (supervisor_ != nullptr) supervisor_->Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void StartWorker(const std::string& binary,
                   std::vector<std::string> extra_args = {},
                   WorkerClient::Options options = WorkerClient::Options()) {
    WorkerSupervisor::Options worker;
    worker.binary = binary;
    worker.socket_path = dir_ + "/w.sock";
    worker.extra_args = std::move(extra_args);
    supervisor_ = std::make_unique<WorkerSupervisor>(worker);
    client_ =
        std::make_unique<WorkerClient>(supervisor_.get(), &timers_, options);
    supervisor_->Start();
  }

  // SIGSTOPs the worker and waits until it has stopped (TearDown lets it go
  // on again). The worker is this process's child: the supervisor forked it.
  void StopProcess(pid_t pid) {
    stopped_pid_ = pid;
    ASSERT_EQ(::kill(pid, SIGSTOP), 0);
    siginfo_t info;
    ASSERT_EQ(::waitid(P_PID, pid, &info, WSTOPPED | WNOWAIT), 0);
  }

  std::string dir_;
  TimerQueue timers_;
  std::unique_ptr<WorkerSupervisor> supervisor_;
  std::unique_ptr<WorkerClient> client_;
  pid_t stopped_pid_ = -1;
};

TEST_F(WorkerClientTest, UnaryCallToAStoppedWorkerEndsWithinItsDeadline) {
  StartWorker(LORAD_FAKE_WORKER);
  WorkerHandle worker;
  CallOptions first;
  first.worker = &worker;
  ASSERT_TRUE(client_->Ping(first).ok());
  ASSERT_GT(worker.pid, 0);

  StopProcess(worker.pid);
  CallOptions call;
  call.deadline = absl::Seconds(1);
  const absl::Time start = absl::Now();
  absl::StatusOr<worker::v1::GetMemoryResponse> memory =
      client_->GetMemory(call);
  const absl::Duration took = absl::Now() - start;
  EXPECT_TRUE(absl::IsDeadlineExceeded(memory.status()) ||
              absl::IsUnavailable(memory.status()))
      << memory.status();
  EXPECT_LT(took, absl::Seconds(1) + kSlack);
}

TEST_F(WorkerClientTest, WaitForAWorkerThatNeverAnswersEndsAtItsDeadline) {
  StartWorker(LORAD_FAKE_WORKER, {"--never_listen"});
  const absl::Time start = absl::Now();
  absl::StatusOr<WorkerHandle> worker =
      client_->AwaitReady(absl::Milliseconds(300));
  EXPECT_TRUE(absl::IsDeadlineExceeded(worker.status())) << worker.status();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(300) + kSlack);

  // A unary call reports it as the worker being unavailable.
  CallOptions call;
  call.ready_wait = absl::ZeroDuration();
  EXPECT_TRUE(absl::IsUnavailable(client_->Ping(call).status()));
}

TEST_F(WorkerClientTest, CancellingAWaitEndsItCancelled) {
  StartWorker(LORAD_FAKE_WORKER, {"--never_listen"});
  Cancellation cancel;
  std::thread canceller([&cancel] { cancel.Cancel(); });
  const absl::Time start = absl::Now();
  absl::StatusOr<WorkerHandle> worker =
      client_->AwaitReady(absl::Hours(1), &cancel);
  canceller.join();
  EXPECT_TRUE(absl::IsCancelled(worker.status())) << worker.status();
  EXPECT_LT(absl::Now() - start, kSlack);
  // Later calls with the handle end at once.
  EXPECT_TRUE(
      absl::IsCancelled(client_->AwaitReady(absl::Hours(1), &cancel).status()));
}

TEST_F(WorkerClientTest, AMissingBinaryIsAFailedPrecondition) {
  StartWorker(dir_ + "/no-such-worker");
  EXPECT_TRUE(
      absl::IsFailedPrecondition(client_->AwaitReady(absl::Hours(1)).status()));
}

TEST_F(WorkerClientTest, GenerateReturnsEveryChunkInOrder) {
  StartWorker(LORAD_FAKE_WORKER);
  worker::v1::GenerateRequest request;
  request.mutable_sampling()->set_max_new_tokens(5);
  absl::StatusOr<std::vector<worker::v1::GenerateChunk>> chunks =
      client_->Generate(request, CallOptions());
  ASSERT_TRUE(chunks.ok()) << chunks.status();
  ASSERT_EQ(chunks->size(), 5u);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ((*chunks)[i].text(), "t" + std::to_string(i));
  EXPECT_EQ(chunks->back().finish_reason(), "length");
}

// Reads one chunk, then stops reading: the stream stays open until
// cancelled, and then ends CANCELLED.
class OneChunkThenCancel final : public GenerateCall {
 public:
  absl::Notification got_chunk;
  absl::Notification ended;
  absl::Status status;

 private:
  void OnChunk(const worker::v1::GenerateChunk&) override {
    got_chunk.Notify();
  }
  void OnEnd(const absl::Status& s) override {
    status = s;
    ended.Notify();
  }
};

TEST_F(WorkerClientTest, AGenerateCallThatStopsReadingEndsWhenCancelled) {
  StartWorker(LORAD_FAKE_WORKER);
  worker::v1::GenerateRequest request;
  request.mutable_sampling()->set_max_new_tokens(3);
  OneChunkThenCancel call;
  client_->StartGenerate(request, &call);
  ASSERT_TRUE(call.got_chunk.WaitForNotificationWithTimeout(kSlack * 6));
  EXPECT_FALSE(call.ended.HasBeenNotified());
  call.Cancel();
  ASSERT_TRUE(call.ended.WaitForNotificationWithTimeout(kSlack));
  EXPECT_TRUE(absl::IsCancelled(call.status)) << call.status;
}

TEST_F(WorkerClientTest, AGenerateCallWaitingForAWorkerEndsWhenCancelled) {
  StartWorker(LORAD_FAKE_WORKER, {"--never_listen"});
  OneChunkThenCancel call;
  client_->StartGenerate(worker::v1::GenerateRequest(), &call);
  call.Cancel();
  ASSERT_TRUE(call.ended.WaitForNotificationWithTimeout(kSlack));
  EXPECT_TRUE(absl::IsCancelled(call.status)) << call.status;
  EXPECT_FALSE(call.got_chunk.HasBeenNotified());
}

TEST_F(WorkerClientTest, TrainOnAStoppedWorkerEndsUnavailable) {
  WorkerClient::Options options;
  options.liveness_interval = absl::Milliseconds(200);
  options.ping_deadline = absl::Milliseconds(300);
  options.liveness_failures = 2;
  StartWorker(LORAD_FAKE_WORKER, {}, options);
  absl::StatusOr<WorkerHandle> worker = client_->AwaitReady(absl::Minutes(2));
  ASSERT_TRUE(worker.ok()) << worker.status();

  int events = 0;
  const absl::Time start = absl::Now();
  absl::Status status =
      client_->Train(*worker, worker::v1::TrainRequest(), nullptr,
                     [&](const worker::v1::TrainEvent&) {
                       // The worker hangs right after its first event.
                       if (++events == 1) StopProcess(worker->pid);
                       return true;
                     });
  EXPECT_EQ(events, 1);
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_NE(status.message().find("Ping"), std::string::npos) << status;
  EXPECT_LT(absl::Now() - start, kSlack);
}

TEST_F(WorkerClientTest, TrainOnAQuietButLiveWorkerRunsUntilCancelled) {
  WorkerClient::Options options;
  options.liveness_interval = absl::Milliseconds(50);
  options.liveness_failures = 1;
  StartWorker(LORAD_FAKE_WORKER, {}, options);
  absl::StatusOr<WorkerHandle> worker = client_->AwaitReady(absl::Minutes(2));
  ASSERT_TRUE(worker.ok()) << worker.status();

  // The stream stays quiet after its first event; the client pings the
  // worker, which answers, so the stream lives on until it is cancelled.
  // The fake worker counts the Pings it answered in GetMemory's used_bytes.
  Cancellation cancel;
  std::thread canceller;
  int events = 0;
  int64_t pings = 0;
  absl::Status status = client_->Train(
      *worker, worker::v1::TrainRequest(), &cancel,
      [&](const worker::v1::TrainEvent&) {
        ++events;
        canceller = std::thread([&] {
          const absl::Time deadline = absl::Now() + kSlack * 6;
          while (pings < 3 && absl::Now() < deadline) {
            absl::StatusOr<worker::v1::GetMemoryResponse> memory =
                client_->GetMemory(CallOptions());
            if (memory.ok()) pings = memory->memory().used_bytes();
            absl::SleepFor(absl::Milliseconds(10));  // poll interval
          }
          cancel.Cancel();
        });
        return true;
      });
  canceller.join();
  EXPECT_EQ(events, 1);
  EXPECT_GE(pings, 3);
  EXPECT_TRUE(absl::IsCancelled(status)) << status;
}

}  // namespace
}  // namespace lorad::server
