// Helpers for the serving integration tests: hand-made PEFT adapters for the
// tiny model, adapter uploads, generation and batch jobs over gRPC.
#ifndef LORAD_TESTS_INTEGRATION_SERVING_UTIL_H_
#define LORAD_TESTS_INTEGRATION_SERVING_UTIL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/support/status.h"
#include "lorad/v1/lorad.grpc.pb.h"

namespace lorad::testing {

// How to make an adapter for the tiny model; the defaults give a valid one
// whose non-zero B changes the model's output.
struct AdapterSpec {
  int rank = 4;
  double alpha = 8;
  uint64_t seed = 1;
  float scale = 0.5f;  // weights uniform in [-scale, scale]
  std::vector<std::string> targets = {"q_proj", "v_proj", "down_proj"};
  // Written into adapter_config.json instead of `rank` when > 0 (so the
  // tensors no longer fit the config).
  int config_rank = 0;
  // Extra target listed in adapter_config.json.
  std::string extra_config_target;
};

// The files of a PEFT adapter directory: name -> bytes.
using AdapterFiles = std::map<std::string, std::string>;
AdapterFiles MakeTinyAdapter(const AdapterSpec& spec);

// Streams `files` to Adapters.Upload under `name`, in chunks of
// `chunk_bytes`, as the holder of API token `token` when set.
grpc::Status UploadAdapter(v1::Adapters::Stub& stub, const std::string& name,
                           const AdapterFiles& files, v1::Adapter* adapter,
                           size_t chunk_bytes = 700,
                           const std::string& token = "");

// A greedy Generate; the whole text, or the status when it failed.
struct Generated {
  grpc::Status status;
  std::string text;
  std::string finish_reason;
};
Generated GenerateText(v1::Inference::Stub& stub, const std::string& adapter,
                       const std::string& prompt, int max_new_tokens = 12);

// Uploads a batch input and creates the job.
grpc::Status CreateBatch(v1::BatchInference::Stub& stub,
                         const std::string& jsonl,
                         const v1::GenerateRequest& defaults,
                         v1::BatchJob* job);
// The results JSONL of a batch job, split into lines.
grpc::Status BatchResults(v1::BatchInference::Stub& stub,
                          const std::string& job_id,
                          std::vector<std::string>* lines);
// Watches a batch job until its stream ends (or `stop_when` returns true).
grpc::Status WatchBatch(
    v1::BatchInference::Stub& stub, const std::string& job_id,
    std::vector<v1::JobEvent>* events,
    const std::function<bool(const v1::JobEvent&)>& stop_when = nullptr,
    absl::Duration timeout = absl::Minutes(10));

}  // namespace lorad::testing

#endif  // LORAD_TESTS_INTEGRATION_SERVING_UTIL_H_
