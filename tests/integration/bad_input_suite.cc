#include "bad_input_suite.h"

#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"

namespace lorad::testing {
namespace {

std::chrono::system_clock::time_point In(int seconds) {
  return std::chrono::system_clock::now() + std::chrono::seconds(seconds);
}

// The longest message the daemon sends (grpc_status.h), plus its "(N more
// bytes)" note.
constexpr size_t kMaxMessageBytes = 2048 + 64;

}  // namespace

std::string Big(size_t n) { return std::string(n, 'x'); }

std::string Nested(int depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

BackgroundStreamer::BackgroundStreamer(const std::string& address)
    : client_(address), thread_([this] { Loop(); }) {}

BackgroundStreamer::~BackgroundStreamer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void BackgroundStreamer::Loop() {
  while (!stop_) {
    grpc::ClientContext context;
    context.set_deadline(In(300));
    v1::GenerateRequest request;
    request.set_prompt("the background stream");
    request.set_max_new_tokens(48);
    auto reader = client_.inference->Generate(&context, request);
    v1::GenerateResponse response;
    int tokens = 0;
    std::string finish;
    while (reader->Read(&response)) {
      tokens += response.token_ids_size();
      if (!response.finish_reason().empty()) finish = response.finish_reason();
      absl::MutexLock lock(&mu_);
      streaming_ = true;
    }
    grpc::Status status = reader->Finish();
    absl::MutexLock lock(&mu_);
    // The tiny model may end on EOS before 48 tokens; either end is normal.
    if (!status.ok() || tokens < 1 || (finish != "length" && finish != "eos")) {
      failures_.push_back(absl::StrCat("stream ended with ", Describe(status),
                                       " after ", tokens, " tokens, finish \"",
                                       finish, "\""));
      streaming_ = true;  // WaitStreaming returns; the failure is reported
    } else {
      ++completed_;
    }
  }
}

bool BackgroundStreamer::WaitStreaming() {
  absl::MutexLock lock(&mu_);
  auto streaming = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return streaming_;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&streaming), absl::Minutes(5));
}

std::vector<std::string> BackgroundStreamer::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  return failures_;
}

TempDir* BadInputSuite::dir_ = nullptr;
std::unique_ptr<DaemonProcess> BadInputSuite::daemon_;
std::unique_ptr<Client> BadInputSuite::client_;
std::unique_ptr<v1::Adapters::Stub> BadInputSuite::adapters_;
std::unique_ptr<v1::BatchInference::Stub> BadInputSuite::batch_;
std::unique_ptr<v1::Telemetry::Stub> BadInputSuite::telemetry_;
std::string BadInputSuite::dataset_id_;
int BadInputSuite::cases_run_ = 0;

std::string BadInputSuite::data_dir() { return dir_->path() + "/data"; }
std::string BadInputSuite::scratch_dir() { return dir_->path() + "/scratch"; }

void BadInputSuite::SetUpTestSuite() {
  if (!WorkerBuilt()) return;
  dir_ = new TempDir();
  auto daemon = StartWithWorker(data_dir());
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  daemon_ = *std::move(daemon);
  client_ = std::make_unique<Client>(daemon_->address());
  adapters_ = v1::Adapters::NewStub(client_->channel);
  batch_ = v1::BatchInference::NewStub(client_->channel);
  telemetry_ = v1::Telemetry::NewStub(client_->channel);
  v1::Dataset dataset;
  grpc::Status status =
      Upload(*client_, "good.jsonl", PromptCompletionJsonl(8), &dataset);
  ASSERT_TRUE(status.ok()) << Describe(status);
  dataset_id_ = dataset.id();
}

void BadInputSuite::TearDownTestSuite() {
  if (daemon_ != nullptr) {
    EXPECT_GE(cases_run_, 100) << "the suite should hold at least 100 cases";
    EXPECT_EQ(daemon_->Terminate(), 0) << "lorad did not exit cleanly";
  }
  daemon_.reset();
  client_.reset();
  adapters_.reset();
  batch_.reset();
  telemetry_.reset();
  delete dir_;
  dir_ = nullptr;
}

void BadInputSuite::SetUp() {
  if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
  ASSERT_NE(daemon_, nullptr);
  streamer_ = std::make_unique<BackgroundStreamer>(daemon_->address());
  ASSERT_TRUE(streamer_->WaitStreaming()) << "no background stream started";
}

