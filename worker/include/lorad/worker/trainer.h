// The QLoRA fine-tuning loop: AdamW on the adapter only, warmup + cosine or
// linear LR, gradient accumulation and clipping, optional gradient
// checkpointing, eval every N steps, atomic checkpoints every N steps and
// resume from the last one. Events go to a callback as they happen.
// hp.method chooses what is optimised: the next-token loss ("sft") or DPO on
// preference pairs ("dpo", src/engine/dpo.h), whose steps and evaluations
// also carry DpoMetrics and whose eval_loss is the DPO loss.
#ifndef LORAD_WORKER_TRAINER_H_
#define LORAD_WORKER_TRAINER_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "lorad/internal/worker/v1/worker.pb.h"
#include "lorad/worker/device_turns.h"
#include "lorad/worker/llama_model.h"

namespace lorad::worker {

class TrainingGroup;

struct TrainJob {
  std::string job_id;
  std::string base_model_name;  // written into adapter_config.json
  std::string training_path;
  std::string validation_path;        // may be empty
  std::string job_dir;                // checkpoint-<step>.pt live here
  std::string adapter_dir;            // the PEFT adapter is written here
  lorad::worker::v1::TrainConfig hp;  // complete (the server fills defaults)
  // The last step whose event the caller has recorded. A resumed run first
  // sends again the events its checkpoint holds from after that step (lost
  // with an interrupted process), so the caller's history has no gap.
  int64_t recorded_step = 0;
};

struct TrainCallbacks {
  std::function<void(const lorad::worker::v1::TrainEvent&)> on_event;
  // Polled between micro-batches; true stops the job with CANCELLED.
  std::function<bool()> cancelled;
  // When set, every micro-batch, optimizer step, eval batch and checkpoint
  // takes a training turn on the device, so serving can run in between.
  DeviceTurns* device_turns = nullptr;
  // When set, the job joins this group of jobs on the same base and its
  // micro-batches run fused with theirs (training_group.h); each step's
  // log says when the jobs it shares its passes with change.
  TrainingGroup* group = nullptr;
};

// Runs (or resumes, when job_dir holds a checkpoint) one job on `model`.
// Errors: InvalidArgument for bad data or hyper-parameters (naming them),
// Cancelled when cancelled, Internal for LibTorch failures (with its text).
absl::Status RunTraining(const LlamaModel& model, const TrainJob& job,
                         const TrainCallbacks& callbacks);

}  // namespace lorad::worker

#endif  // LORAD_WORKER_TRAINER_H_
