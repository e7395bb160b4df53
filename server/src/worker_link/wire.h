// The server is the one place where the public API (lorad.v1) meets the
// worker's own contract (lorad.worker.v1). These functions map one to the
// other, field by field, so the worker never sees a public type and a change
// to either contract is a change here. Pure functions; thread-safe.
#ifndef LORAD_SERVER_WORKER_LINK_WIRE_H_
#define LORAD_SERVER_WORKER_LINK_WIRE_H_

#include "lorad/internal/worker/v1/worker.pb.h"
#include "lorad/v1/lorad.pb.h"

namespace lorad::server {

// Public -> worker. The inputs are already validated and complete.
worker::v1::TrainConfig ToWorker(const v1::Hyperparameters& hp);
// The sampling part of a Generate request (the adapter is resolved by the
// caller into the worker request's model / adapter fields).
worker::v1::Sampling ToWorker(const v1::GenerateRequest& request);

// Worker -> public.
v1::GenerateResponse ToPublic(const worker::v1::GenerateChunk& chunk);
v1::MemoryUsage ToPublic(const worker::v1::MemoryUsage& memory);
v1::MemoryEstimate ToPublic(const worker::v1::MemoryEstimate& estimate);
v1::DpoMetrics ToPublic(const worker::v1::DpoMetrics& dpo);
v1::TrainStep ToPublic(const worker::v1::TrainStep& step);
v1::EvalResult ToPublic(const worker::v1::EvalResult& eval);

}  // namespace lorad::server

#endif  // LORAD_SERVER_WORKER_LINK_WIRE_H_
