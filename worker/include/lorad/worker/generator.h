// Text generation for one request with a KV cache: greedy or sampled
// (temperature, top-k, top-p, repetition penalty, seed), stop strings and
// max new tokens, streaming text as it is decoded.
#ifndef LORAD_WORKER_GENERATOR_H_
#define LORAD_WORKER_GENERATOR_H_

#include <functional>

#include "absl/status/status.h"
#include "lorad/v1/lorad.pb.h"
#include "lorad/worker/llama_model.h"

namespace lorad::worker {

// Calls `on_chunk` for each piece of new text; the last call carries
// finish_reason and usage. `on_chunk` returning false stops generation
// (Cancelled). InvalidArgument for bad sampling settings (named).
absl::Status Generate(
    const LlamaModel& model, const AdapterSet* adapter,
    const lorad::v1::GenerateRequest& request,
    const std::function<bool(const lorad::v1::GenerateResponse&)>& on_chunk);

}  // namespace lorad::worker

#endif  // LORAD_WORKER_GENERATOR_H_
