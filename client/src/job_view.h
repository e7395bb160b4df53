// Human-readable views of fine-tune jobs and datasets. Pure functions.
#ifndef LORAD_CLIENT_JOB_VIEW_H_
#define LORAD_CLIENT_JOB_VIEW_H_

#include <string>

#include "lorad/v1/lorad.pb.h"

namespace lorad::client {

// The `loractl jobs` table: ID, STATE, MODEL, METHOD ("sft", "dpo beta 0.1
// sigmoid"; ", int8" for an int8 base), STEP/TOTAL, LOSS, CREATED, ADAPTER.
std::string RenderJobsTable(const lorad::v1::ListFineTuneJobsResponse& jobs);

// The `loractl datasets` table.
std::string RenderDatasetsTable(const lorad::v1::ListDatasetsResponse& list);

// `loractl get`: every field worth reading, one "key  value" per line,
// including the method (DPO's beta and loss type), the quantization when
// not the default nf4, and the memory estimate beside the measured peak.
std::string RenderJobDetails(const lorad::v1::FineTuneJob& job);

// The few lines printed when a watched job ends: final state, adapter path,
// measured peak memory beside the estimate, and the error if any.
std::string RenderJobSummary(const lorad::v1::FineTuneJob& job);

// One line for a state-change event, e.g. "state RUNNING" or
// "state FAILED: RESOURCE_EXHAUSTED: needs 3.1 GiB".
std::string RenderStateChange(const lorad::v1::StateChange& change);

// What `loractl upload` prints for a stored dataset.
std::string RenderDataset(const lorad::v1::Dataset& dataset);

// "peak 1.3 GiB (estimate 1.4 GiB, -7%)", or what is known of the two.
std::string RenderPeakVsEstimate(const lorad::v1::FineTuneJob& job);

}  // namespace lorad::client

#endif  // LORAD_CLIENT_JOB_VIEW_H_
