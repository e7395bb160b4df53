// How the worker's training events map onto a job and its public events.
#ifndef LORAD_SERVER_JOBS_TRAIN_EVENTS_H_
#define LORAD_SERVER_JOBS_TRAIN_EVENTS_H_

#include <vector>

#include "lorad/internal/worker/v1/worker.pb.h"
#include "lorad/v1/lorad.pb.h"

namespace lorad::server {

// Applies one TrainEvent to `job` (step, losses, memory estimate, and on
// TrainFinished the SUCCEEDED state with the adapter path and peak memory)
// and appends the public events it maps to; each carries the worker's
// MemoryUsage. Returns true for TrainFinished.
bool ApplyTrainEvent(const worker::v1::TrainEvent& event, v1::FineTuneJob& job,
                     std::vector<v1::JobEvent>& events);

}  // namespace lorad::server

#endif  // LORAD_SERVER_JOBS_TRAIN_EVENTS_H_
