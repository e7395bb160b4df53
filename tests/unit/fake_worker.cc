// A stand-in for lorad-worker, without LibTorch, for the WorkerClient tests:
// it serves lorad.worker.v1 on --socket as the supervisor starts it.
//   Ping, ListAdapters: answer at once.
//   GetMemory: answers at once; used_bytes counts the Pings answered.
//   Generate: max_new_tokens chunks "t0", "t1", ..., the last with
//     finish_reason "length".
//   Train: one log event, then the stream stays open until cancelled.
// With --never_listen it starts but never serves (a worker that hangs on
// start-up).
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "lorad/internal/worker/v1/worker.grpc.pb.h"

namespace {

namespace wv1 = lorad::worker::v1;

class ChunkWriter final : public grpc::ServerWriteReactor<wv1::GenerateChunk> {
 public:
  explicit ChunkWriter(int count) : count_(count) { Next(); }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::CANCELLED);
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (sent_ == count_) {
      Finish(grpc::Status::OK);
      return;
    }
    chunk_.Clear();
    chunk_.set_text(absl::StrCat("t", sent_));
    chunk_.add_token_ids(sent_);
    if (++sent_ == count_) chunk_.set_finish_reason("length");
    StartWrite(&chunk_);
  }

  const int count_;
  int sent_ = 0;
  wv1::GenerateChunk chunk_;
};

class EndlessTrain final : public grpc::ServerWriteReactor<wv1::TrainEvent> {
 public:
  EndlessTrain() {
    event_.set_log("started");
    StartWrite(&event_);
  }
  void OnWriteDone(bool) override {}
  void OnCancel() override { Finish(grpc::Status::CANCELLED); }
  void OnDone() override { delete this; }

 private:
  wv1::TrainEvent event_;
};

class FakeWorker final : public wv1::Worker::CallbackService {
 public:
  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* context,
                                 const wv1::PingRequest*,
                                 wv1::PingResponse* response) override {
    response->set_pid(::getpid());
    response->set_device("cpu");
    pings_.fetch_add(1);
    return Done(context);
  }
  grpc::ServerUnaryReactor* GetMemory(
      grpc::CallbackServerContext* context, const wv1::GetMemoryRequest*,
      wv1::GetMemoryResponse* response) override {
    response->set_pid(::getpid());
    response->mutable_memory()->set_device("cpu");
    response->mutable_memory()->set_used_bytes(pings_.load());
    return Done(context);
  }
  grpc::ServerUnaryReactor* ListAdapters(
      grpc::CallbackServerContext* context,
      const wv1::ListWorkerAdaptersRequest*,
      wv1::ListWorkerAdaptersResponse*) override {
    return Done(context);
  }
  grpc::ServerWriteReactor<wv1::GenerateChunk>* Generate(
      grpc::CallbackServerContext*,
      const wv1::GenerateRequest* request) override {
    return new ChunkWriter(request->sampling().max_new_tokens());
  }
  grpc::ServerWriteReactor<wv1::TrainEvent>* Train(
      grpc::CallbackServerContext*, const wv1::TrainRequest*) override {
    return new EndlessTrain();
  }

 private:
  std::atomic<int64_t> pings_{0};

  static grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string socket;
  bool never_listen = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (absl::StartsWith(arg, "--socket=")) socket = arg.substr(9);
    if (arg == "--never_listen") never_listen = true;
  }
  while (never_listen) ::pause();  // until the supervisor kills it
  FakeWorker service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    std::fprintf(stderr, "fake worker: cannot listen on %s\n", socket.c_str());
    return 1;
  }
  server->Wait();
  return 0;
}
