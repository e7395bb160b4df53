// Runs the loractl binary against an in-process fake lorad and checks what
// reaches the server, what is printed, and the exit codes.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "lorad/common/hyperparameter_defaults.h"
#include "lorad/v1/lorad.grpc.pb.h"
#include "nlohmann/json.hpp"

namespace lorad::client {
namespace {

namespace v1 = lorad::v1;

class FakeDatasets final : public v1::Datasets::Service {
 public:
  grpc::Status Upload(grpc::ServerContext*,
                      grpc::ServerReader<v1::UploadDatasetRequest>* reader,
                      v1::Dataset* dataset) override {
    v1::UploadDatasetRequest request;
    std::lock_guard<std::mutex> lock(mu);
    while (reader->Read(&request)) {
      if (request.has_header()) {
        header = request.header();
      } else {
        chunk_sizes.push_back(request.chunk().size());
      }
    }
    dataset->set_id("ds-00112233aabbccdd");
    dataset->set_format("text");
    dataset->set_num_examples(3);
    dataset->set_size_bytes(header.size_bytes());
    return grpc::Status::OK;
  }

  std::mutex mu;
  v1::DatasetHeader header;
  std::vector<size_t> chunk_sizes;
};

class FakeFineTuning final : public v1::FineTuning::Service {
 public:
  grpc::Status CreateJob(grpc::ServerContext*,
                         const v1::CreateFineTuneJobRequest* request,
                         v1::FineTuneJob* job) override {
    std::lock_guard<std::mutex> lock(mu);
    created = *request;
    job->set_id("ft-new");
    job->set_state(v1::QUEUED);
    return grpc::Status::OK;
  }

  grpc::Status GetJob(grpc::ServerContext*,
                      const v1::GetFineTuneJobRequest* request,
                      v1::FineTuneJob* job) override {
    if (request->job_id() == "ft-ok") {
      *job = Job("ft-ok", v1::SUCCEEDED);
      job->set_adapter_path("/adapters/ft-ok");
      job->set_peak_memory_bytes(int64_t{900} << 20);
      job->mutable_memory_estimate()->set_total_bytes(int64_t{1} << 30);
      return grpc::Status::OK;
    }
    if (request->job_id() == "ft-bad") {
      *job = Job("ft-bad", v1::FAILED);
      return grpc::Status::OK;
    }
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("job ", request->job_id(), " not found"));
  }

  grpc::Status ListJobs(grpc::ServerContext*,
                        const v1::ListFineTuneJobsRequest* request,
                        v1::ListFineTuneJobsResponse* response) override {
    *response->add_jobs() = Job("ft-ok", v1::SUCCEEDED);
    *response->add_jobs() = Job("ft-bad", v1::FAILED);
    return grpc::Status::OK;
  }

  grpc::Status WatchJob(grpc::ServerContext*,
                        const v1::WatchFineTuneJobRequest* request,
                        grpc::ServerWriter<v1::JobEvent>* writer) override {
    if (request->job_id() != "ft-ok" && request->job_id() != "ft-bad") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such job");
    }
    v1::JobEvent event;
    event.mutable_state()->set_state(v1::RUNNING);
    writer->Write(event);
    for (int step = 1; step <= 3; ++step) {
      event.Clear();
      event.set_seq(step + 1);
      event.set_time_unix_ms(1000 * step);
      event.mutable_step()->set_step(step);
      event.mutable_step()->set_total_steps(3);
      event.mutable_step()->set_loss(2.0f / step);
      writer->Write(event);
    }
    event.Clear();
    event.mutable_eval()->set_eval_loss(1.25f);
    writer->Write(event);
    event.Clear();
    event.mutable_state()->set_state(
        request->job_id() == "ft-ok" ? v1::SUCCEEDED : v1::FAILED);
    writer->Write(event);
    return grpc::Status::OK;
  }

  static v1::FineTuneJob Job(const std::string& id, v1::JobState state) {
    v1::FineTuneJob job;
    job.set_id(id);
    job.set_state(state);
    job.set_model("tiny");
    job.set_step(3);
    job.set_total_steps(3);
    return job;
  }

  std::mutex mu;
  v1::CreateFineTuneJobRequest created;
};

