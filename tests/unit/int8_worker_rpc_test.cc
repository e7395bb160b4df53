// The worker's int8 base over its RPCs (an in-process WorkerServiceImpl on
// a unix socket): requests name the base's quantization, an unknown one is
// refused, and a merged export of the int8 base is the int8 weights
// dequantized.
#include <grpcpp/grpcpp.h>

#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lorad/internal/worker/v1/worker.grpc.pb.h"
#include "lorad/model/safetensors.h"
#include "lorad/model/tiny_model.h"
#include "lorad/worker/int8_weight.h"
#include "serving_test_util.h"
#include "worker_service.h"

namespace lorad::worker {
namespace {

namespace wv1 = lorad::worker::v1;

class Int8Rpc : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::TestRoot("i8");
    service_ =
        std::make_unique<WorkerServiceImpl>(torch::kCPU, WorkerOptions());
    grpc::ServerBuilder builder;
    const std::string socket = "unix:" + root_ + "/w.sock";
    builder.AddListeningPort(socket, grpc::InsecureServerCredentials());
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = wv1::Worker::NewStub(
        grpc::CreateChannel(socket, grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }
  // The [out, in] fp32 tensor `name` of `file`.
  static torch::Tensor Read(const std::string& file, const std::string& name) {
    auto f = model::SafetensorsFile::Open(file);
    EXPECT_TRUE(f.ok()) << f.status();
    const model::TensorInfo* t = (*f)->Find(name);
    EXPECT_NE(t, nullptr) << name;
    auto values = model::ToFloat32(*t);
    EXPECT_TRUE(values.ok());
    torch::Tensor out = torch::empty(t->shape, torch::kFloat32);
    std::memcpy(out.data_ptr(), values->data(), values->size() * 4);
    return out;
  }
  grpc::Status Export(const std::string& quantization,
                      const std::string& out_dir) {
    grpc::ClientContext ctx;
    wv1::ExportMergedRequest req;
    req.set_model("tiny");
    req.set_model_cache_dir(root_ + "/models");
    req.set_out_dir(out_dir);
    req.set_quantization(quantization);
    wv1::ExportMergedResponse resp;
    return stub_->ExportMerged(&ctx, req, &resp);
  }

  std::string root_;
  std::unique_ptr<WorkerServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<wv1::Worker::Stub> stub_;
};

TEST_F(Int8Rpc, UnknownIsRefused) {
  grpc::Status status = Export("int4", root_ + "/bad");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("quantization"), std::string::npos)
      << status.error_message();
  grpc::ClientContext ctx;
  wv1::LoadAdapterRequest load;
  load.set_model("tiny");
  load.set_model_cache_dir(root_ + "/models");
  load.set_name("a");
  load.set_adapter_dir(root_ + "/nowhere");
  load.set_quantization("fp8");
  wv1::LoadAdapterResponse resp;
  status = stub_->LoadAdapter(&ctx, load, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("fp8"), std::string::npos)
      << status.error_message();
}

// Each quantization is its own base: the int8 export holds bitsandbytes'
// int8 weights dequantized (in bf16), the NF4 export other values.
TEST_F(Int8Rpc, ExportIsInt8Dequantized) {
  ASSERT_TRUE(Export("int8", root_ + "/int8").ok());
  ASSERT_TRUE(Export("", root_ + "/nf4").ok());
  auto dir = model::ResolveModelDir("tiny", root_ + "/models");
  ASSERT_TRUE(dir.ok());
  const std::string key = "model.layers.0.self_attn.q_proj.weight";
  torch::Tensor w = Read(*dir + "/model.safetensors", key).contiguous();
  const Int8Weight q = Int8Weight::Quantize(w.data_ptr<float>(), w.size(0),
                                            w.size(1), torch::kCPU);
  const torch::Tensor want = q.Dequantize(torch::kBFloat16).to(torch::kFloat32);
  const torch::Tensor int8 = Read(root_ + "/int8/model.safetensors", key);
  const torch::Tensor nf4 = Read(root_ + "/nf4/model.safetensors", key);
  EXPECT_TRUE(torch::equal(int8, want));
  EXPECT_GT((nf4 - int8).abs().max().item<float>(), 1e-3f);
}

}  // namespace
}  // namespace lorad::worker
