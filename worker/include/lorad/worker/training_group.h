// Many fine-tune jobs on one base at the same time, as mLoRA trains them:
// each job keeps its own loop (its adapter, optimizer, schedule,
// checkpoints and events, trainer.cc), but hands each micro-batch to the
// group instead of running it. Once every member has handed one in, one of
// them runs them all as one forward and one backward through the shared
// base: the rows are stacked (each padded on the right to the longest),
// each job's rows go through its own adapter (ForwardOptions::row_adapters),
// and the gradient of the sum of the jobs' losses reaches each adapter from
// its own loss alone. The frozen base's work (NF4 dequantization, its
// matmuls, attention) is done once per pass instead of once per job.
//
// On the CPU, where one small pass leaves cores idle (its ops run faster on
// one thread than on several, intra_op_threads.h), four or more jobs are
// split into lanes: each lane fuses two or more of the jobs' micro-batches
// into its own pass, and the lanes' passes run side by side, each on its own
// thread and core, within one device turn.
//
// This class is thread-safe: each member calls from its own thread.
#ifndef LORAD_WORKER_TRAINING_GROUP_H_
#define LORAD_WORKER_TRAINING_GROUP_H_

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "lorad/worker/device_turns.h"
#include "lorad/worker/llama_model.h"
#include "lorad/worker/lora.h"

namespace lorad::worker {

// One training micro-batch ready for the forward pass.
struct PreparedMicroBatch {
  torch::Tensor ids;  // [rows, T] long, on the model's device
  // Pads rows to a longer T on the right; with causal attention that
  // leaves the first T positions' outputs as they are.
  int64_t pad_id = 0;
  bool dropout = true;  // LoRA dropout in its rows (DPO: off, as TRL's)
  // The job's generator for dropout masks (undefined: LibTorch's default).
  // Fused or alone, a job draws the same masks from it.
  at::Generator generator;
  // The mean loss from this batch's hidden states [rows, T, hidden] (the
  // model's Forward with hidden_out; LlamaModel::NextTokenNll makes the
  // losses), for the caller to backpropagate; may remember the
  // micro-batch's metrics.
  std::function<torch::Tensor(const torch::Tensor& hidden)> loss;
};

// What running one micro-batch gave its job.
struct MicroBatchResult {
  double loss = 0;  // the batch's mean loss
  // The other jobs whose rows shared the pass (empty: it ran alone).
  std::vector<std::string> fused_with;
};

// Runs `batch` alone through `model` with `adapter` and backpropagates
// loss / divisor (gradients add to what the adapter holds). Throws what
// LibTorch throws.
MicroBatchResult RunMicroBatchAlone(const LlamaModel& model,
                                    const PreparedMicroBatch& batch,
                                    const AdapterSet& adapter,
                                    bool gradient_checkpointing,
                                    int64_t divisor);

class TrainingGroup {
 public:
  // `turns` (may be null) is taken for each round of passes side by side,
  // as a micro-batch takes it; both must outlive the group. `max_fused_bytes`
  // bounds a fused pass: its widest activation (rows x T x the wider of
  // hidden_size and intermediate_size x the compute dtype's bytes) stays at
  // most that, the micro-batches handed in being cut into several passes in
  // order where they would exceed it (one alone exceeding it runs alone); 0: no
  // bound. kDefaultMaxFusedBytes: on the CPU, the size from which host blocks
  // get fresh pages (device_memory.h; past it a 4x larger pass is slower per
  // token than the four alone: fused_train_bench), on CUDA no bound.
  static constexpr int64_t kDefaultMaxFusedBytes = -1;
  // `lanes`: the most passes run side by side, each fusing at least two
  // jobs (so four jobs make two lanes, three make one). kDefaultLanes: on
  // the CPU MaxIntraOpThreads() (one core each), on CUDA 1. 1: one lane.
  static constexpr int kDefaultLanes = -1;
  TrainingGroup(const LlamaModel* model, DeviceTurns* turns,
                int64_t max_fused_bytes = kDefaultMaxFusedBytes,
                int lanes = kDefaultLanes);
  // Every member must have left.
  ~TrainingGroup();
  TrainingGroup(const TrainingGroup&) = delete;
  TrainingGroup& operator=(const TrainingGroup&) = delete;