class FakeInference final : public v1::Inference::Service {
 public:
  grpc::Status Generate(
      grpc::ServerContext*, const v1::GenerateRequest* request,
      grpc::ServerWriter<v1::GenerateResponse>* writer) override {
    {
      std::lock_guard<std::mutex> lock(mu);
      received = *request;
    }
    v1::GenerateResponse response;
    int32_t id = 0;
    for (const char* piece : {"Hello", ", ", "world"}) {
      response.set_text(piece);
      if (request->logprobs()) {
        response.clear_logprobs();
        v1::TokenLogprob* lp = response.add_logprobs();
        lp->set_token_id(++id);
        lp->set_token(piece);
        lp->set_logprob(-0.5f * id);
        for (int k = 0; k < request->top_logprobs(); ++k) {
          v1::TopLogprob* top = lp->add_top_logprobs();
          top->set_token_id(100 + k);
          top->set_token(k == 0 ? "\n" : "x");
          top->set_logprob(-0.25f * (k + 1));
        }
      }
      writer->Write(response);
    }
    response.Clear();
    response.set_finish_reason("length");
    response.mutable_usage()->set_prompt_tokens(
        static_cast<int32_t>(request->prompt().size()));
    response.mutable_usage()->set_completion_tokens(3);
    response.mutable_usage()->set_total_seconds(0.5f);
    writer->Write(response);
    return grpc::Status::OK;
  }

  std::mutex mu;
  v1::GenerateRequest received;
};

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class LoractlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&datasets_);
    builder.RegisterService(&fine_tuning_);
    builder.RegisterService(&inference_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("loractl_cli_test_", getpid());
    std::filesystem::create_directories(dir_);
  }

  void TearDown() override {
    server_->Shutdown();
    std::filesystem::remove_all(dir_);
  }

  // Runs loractl with `args` (shell words) against the fake server.
  Result Run(const std::string& args, int port = 0) {
    std::string out = (dir_ / "out").string();
    std::string err = (dir_ / "err").string();
    std::string command = absl::StrCat(
        LORAD_BINARY_DIR,
        "/client/loractl --address 127.0.0.1:", port != 0 ? port : port_, " ",
        args, " </dev/null >", out, " 2>", err);
    int status = std::system(command.c_str());
    Result result;
    result.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.out = Slurp(out);
    result.err = Slurp(err);
    return result;
  }

  std::string WriteFile(const std::string& name, size_t bytes) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << std::string(bytes, 'x');
    return path;
  }

  FakeDatasets datasets_;
  FakeFineTuning fine_tuning_;
  FakeInference inference_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::filesystem::path dir_;
};

TEST_F(LoractlTest, UploadSendsHeaderThenMebibyteChunks) {
  std::string path = WriteFile("train.jsonl", (5 << 19) + 7);  // 2.5 MiB + 7
  Result r = Run(absl::StrCat("upload ", path));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("ds-00112233aabbccdd"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("examples  3"), std::string::npos) << r.out;
  EXPECT_EQ(datasets_.header.filename(), "train.jsonl");
  EXPECT_EQ(datasets_.header.size_bytes(), (5 << 19) + 7);
  EXPECT_EQ(datasets_.chunk_sizes,
            (std::vector<size_t>{1 << 20, 1 << 20, (1 << 19) + 7}));
}

TEST_F(LoractlTest, MissingFileFailsBeforeAnyRpc) {
  Result r = Run(absl::StrCat("finetune --train ", (dir_ / "nope").string()));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("loractl: NOT_FOUND: no such file"), std::string::npos)
      << r.err;
  EXPECT_TRUE(datasets_.header.filename().empty());
  EXPECT_TRUE(datasets_.chunk_sizes.empty());
}

// The given fields, plus the defaults of those whose zero would mean "off"
// or "missing" once hyperparameters are sent.
TEST_F(LoractlTest, FineTuneUploadsAndSendsOnlyGivenFields) {
  std::string path = WriteFile("t.jsonl", 10);
  Result r = Run(absl::StrCat("finetune --train ", path,
                              " --validation ds-1 --rank 4 --no-follow"));
  EXPECT_EQ(r.code, 0) << r.err;
  v1::CreateFineTuneJobRequest expected;
  expected.set_training_file("ds-00112233aabbccdd");
  expected.set_validation_file("ds-1");
  v1::Hyperparameters* hp = expected.mutable_hyperparameters();
  hp->set_rank(4);
  hp->set_learning_rate(kDefaultLearningRate);
  hp->set_dropout(kDefaultDropout);
  hp->set_max_grad_norm(kDefaultMaxGradNorm);
  EXPECT_EQ(fine_tuning_.created.DebugString(), expected.DebugString());
  EXPECT_NE(r.out.find("ft-new"), std::string::npos) << r.out;
}

