// lorad-worker: serves lorad.worker.v1 on a unix socket for one lorad
// daemon. Started and restarted by the daemon; not meant to be run by hand.
#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <signal.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "lorad/worker/device_memory.h"
#include "lorad/worker/intra_op_threads.h"
#include "worker_service.h"

ABSL_FLAG(std::string, socket, "", "Unix socket path to listen on.");
ABSL_FLAG(std::string, device, "auto", "auto, cpu or cuda[:N].");
ABSL_FLAG(int, threads, 0,
          "The most intra-op threads LibTorch uses (0: its default); small "
          "training passes use one (intra_op_threads.h).");
ABSL_FLAG(int, max_device_adapters, 8,
          "Adapters resident on the device per base model; the least "
          "recently used unpinned ones move to host memory (<= 0: no bound).");
ABSL_FLAG(int, max_batch, 32, "Requests decoded together in one batch.");
ABSL_FLAG(int, inference_turns_per_training_turn, 4,
          "While requests are served, a training job gets one micro-batch "
          "after this many serving turns.");
ABSL_FLAG(int, max_concurrent_jobs, 1,
          "Fine-tune jobs run at the same time; above 1, jobs on the same "
          "base have their micro-batches fused into one forward.");

namespace {

// OpenMP's worker threads busy-wait between parallel regions by default.
// The engine thread runs small serial steps between LibTorch ops while the
// gRPC threads stream tokens, so spinning workers starve them (measured:
// 30x slower with 12 concurrent streams on 2 cores). libgomp reads its
// settings when it loads, before main, so the worker re-executes itself
// once with a passive wait policy unless the caller chose one.
void EnsurePassiveOpenMpWait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  ::setenv("OMP_WAIT_POLICY", "passive", 1);
  ::execv("/proc/self/exe", argv);
  // execv failed: carry on with the default policy.
}

// How long open calls may take to end after SIGTERM.
constexpr int kShutdownSeconds = 8;

}  // namespace

int main(int argc, char** argv) {
  EnsurePassiveOpenMpWait(argv);
  lorad::worker::ReturnLargeHostBlocks();
  // SIGTERM and SIGINT are taken by one thread (below), so every thread
  // started from here on blocks them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  absl::SetProgramUsageMessage("lorad-worker --socket=PATH [--device=auto]");
  absl::ParseCommandLine(argc, argv);
  const std::string socket = absl::GetFlag(FLAGS_socket);
  if (socket.empty()) {
    std::cerr << "lorad-worker: --socket is required\n";
    return 2;
  }
  std::string dev = absl::GetFlag(FLAGS_device);
  if (dev == "auto") dev = torch::cuda::is_available() ? "cuda" : "cpu";
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(dev);
  } catch (const c10::Error&) {
    std::cerr << "lorad-worker: bad --device \"" << dev << "\"\n";
    return 2;
  }
  if (device.is_cuda() && !torch::cuda::is_available()) {
    std::cerr << "lorad-worker: --device=" << dev
              << " but CUDA is not available\n";
    return 2;
  }
  if (absl::GetFlag(FLAGS_threads) > 0) {
    torch::set_num_threads(absl::GetFlag(FLAGS_threads));
    lorad::worker::SetMaxIntraOpThreads(absl::GetFlag(FLAGS_threads));
  }
  std::remove(socket.c_str());
  if (absl::GetFlag(FLAGS_max_batch) < 1 ||
      absl::GetFlag(FLAGS_inference_turns_per_training_turn) < 1 ||
      absl::GetFlag(FLAGS_max_concurrent_jobs) < 1) {
    std::cerr << "lorad-worker: --max_batch, "
                 "--inference_turns_per_training_turn and "
                 "--max_concurrent_jobs must be >= 1\n";
    return 2;
  }
  lorad::worker::WorkerOptions options;
  options.max_device_adapters = absl::GetFlag(FLAGS_max_device_adapters);
  options.max_batch = absl::GetFlag(FLAGS_max_batch);
  options.max_concurrent_jobs = absl::GetFlag(FLAGS_max_concurrent_jobs);
  options.inference_turns_per_training_turn =
      absl::GetFlag(FLAGS_inference_turns_per_training_turn);
  lorad::worker::WorkerServiceImpl service(device, options);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket, grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::cerr << "lorad-worker: cannot listen on unix:" << socket << "\n";
    return 1;
  }
  std::cout << "lorad-worker ready on " << socket << " device " << device.str()
            << std::endl;
  // SIGTERM: stop taking calls and give the open ones a few seconds to end
  // (a cancelled training run saves its checkpoint on the way out), then
  // exit. lorad waits longer than this before it sends SIGKILL.
  std::thread stopper([&] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    server->Shutdown(std::chrono::system_clock::now() +
                     std::chrono::seconds(kShutdownSeconds));
  });
  server->Wait();
  stopper.join();
  return 0;
}
