// One device, two users: the inference engine and training jobs. Each takes
// the device for one unit of work (a decode step, a training micro-batch)
// and gives it back. Inference goes first; while it has work, training gets
// one turn after every `inference_turns_per_training_turn` inference turns,
// so a running job slows down but never stops, and serving latency grows by
// at most one micro-batch.
//
// This class is thread-safe.
#ifndef LORAD_WORKER_DEVICE_TURNS_H_
#define LORAD_WORKER_DEVICE_TURNS_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace lorad::worker {

class DeviceTurns {
 public:
  explicit DeviceTurns(int inference_turns_per_training_turn = 4);

  // Whether the engine has work queued or running. While true, training
  // waits for its share instead of taking every free moment.
  void SetInferenceDemand(bool demand);

  // Blocks until the caller holds the device; Release gives it back.
  void AcquireInference();
  void AcquireTraining();
  void Release();

  // Turns granted so far (for tests and metrics).
  int64_t inference_turns() const;
  int64_t training_turns() const;

 private:
  const int ratio_;
  mutable absl::Mutex mu_;
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  bool demand_ ABSL_GUARDED_BY(mu_) = false;
  int training_waiting_ ABSL_GUARDED_BY(mu_) = 0;
  int streak_ ABSL_GUARDED_BY(mu_) = 0;  // inference turns since training's
  int64_t inference_turns_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t training_turns_ ABSL_GUARDED_BY(mu_) = 0;
};

// Holds one turn for its lifetime. A null `turns` makes it a no-op.
class DeviceTurn {
 public:
  enum class Kind { kInference, kTraining };
  DeviceTurn(DeviceTurns* turns, Kind kind);
  ~DeviceTurn();
  DeviceTurn(const DeviceTurn&) = delete;
  DeviceTurn& operator=(const DeviceTurn&) = delete;

 private:
  DeviceTurns* turns_;
};

}  // namespace lorad::worker

#endif  // LORAD_WORKER_DEVICE_TURNS_H_
