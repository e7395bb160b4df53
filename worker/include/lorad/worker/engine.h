// The serving engine for one base model: a single thread that owns the
// device for inference and runs continuous batching. Requests join the
// running batch at token boundaries (their prompts are prefilled together
// in one ragged forward) and leave when they finish; every row has its own
// adapter (or none), KV cache, positions and sampling state, and one
// batched forward applies each row's LoRA delta (BatchedLora). Each loop
// turn takes the device through DeviceTurns, so a training job on the same
// device gets micro-batches in between.
//
// Results go back through a per-request GenerationStream, so a slow client
// never stalls the batch. Engine and GenerationStream are thread-safe.
#ifndef LORAD_WORKER_ENGINE_H_
#define LORAD_WORKER_ENGINE_H_

#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lorad/internal/worker/v1/worker.pb.h"
#include "lorad/model/chat_template.h"
#include "lorad/worker/batched_lora.h"
#include "lorad/worker/device_turns.h"
#include "lorad/worker/generator.h"
#include "lorad/worker/llama_model.h"

namespace lorad::worker {

// What one request receives: text chunks, then a last message with
// finish_reason and usage, then the end.
class GenerationStream {
 public:
  enum class Event { kMessage, kTimeout, kEnd };
  // Waits up to `timeout` for the next message. kEnd once everything was
  // read; status() then says how the request ended.
  Event Next(lorad::worker::v1::GenerateChunk* out, absl::Duration timeout);
  // Asks the engine to drop the request at the next token boundary.
  void Cancel();
  // `listener` is called after each message and at the end, on the
  // engine's thread and without the stream's lock, so that a reader can
  // take what is there with Next(..., ZeroDuration()) instead of waiting.
  // Messages that came before it was set are not announced.
  void SetListener(std::function<void()> listener);
  bool cancelled() const;
  absl::Status status() const;

  // Engine side.
  void Push(lorad::worker::v1::GenerateChunk message);
  void Finish(absl::Status status);

 private:
  mutable absl::Mutex mu_;
  std::deque<lorad::worker::v1::GenerateChunk> queue_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::function<void()> listener_ ABSL_GUARDED_BY(mu_);
};

struct EngineOptions {
  int max_batch = 32;     // rows decoded together
  int max_queued = 1024;  // waiting beyond the batch; more: ResourceExhausted
  DeviceTurns* turns = nullptr;  // shared with training; nullptr: none
  const BatchedLoraBackend* lora_backend = nullptr;  // nullptr: LibTorch
  // Builds response_format constraints (PrepareRequest); empty: requests
  // with a json_object or json_schema format are refused.
  ConstraintMaker make_constraint;
};

struct EngineStats {
  int64_t decode_steps = 0;
  int64_t prefill_steps = 0;
  int64_t largest_batch = 0;  // most rows in one decode step
  int64_t tokens_generated = 0;
};

class Engine {
 public:
  // Starts the engine thread. `model` must outlive the engine.
  Engine(const LlamaModel* model, EngineOptions options);
  // Stops the thread; requests still queued or running end Unavailable.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates and tokenizes `request` (InvalidArgument naming the problem)
  // and queues it with `adapter` (nullptr: base). The engine holds the
  // adapter until the request ends, then drops it.
  absl::StatusOr<std::shared_ptr<GenerationStream>> Submit(
      const lorad::worker::v1::Sampling& request,
      std::shared_ptr<const AdapterSet> adapter);

  EngineStats stats() const;
  const LlamaModel& model() const { return *model_; }

 private:
  struct Row;
  void Loop();
  void Turn(std::vector<std::unique_ptr<Row>>& joining);
  void Prefill(std::vector<std::unique_ptr<Row>>& joining);
  void Decode();
  // Feeds one row its logits; false when the row is finished.
  bool Advance(Row& row, const torch::Tensor& logits);

  const LlamaModel* model_;
  const EngineOptions options_;

  mutable absl::Mutex mu_;
  std::deque<std::unique_ptr<Row>> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  EngineStats stats_ ABSL_GUARDED_BY(mu_);

  // Engine thread only.
  std::vector<std::unique_ptr<Row>> rows_;
  std::vector<std::shared_ptr<const AdapterSet>> plan_key_;
  BatchedLora plan_;

  std::thread thread_;
};

}  // namespace lorad::worker

#endif  // LORAD_WORKER_ENGINE_H_
