// The bad-input suite's fixture: one real daemon and worker for the whole
// suite, a second client that keeps a Generate stream running while the bad
// calls are made, and a table runner that checks each call's exact code and
// a word of its message.
#ifndef LORAD_TESTS_INTEGRATION_BAD_INPUT_SUITE_H_
#define LORAD_TESTS_INTEGRATION_BAD_INPUT_SUITE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "client_util.h"
#include "daemon_process.h"
#include "grpcpp/support/status.h"
#include "gtest/gtest.h"
#include "lorad/v1/lorad.grpc.pb.h"

namespace lorad::testing {

// One bad call: what it sends, the exact code, and a word the message must
// hold (the field it names).
struct BadCase {
  std::string name;
  std::function<grpc::Status()> call;
  grpc::StatusCode code;
  std::string needle;
};

// Runs Generate streams one after another on its own channel until
// stopped, recording how each ended.
class BackgroundStreamer {
 public:
  explicit BackgroundStreamer(const std::string& address);
  ~BackgroundStreamer();
  // Blocks until the first stream has delivered a token (false after a
  // generous deadline).
  bool WaitStreaming();
  // Lets the running stream finish, then stops; the streams' failures.
  std::vector<std::string> Stop();
  int completed() const { return completed_.load(); }

 private:
  void Loop();

  Client client_;
  std::atomic<bool> stop_{false};
  std::atomic<int> completed_{0};
  absl::Mutex mu_;
  bool streaming_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::string> failures_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

class BadInputSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  // Starts the background streamer and waits until it streams.
  void SetUp() override;
  // Stops it, and checks that every one of its streams completed normally
  // and that the daemon still serves.
  void TearDown() override;

  // Runs every case of `cases` while the streamer runs.
  void Run(const std::vector<BadCase>& cases);

  // Helpers for the cases. Each call has a deadline, so a hang shows as
  // DEADLINE_EXCEEDED instead of a stuck test.
  static grpc::Status Generate(const v1::GenerateRequest& request,
                               std::string* finish_reason = nullptr);
  static v1::GenerateRequest Prompt(const std::string& prompt,
                                    int max_new_tokens = 4);
  static grpc::Status CreateJob(const v1::CreateFineTuneJobRequest& request);
  static v1::CreateFineTuneJobRequest GoodJob();
  static grpc::Status UploadDataset(const std::string& filename,
                                    const std::string& contents);
  static grpc::Status CreateBatch(const std::string& filename,
                                  const std::string& jsonl,
                                  const v1::GenerateRequest& defaults = {});
  static grpc::Status UploadAdapterFiles(
      const std::string& name,
      const std::vector<std::pair<std::string, std::string>>& files);

  static std::string data_dir();
  static std::string scratch_dir();

  static TempDir* dir_;
  static std::unique_ptr<DaemonProcess> daemon_;
  static std::unique_ptr<Client> client_;
  static std::unique_ptr<v1::Adapters::Stub> adapters_;
  static std::unique_ptr<v1::BatchInference::Stub> batch_;
  static std::unique_ptr<v1::Telemetry::Stub> telemetry_;
  static std::string dataset_id_;
  static int cases_run_;
  std::unique_ptr<BackgroundStreamer> streamer_;
};

// A string of `n` bytes of 'x'.
std::string Big(size_t n);
// `depth` nested arrays: [[[...]]].
std::string Nested(int depth);

}  // namespace lorad::testing

#endif  // LORAD_TESTS_INTEGRATION_BAD_INPUT_SUITE_H_