void BadInputSuite::TearDown() {
  if (streamer_ == nullptr) return;
  const std::vector<std::string> failures = streamer_->Stop();
  EXPECT_TRUE(failures.empty()) << failures.front();
  EXPECT_GE(streamer_->completed(), 1);
  EXPECT_TRUE(ProcessRunning(daemon_->pid())) << "lorad died";
  std::string finish;
  grpc::Status after = Generate(Prompt("still serving", 3), &finish);
  EXPECT_TRUE(after.ok()) << Describe(after);
  EXPECT_FALSE(finish.empty());
}

void BadInputSuite::Run(const std::vector<BadCase>& cases) {
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    ++cases_run_;
    const grpc::Status status = c.call();
    EXPECT_EQ(status.error_code(), c.code) << Describe(status);
    EXPECT_TRUE(absl::StrContains(status.error_message(), c.needle))
        << "want \"" << c.needle
        << "\" in: " << status.error_message().substr(0, 300);
    EXPECT_LE(status.error_message().size(), kMaxMessageBytes);
  }
}

grpc::Status BadInputSuite::Generate(const v1::GenerateRequest& request,
                                     std::string* finish_reason) {
  grpc::ClientContext context;
  context.set_deadline(In(120));
  auto reader = client_->inference->Generate(&context, request);
  v1::GenerateResponse response;
  while (reader->Read(&response)) {
    if (finish_reason != nullptr && !response.finish_reason().empty()) {
      *finish_reason = response.finish_reason();
    }
  }
  return reader->Finish();
}

v1::GenerateRequest BadInputSuite::Prompt(const std::string& prompt,
                                          int max_new_tokens) {
  v1::GenerateRequest request;
  request.set_prompt(prompt);
  request.set_max_new_tokens(max_new_tokens);
  return request;
}

grpc::Status BadInputSuite::CreateJob(
    const v1::CreateFineTuneJobRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(In(60));
  v1::FineTuneJob job;
  return client_->fine_tuning->CreateJob(&context, request, &job);
}

v1::CreateFineTuneJobRequest BadInputSuite::GoodJob() {
  v1::CreateFineTuneJobRequest request;
  request.set_training_file(dataset_id_);
  request.mutable_hyperparameters()->set_rank(8);
  request.mutable_hyperparameters()->set_learning_rate(1e-3f);
  request.mutable_hyperparameters()->set_max_steps(1);
  return request;
}

grpc::Status BadInputSuite::UploadDataset(const std::string& filename,
                                          const std::string& contents) {
  v1::Dataset dataset;
  return Upload(*client_, filename, contents, &dataset, -1, 64 << 10);
}

grpc::Status BadInputSuite::CreateBatch(const std::string& filename,
                                        const std::string& jsonl,
                                        const v1::GenerateRequest& defaults) {
  grpc::ClientContext context;
  context.set_deadline(In(120));
  v1::BatchJob job;
  auto writer = batch_->CreateJob(&context, &job);
  v1::CreateBatchJobRequest request;
  request.mutable_header()->set_filename(filename);
  request.mutable_header()->set_size_bytes(static_cast<int64_t>(jsonl.size()));
  *request.mutable_header()->mutable_defaults() = defaults;
  bool ok = writer->Write(request);
  for (size_t at = 0; ok && at < jsonl.size(); at += 64 << 10) {
    v1::CreateBatchJobRequest chunk;
    chunk.set_chunk(jsonl.substr(at, 64 << 10));
    ok = writer->Write(chunk);
  }
  writer->WritesDone();
  return writer->Finish();
}

grpc::Status BadInputSuite::UploadAdapterFiles(
    const std::string& name,
    const std::vector<std::pair<std::string, std::string>>& files) {
  grpc::ClientContext context;
  context.set_deadline(In(120));
  v1::Adapter adapter;
  auto writer = adapters_->Upload(&context, &adapter);
  v1::UploadAdapterRequest request;
  request.mutable_header()->set_name(name);
  bool ok = writer->Write(request);
  for (const auto& [file, bytes] : files) {
    for (size_t at = 0; ok && (at < bytes.size() || at == 0); at += 64 << 10) {
      v1::UploadAdapterRequest chunk;
      chunk.mutable_chunk()->set_filename(file);
      chunk.mutable_chunk()->set_data(bytes.substr(at, 64 << 10));
      ok = writer->Write(chunk);
      if (bytes.empty()) break;
    }
  }
  writer->WritesDone();
  return writer->Finish();
}

}  // namespace lorad::testing
