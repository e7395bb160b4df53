// lorad.worker.v1 serving RPCs on an in-process WorkerServiceImpl over a
// unix socket: the adapter pool (load, list, LRU residency, refusals,
// unload), Generate by pool name, ad-hoc directory or base, concurrent
// clients, and ExportMerged.
#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <thread>

#include "gtest/gtest.h"
#include "lorad/internal/worker/v1/worker.grpc.pb.h"
#include "serving_test_util.h"
#include "worker_service.h"

namespace lorad::worker {
namespace {

namespace wv1 = lorad::worker::v1;
using testing::AllTargets;

class WorkerRpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::TestRoot("rpc");
    WorkerOptions o;
    o.max_device_adapters = 2;
    service_ = std::make_unique<WorkerServiceImpl>(torch::kCPU, o);
    grpc::ServerBuilder builder;
    const std::string socket = "unix:" + root_ + "/w.sock";
    builder.AddListeningPort(socket, grpc::InsecureServerCredentials());
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = wv1::Worker::NewStub(
        grpc::CreateChannel(socket, grpc::InsecureChannelCredentials()));
    auto dir = model::ResolveModelDir("tiny", root_ + "/models");
    ASSERT_TRUE(dir.ok());
    auto config = model::ModelConfig::FromDir(*dir);
    ASSERT_TRUE(config.ok());
    config_ = *config;
    for (int i = 0; i < 3; ++i) {
      testing::WriteAdapter(Dir(i), config_, 4 + 4 * i, 8, AllTargets(),
                            10 + i);
    }
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }
  std::string Dir(int i) { return root_ + "/a" + std::to_string(i); }

  grpc::Status Load(const std::string& name, const std::string& dir,
                    wv1::LoadAdapterResponse* resp = nullptr) {
    grpc::ClientContext ctx;
    wv1::LoadAdapterRequest req;
    req.set_model("tiny");
    req.set_model_cache_dir(root_ + "/models");
    req.set_name(name);
    req.set_version(7);
    req.set_adapter_dir(dir);
    wv1::LoadAdapterResponse ignored;
    return stub_->LoadAdapter(&ctx, req, resp ? resp : &ignored);
  }
  std::map<std::string, std::string> Residency() {
    grpc::ClientContext ctx;
    wv1::ListWorkerAdaptersResponse resp;
    EXPECT_TRUE(stub_->ListAdapters(&ctx, {}, &resp).ok());
    std::map<std::string, std::string> out;
    for (const auto& a : resp.adapters()) out[a.name()] = a.residency();
    return out;
  }
  struct Output {
    grpc::Status status;
    std::vector<int32_t> tokens;
  };
  Output Generate(const std::string& name, const std::string& dir) {
    grpc::ClientContext ctx;
    wv1::GenerateRequest req;
    req.set_model("tiny");
    req.set_model_cache_dir(root_ + "/models");
    req.set_adapter_name(name);
    req.set_adapter_dir(dir);
    req.mutable_sampling()->set_prompt("rpc prompt");
    req.mutable_sampling()->set_max_new_tokens(12);
    auto reader = stub_->Generate(&ctx, req);
    Output out;
    lorad::worker::v1::GenerateChunk m;
    while (reader->Read(&m)) {
      for (int32_t t : m.token_ids()) out.tokens.push_back(t);
    }
    out.status = reader->Finish();
    return out;
  }

  std::string root_;
  model::ModelConfig config_;
  std::unique_ptr<WorkerServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<wv1::Worker::Stub> stub_;
};

TEST_F(WorkerRpcTest, PoolLoadsListsAndKeepsTheBound) {
  wv1::LoadAdapterResponse resp;
  ASSERT_TRUE(Load("a0", Dir(0), &resp).ok());
  EXPECT_EQ(resp.adapter().name(), "a0");
  EXPECT_EQ(resp.adapter().version(), 7);
  EXPECT_EQ(resp.adapter().rank(), 4);
  EXPECT_EQ(resp.adapter().target_modules_size(), 7);
  EXPECT_EQ(resp.adapter().residency(), "device");
  EXPECT_GT(resp.adapter().size_bytes(), 0);
  ASSERT_TRUE(Load("a1", Dir(1)).ok());
  ASSERT_TRUE(Load("a2", Dir(2)).ok());
  EXPECT_EQ(Residency(),
            (std::map<std::string, std::string>{
                {"a0", "host"}, {"a1", "device"}, {"a2", "device"}}));
  // Serving a0 brings it back; a1 is now the least recently used.
  ASSERT_TRUE(Generate("a0", "").status.ok());
  EXPECT_EQ(Residency()["a0"], "device");
  EXPECT_EQ(Residency()["a1"], "host");
}