TEST_F(LoractlTest, BadFlagIsAUsageError) {
  Result r = Run("finetune --train ds-1 --lr fast");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--lr"), std::string::npos) << r.err;
}

TEST_F(LoractlTest, WatchExitsZeroOnSuccessWithSummary) {
  Result r = Run("watch ft-ok");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("step 3/3 loss 0.6667"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ETA 00:00:00"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("eval loss 1.2500"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("state SUCCEEDED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/adapters/ft-ok"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("peak 900.0 MiB (estimate 1.0 GiB, -12%)"),
            std::string::npos)
      << r.out;
}

TEST_F(LoractlTest, WatchExitsOneWhenTheJobFailed) {
  EXPECT_EQ(Run("watch ft-bad").code, 1);
}

TEST_F(LoractlTest, ServerErrorsNameTheCode) {
  Result r = Run("get ft-missing");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "loractl: NOT_FOUND: job ft-missing not found\n");
}

TEST_F(LoractlTest, UnreachableDaemonExitsThree) {
  int port = port_;
  server_->Shutdown();
  Result r = Run("jobs --timeout 5", port);
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("loractl: UNAVAILABLE"), std::string::npos) << r.err;
}

TEST_F(LoractlTest, JsonModePrintsOneObjectPerLine) {
  Result r = Run("jobs --json");
  EXPECT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  std::vector<std::string> ids;
  while (std::getline(lines, line)) {
    ids.push_back(nlohmann::json::parse(line)["id"]);
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"ft-ok", "ft-bad"}));
}

TEST_F(LoractlTest, GeneratePrintsTextThenUsageOnStderr) {
  Result r = Run("generate --max-tokens 3 Hi there");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "Hello, world");
  EXPECT_NE(r.err.find("prompt 8 tokens, completion 3 tokens"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("6.0 tokens/s"), std::string::npos) << r.err;
}

TEST_F(LoractlTest, GenerateLogprobsPrintsATableAfterTheText) {
  Result r =
      Run("generate --logprobs 2 --presence-penalty 0.5 --frequency-penalty -1 "
          "--json-object Hi");
  EXPECT_EQ(r.code, 0) << r.err;
  {
    std::lock_guard<std::mutex> lock(inference_.mu);
    EXPECT_TRUE(inference_.received.logprobs());
    EXPECT_EQ(inference_.received.top_logprobs(), 2);
    EXPECT_FLOAT_EQ(inference_.received.presence_penalty(), 0.5f);
    EXPECT_FLOAT_EQ(inference_.received.frequency_penalty(), -1.0f);
    EXPECT_EQ(inference_.received.response_format().type(), "json_object");
  }
  EXPECT_EQ(r.out.rfind("Hello, world\n\nTOKEN", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("\"Hello\"  1   -0.5000  \"\\n\"(-0.2500) "
                       "\"x\"(-0.5000)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\"world\"  3   -1.5000"), std::string::npos) << r.out;
}

TEST_F(LoractlTest, GenerateJsonSchemaSendsTheFile) {
  const std::string schema = (dir_ / "schema.json").string();
  std::ofstream(schema) << R"({"type":"object"})";
  Result r = Run("generate --json-schema " + schema + " Hi");
  EXPECT_EQ(r.code, 0) << r.err;
  {
    std::lock_guard<std::mutex> lock(inference_.mu);
    EXPECT_EQ(inference_.received.response_format().type(), "json_schema");
    EXPECT_EQ(inference_.received.response_format().json_schema(),
              R"({"type":"object"})");
    EXPECT_FALSE(inference_.received.logprobs());
  }
  EXPECT_EQ(r.out, "Hello, world");
  EXPECT_EQ(Run("generate --json-object --json-schema " + schema + " Hi").code,
            2);
  Result missing = Run("generate --json-schema " + schema + ".gone Hi");
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("--json-schema"), std::string::npos)
      << missing.err;
  EXPECT_EQ(Run("generate --logprobs 21 Hi").code, 2);
}

}  // namespace
}  // namespace lorad::client
