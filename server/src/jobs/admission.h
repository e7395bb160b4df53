// Admission control: before a fine-tune job, a batch job or a Generate call
// is accepted, its peak memory is estimated from the model's config and the
// request (lorad/model/memory_estimate.h) and compared with the room on the
// worker's device (telemetry/device_room.h). What cannot fit is refused at
// once with RESOURCE_EXHAUSTED, and the message says the estimate, the room,
// the shortfall and what would make it fit, each with the estimate it would
// give. When the room is not known (nothing could be read) everything is
// admitted: the worker's own checks still apply.
#ifndef LORAD_SERVER_JOBS_ADMISSION_H_
#define LORAD_SERVER_JOBS_ADMISSION_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "jobs/batch_input.h"
#include "lorad/internal/worker/v1/worker.pb.h"
#include "lorad/model/base_quantization.h"
#include "lorad/model/model_config.h"
#include "lorad/v1/lorad.pb.h"
#include "telemetry/device_room.h"

namespace lorad::server {

// The worker's max_new_tokens when a request leaves it 0.
inline constexpr int64_t kDefaultMaxNewTokens = 64;

// "1.5 GiB", or "12.3 MiB" below a GiB.
std::string FormatBytes(int64_t bytes);

// Bytes per activation / KV element: compute_dtype "float32" 4, "bfloat16"
// 2, "auto" (or empty) 2 on a GPU and 4 on the host, as the worker picks.
int64_t ComputeBytes(const std::string& compute_dtype, const DeviceRoom& room);

// OK when a fine-tune with `hp` (defaults filled, see job_validation.h) on
// `config` fits `room`; RESOURCE_EXHAUSTED otherwise, naming the estimate
// (with its parts), the room, the shortfall and the batch_size,
// gradient_checkpointing and max_seq_len that would fit.
absl::Status AdmitFineTune(const model::ModelConfig& config,
                           const v1::Hyperparameters& hp,
                           const DeviceRoom& room);

// Sets hp.gradient_checkpointing when the request left it unset: off when
// the estimate without it fits `room`, on otherwise (and when the room is
// not known). Returns what was decided and why, "" when hp had it set.
std::string ChooseGradientCheckpointing(const model::ModelConfig& config,
                                        const DeviceRoom& room,
                                        v1::Hyperparameters& hp);

// A fine-tune job as the concurrency bound sees it: its base (jobs with
// the same base_key share one copy) and its hyper-parameters.
struct TrainingDemand {
  std::string base_key;  // model + quantization + compute dtype
  model::ModelConfig config;
  v1::Hyperparameters hp;
};

// OK when all of `jobs` (running ones and the one to start) fit `room` at
// the same time: each base once, plus each job's adapter, gradients,
// optimizer state (less what a paged optimizer moves to the host) and
// activations, those of jobs on one base at the longest max_seq_len among
// them (their micro-batches are fused, rows padded to the longest).
// RESOURCE_EXHAUSTED otherwise, naming the estimate, the room and the
// shortfall. Unknown room: OK.
absl::Status AdmitTogether(const std::vector<TrainingDemand>& jobs,
                           const DeviceRoom& room);

// One generation's demand on the KV cache: the worker reserves room for
// prompt + max_new_tokens positions when the request starts.
struct GenerationDemand {
  int64_t prompt_tokens = 0;  // a lower bound (PromptTokensAtLeast)
  int64_t max_new_tokens = kDefaultMaxNewTokens;
  // The base it runs on (an int8 adapter's: the int8 base).
  model::BaseQuantization base_quantization = model::BaseQuantization::kNf4;
};

// A lower bound on the tokens of a prompt (or of its messages' contents)
// without tokenizing it: its UTF-8 bytes / 16, rounded up (no BPE token of
// the supported vocabularies' text runs longer), at least 1.
int64_t PromptTokensAtLeast(const worker::v1::Sampling& sampling);

// The demand of a request (max_new_tokens 0 is kDefaultMaxNewTokens).
GenerationDemand DemandOf(const worker::v1::Sampling& sampling);

// OK when `concurrency` generations of `demand` each, on `config`, fit
// `room` beside the base model; RESOURCE_EXHAUSTED otherwise, naming the KV
// cache estimate, the room, the shortfall and the max_new_tokens (and, for
// concurrency > 1, the concurrency) that would fit.
absl::Status AdmitGeneration(const model::ModelConfig& config,
                             const GenerationDemand& demand, int concurrency,
                             const DeviceRoom& room);

// Applies the checks above to requests, reading the room for each check.
// This class is thread-safe when the room function is.
class Admission {
 public:
  struct Options {
    // Generate calls a batch job keeps in flight
    // (DaemonOptions::batch_concurrency).
    int batch_concurrency = 8;
  };
  // `room` gives the device's room now (TelemetryCollector::Room).
  Admission(std::function<DeviceRoom()> room, Options options);

  // A fine-tune job after ValidateJob (its model exists, defaults filled):
  // chooses gradient checkpointing when unset (`note` says how), then checks
  // the job fits. The model's config errors pass through (NotFound /
  // InvalidArgument).
  absl::Status CheckFineTune(v1::FineTuneJob& job,
                             std::string* note = nullptr) const;

  // Whether `candidate` may start beside the `running` fine-tune jobs
  // (AdmitTogether); a model whose config cannot be read fails the check.
  absl::Status CheckBeside(const std::vector<v1::FineTuneJob>& running,
                           const v1::FineTuneJob& candidate) const;

  // One resolved Generate request.
  absl::Status CheckGenerate(const worker::v1::GenerateRequest& request) const;

  // The base a batch line's adapter resolved to: its model and how that
  // is quantized ("" or "nf4", "int8").
  struct BatchBase {
    std::string model;
    std::string quantization;
  };

  // A batch job: `base_of_adapter` maps each line's adapter ("" for the
  // base model) to the base it resolved to. The largest request per base
  // (model and quantization) counts, batch_concurrency (or fewer lines)
  // times.
  absl::Status CheckBatch(
      const std::vector<BatchLine>& lines,
      const absl::flat_hash_map<std::string, BatchBase>& base_of_adapter) const;

 private:
  const std::function<DeviceRoom()> room_;
  const Options options_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_JOBS_ADMISSION_H_