TEST_F(WorkerRpcTest, BadAdaptersAreRefusedWithTheirReason) {
  ASSERT_TRUE(Load("keep", Dir(0)).ok());
  testing::WriteAdapter(root_ + "/other", config_, 4, 8, {"q_proj"}, 1,
                        "someone/else");
  grpc::Status s = Load("keep", root_ + "/other");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("someone/else"), std::string::npos);
  model::ModelConfig wide = config_;
  wide.intermediate_size *= 2;
  testing::WriteAdapter(root_ + "/wide", wide, 4, 8, {"up_proj"}, 1);
  s = Load("new", root_ + "/wide");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << s.error_message();
  EXPECT_EQ(Load("", Dir(0)).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Residency(),
            (std::map<std::string, std::string>{{"keep", "device"}}));
}

TEST_F(WorkerRpcTest, GenerateByNameMatchesDirectoryAndUnloadForgets) {
  ASSERT_TRUE(Load("a1", Dir(1)).ok());
  Output by_name = Generate("a1", "");
  Output by_dir = Generate("", Dir(1));
  Output base = Generate("", "");
  ASSERT_TRUE(by_name.status.ok() && by_dir.status.ok() && base.status.ok());
  EXPECT_EQ(by_name.tokens, by_dir.tokens);
  EXPECT_NE(by_name.tokens, base.tokens);
  // A name the pool lacks is loaded from adapter_dir when given.
  Output named_dir = Generate("fresh", Dir(1));
  ASSERT_TRUE(named_dir.status.ok());
  EXPECT_EQ(named_dir.tokens, by_name.tokens);

  grpc::ClientContext ctx;
  wv1::UnloadAdapterRequest req;
  req.set_name("a1");
  wv1::UnloadAdapterResponse resp;
  ASSERT_TRUE(stub_->UnloadAdapter(&ctx, req, &resp).ok());
  EXPECT_EQ(Generate("a1", "").status.error_code(),
            grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext ctx2;
  EXPECT_EQ(stub_->UnloadAdapter(&ctx2, req, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(WorkerRpcTest, ConcurrentClientsAllComplete) {
  ASSERT_TRUE(Load("a0", Dir(0)).ok());
  ASSERT_TRUE(Load("a1", Dir(1)).ok());
  std::vector<Output> alone = {Generate("", ""), Generate("a0", ""),
                               Generate("a1", "")};
  std::vector<Output> got(12);
  std::vector<std::thread> clients;
  for (int i = 0; i < 12; ++i) {
    clients.emplace_back([&, i] {
      got[i] = Generate(i % 3 == 0 ? "" : i % 3 == 1 ? "a0" : "a1", "");
    });
  }
  for (auto& t : clients) t.join();
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(got[i].status.ok()) << got[i].status.error_message();
    EXPECT_EQ(got[i].tokens, alone[i % 3].tokens) << i;
  }
}

TEST_F(WorkerRpcTest, ExportMergedWritesACheckpoint) {
  grpc::ClientContext ctx;
  wv1::ExportMergedRequest req;
  req.set_model("tiny");
  req.set_model_cache_dir(root_ + "/models");
  req.set_adapter_dir(Dir(0));
  req.set_out_dir(root_ + "/merged");
  wv1::ExportMergedResponse resp;
  ASSERT_TRUE(stub_->ExportMerged(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.size_bytes(), config_.NumParameters() * 2);
  EXPECT_TRUE(std::filesystem::exists(root_ + "/merged/model.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(root_ + "/merged/config.json"));
  grpc::ClientContext ctx2;
  req.set_dtype("int8");
  EXPECT_EQ(stub_->ExportMerged(&ctx2, req, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace lorad::worker
