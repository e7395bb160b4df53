// Checks a fine-tune request before a job exists, and fills its defaults.
#ifndef LORAD_SERVER_JOBS_JOB_VALIDATION_H_
#define LORAD_SERVER_JOBS_JOB_VALIDATION_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "lorad/common/hyperparameter_defaults.h"
#include "lorad/v1/lorad.pb.h"
#include "store/dataset_store.h"

namespace lorad::server {

// Names a client chooses or addresses things by (adapter names, job
// suffixes, job, batch and dataset ids): 1 to kMaxNameBytes ASCII letters,
// digits, '.', '_' or '-', not starting with '.' or '-' (so never "..", a
// path or an option). InvalidArgument naming `field` otherwise, quoting at
// most a short excerpt of the value.
inline constexpr size_t kMaxNameBytes = 64;
absl::Status ValidateName(absl::string_view field, absl::string_view value);

// The file name an upload carries, for people only: at most
// kMaxFilenameBytes of valid UTF-8 without control characters, '/' or '\\'
// (empty is allowed: the service picks one).
inline constexpr size_t kMaxFilenameBytes = 255;
absl::Status ValidateFilename(absl::string_view field, absl::string_view value);

// Upper bounds of the hyperparameters that count (steps, epochs, ...).
inline constexpr int32_t kMaxEpochs = 100;
inline constexpr int32_t kMaxSteps = 10'000'000;
inline constexpr float kMaxAlpha = 65536;
inline constexpr float kMaxGradNorm = 1e6f;
inline constexpr float kMaxWeightDecay = 10;
// A model path on the server.
inline constexpr size_t kMaxModelPathBytes = 4096;

// kDefaultRank, kDefaultLearningRate, kDefaultDropout and
// kDefaultMaxGradNorm are in lorad/common/hyperparameter_defaults.h.
// DPO's beta when method is dpo and none is given (TRL's default), and its
// bound.
inline constexpr float kDefaultDpoBeta = 0.1f;
inline constexpr float kMaxDpoBeta = 100;

// Fills the defaults of `hp` and checks every field. `present` says whether
// the request carried hyperparameters at all: without them every field takes
// its default (rank 8, alpha 16, dropout 0.05, all seven projections, lr 2e-4,
// 1 epoch, batch 4, accumulation 1, max_grad_norm 1.0, cosine, max_seq_len
// 512, seed 42, checkpoint_every 50, compute_dtype auto, optimizer adamw,
// method sft, quantization nf4; with method dpo, dpo_beta 0.1 and
// dpo_loss_type sigmoid). With them, rank and
// learning_rate must be given, dropout 0 and max_grad_norm 0 mean "off", and
// other zero/empty fields take their defaults.
// InvalidArgument naming the field and the value otherwise.
absl::Status FillDefaultsAndValidate(bool present, v1::Hyperparameters& hp);

// model::kTinyModelName, or a directory holding a config.json of a supported
// architecture. NotFound when the path does not exist or has no config.json;
// InvalidArgument for an unsupported architecture.
absl::Status ValidateModel(const std::string& model);

// The lorad.v1.Dataset.format of {"prompt","chosen","rejected"} datasets.
inline constexpr const char* kPreferenceDatasetFormat = "preference";

// Everything about a job that can be checked before it runs: the model, its
// datasets (NotFound when unknown; InvalidArgument naming training_file or
// validation_file when the dataset's format does not fit the method: method
// dpo needs preference datasets, method sft refuses them) and its
// hyperparameters. Fills the defaults of `job` in place (model "" becomes
// model::kTinyModelName).
absl::Status ValidateJob(DatasetStore& datasets, bool hyperparameters_present,
                         v1::FineTuneJob& job);

}  // namespace lorad::server

#endif  // LORAD_SERVER_JOBS_JOB_VALIDATION_H_