  // A job's place in the group; leaving is destroying it. While a member
  // exists, passes wait for its micro-batch: a job joins right before its
  // first micro-batch and leaves as soon as it will hand in no more (done,
  // cancelled or failed), so that nobody waits for it.
  class Member {
   public:
    ~Member();
    Member(const Member&) = delete;
    Member& operator=(const Member&) = delete;
    const std::string& job_id() const { return job_id_; }

   private:
    friend class TrainingGroup;
    Member(TrainingGroup* group, std::string job_id)
        : group_(group), job_id_(std::move(job_id)) {}
    TrainingGroup* group_;
    std::string job_id_;
  };

  std::unique_ptr<Member> Join(const std::string& job_id);

  // Holds every pass until `n` more members have joined, so that jobs
  // started together fuse from their first micro-batch (benchmarks and
  // tests; the worker does not wait for jobs it has not seen).
  void ExpectJoins(int n);

  // Runs `batch` with `adapter` in the next pass and backpropagates its
  // loss / divisor into the adapter; blocks until that pass has run. The
  // pass waits until every member has handed in a micro-batch. When a
  // fused pass fails before its backward (out of memory, say), each of its
  // micro-batches is run again alone, so that one job's failure is its own.
  // Internal with LibTorch's text for a failure.
  absl::StatusOr<MicroBatchResult> Run(Member* member,
                                       const PreparedMicroBatch& batch,
                                       const AdapterSet& adapter,
                                       bool gradient_checkpointing,
                                       int64_t divisor);

  // Passes run so far, and of them those that fused two or more jobs.
  int64_t passes() const;
  int64_t fused_passes() const;
  // The lanes the group may use, and the most passes it ran side by side.
  int lanes() const { return lanes_; }
  int64_t widest_round() const;

 private:
  struct Slot {
    const Member* member = nullptr;
    const PreparedMicroBatch* batch = nullptr;
    const AdapterSet* adapter = nullptr;
    bool gradient_checkpointing = false;
    int64_t divisor = 1;
    bool done = false;
    absl::StatusOr<MicroBatchResult> result =
        absl::UnknownError("the micro-batch did not run");
  };

  void Leave();
  // The group's own thread: runs each pass once every member has handed in
  // a micro-batch. One thread for all passes, so that what a pass frees
  // the next reuses (glibc gives each thread its own heap: passes run on
  // the job threads in turn were 17% slower on the CPU, fused_train_bench
  // llama-100m 4 x 128).
  void PassLoop();
  // Micro-batches run as one forward and backward, and its size.
  struct Pass {
    std::vector<Slot*> slots;
    int64_t rows = 0;     // all of its micro-batches' rows
    int64_t longest = 0;  // the longest T among them
  };
  // What one call of RunPasses ran.
  struct Ran {
    int64_t passes = 0;
    int64_t fused = 0;  // the passes of two or more jobs
    int64_t widest_round = 0;
  };
  // Runs `slots` (all members' micro-batches) in one or more passes (as
  // max_fused_bytes allows) and fills their results.
  Ran RunPasses(const std::vector<Slot*>& slots);
  // `slots` in lanes, each lane's in passes within max_fused_bytes.
  std::vector<std::vector<Pass>> Plan(const std::vector<Slot*>& slots) const;
  // Runs `passes` side by side (the first on the calling thread, the others
  // on lane threads) within one device turn; returns when all have run.
  void RunRound(const std::vector<Pass>& passes);
  // Runs `pass` on the calling thread.
  void RunPass(const Pass& pass);
  // Lane thread `i`: runs what RunRound hands it.
  void LaneLoop(size_t i);

  const LlamaModel* const model_;
  DeviceTurns* const turns_;
  const int64_t max_fused_bytes_;
  const int lanes_;
  mutable absl::Mutex mu_;
  int members_ ABSL_GUARDED_BY(mu_) = 0;
  int expected_joins_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Slot*> waiting_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t passes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t fused_passes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t widest_round_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread pass_thread_;
  // Work for the lane threads (lanes_ - 1 of them; each keeps its own heap
  // from round to round, as the pass thread does).
  absl::Mutex lane_mu_;
  std::vector<std::function<void()>> lane_work_ ABSL_GUARDED_BY(lane_mu_);
  int lane_busy_ ABSL_GUARDED_BY(lane_mu_) = 0;
  bool lanes_stopping_ ABSL_GUARDED_BY(lane_mu_) = false;
  std::vector<std::thread> lane_threads_;
};

}  // namespace lorad::worker

#endif  // LORAD_WORKER_TRAINING_GROUP_H_
