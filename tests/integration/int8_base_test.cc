// A fine-tune job with quantization "int8" through the real daemon and
// worker: it trains on the LLM.int8 base (about 1 byte per base parameter),
// its adapter is registered as an int8 adapter, and generation and merged
// export with it run on the int8 base, not the NF4 one.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client_util.h"
#include "daemon_process.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "serving_util.h"

namespace lorad::testing {
namespace {

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

double MeanLoss(const std::vector<v1::TrainStep>& steps, size_t from,
                size_t n) {
  double sum = 0;
  for (size_t i = from; i < from + n; ++i) sum += steps[i].loss();
  return sum / static_cast<double>(n);
}

// The log-probabilities of a greedy continuation with `adapter`.
std::vector<float> GreedyLogprobs(v1::Inference::Stub& stub,
                                  const std::string& adapter) {
  grpc::ClientContext context;
  v1::GenerateRequest request;
  request.set_adapter(adapter);
  request.set_prompt("Q0: say apple.");
  request.set_max_new_tokens(6);
  request.set_logprobs(true);
  auto reader = stub.Generate(&context, request);
  v1::GenerateResponse response;
  std::vector<float> out;
  while (reader->Read(&response)) {
    for (const v1::TokenLogprob& lp : response.logprobs()) {
      out.push_back(lp.logprob());
    }
  }
  const grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << Describe(status);
  return out;
}

TEST(Int8BaseTest, TrainsAndServesOnTheInt8Base) {
  if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
  TempDir dir;
  auto daemon = StartWithWorker(dir.path() + "/data");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  Client client((*daemon)->address());
  auto adapters = v1::Adapters::NewStub(client.channel);

  v1::Dataset dataset;
  grpc::Status status = UploadPairs(client, &dataset);
  ASSERT_TRUE(status.ok()) << Describe(status);

  // A quantization that does not exist is refused, naming the field.
  v1::CreateFineTuneJobRequest bad = TinyJobRequest(dataset.id(), 40, 20);
  bad.mutable_hyperparameters()->set_quantization("int4");
  v1::FineTuneJob refused;
  status = CreateJob(client, bad, &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("quantization"), std::string::npos)
      << status.error_message();

  v1::CreateFineTuneJobRequest request = TinyJobRequest(dataset.id(), 40, 20);
  request.set_suffix("int8-job");
  request.mutable_hyperparameters()->set_quantization("int8");
  v1::FineTuneJob job;
  status = CreateJob(client, request, &job);
  ASSERT_TRUE(status.ok()) << Describe(status);
  std::vector<v1::JobEvent> events;
  status = Watch(client, job.id(), 0, &events);
  ASSERT_TRUE(status.ok()) << Describe(status);
  ASSERT_TRUE(GetJob(client, job.id(), &job).ok());
  ASSERT_EQ(job.state(), v1::SUCCEEDED)
      << job.error().code() << ": " << job.error().message();
  EXPECT_EQ(job.hyperparameters().quantization(), "int8");

  // CB plus an fp32 SCB per row: just over 1 byte per base parameter (the
  // tiny model's narrowest input is 64 wide), twice NF4's ~0.52.
  EXPECT_GT(job.base_bytes_per_param(), 1.0);
  EXPECT_LE(job.base_bytes_per_param(), 1.0 + 4.0 / 64);
  const std::vector<v1::TrainStep> steps = Steps(events);
  ASSERT_GE(steps.size(), 10u);
  const double first = MeanLoss(steps, 0, 5);
  const double last = MeanLoss(steps, steps.size() - 5, 5);
  EXPECT_LT(last, 0.7 * first) << "loss went from " << first << " to " << last;

  // Registered as an int8 adapter, so that it is served on the int8 base.
  grpc::ClientContext list_context;
  v1::ListAdaptersResponse list;
  status = adapters->List(&list_context, v1::ListAdaptersRequest(), &list);
  ASSERT_TRUE(status.ok()) << Describe(status);
  ASSERT_EQ(list.adapters_size(), 1);
  const v1::Adapter trained = list.adapters(0);
  EXPECT_EQ(trained.name(), "int8-job");
  EXPECT_EQ(trained.source_job(), job.id());
  EXPECT_EQ(trained.quantization(), "int8");

  // The same files uploaded carry no quantization: they are served on the
  // NF4 base, so the same greedy tokens get other log-probabilities.
  AdapterFiles files;
  for (const char* f : {"adapter_config.json", "adapter_model.safetensors"}) {
    files[f] = ReadWhole(job.adapter_path() + "/" + f);
    ASSERT_FALSE(files[f].empty()) << f;
  }
  v1::Adapter copy;
  status = UploadAdapter(*adapters, "nf4-copy", files, &copy);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(copy.quantization(), "");

  const std::vector<float> on_int8 =
      GreedyLogprobs(*client.inference, job.id());
  const std::vector<float> by_name =
      GreedyLogprobs(*client.inference, "int8-job");
  const std::vector<float> on_nf4 =
      GreedyLogprobs(*client.inference, "nf4-copy");
  ASSERT_FALSE(on_int8.empty());
  EXPECT_EQ(on_int8, by_name);  // the job id and the name are one adapter
  ASSERT_FALSE(on_nf4.empty());
  EXPECT_GT(std::abs(on_int8[0] - on_nf4[0]), 1e-5f)
      << "int8 " << on_int8[0] << " vs nf4 " << on_nf4[0];

  // The merged export dequantizes the int8 base.
  grpc::ClientContext export_context;
  v1::ExportMergedRequest export_request;
  export_request.set_name("int8-job");
  v1::ExportMergedResponse exported;
  status = adapters->ExportMerged(&export_context, export_request, &exported);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_GT(exported.size_bytes(), 0);
  EXPECT_TRUE(std::filesystem::exists(exported.path() + "/model.safetensors"));
}

}  // namespace
}  // namespace lorad::testing
