// Learning-rate schedules as the Hugging Face trainer defines them, so a job
// here and the same job there follow the same curve.
#ifndef LORAD_WORKER_LR_SCHEDULE_H_
#define LORAD_WORKER_LR_SCHEDULE_H_

#include <cstdint>
#include <string_view>

namespace lorad::worker {

// The learning rate for optimizer step `step` (0-based) of `total`: linear
// warmup from 0 over `warmup` steps, then "cosine" (half a cosine down to
// 0), "linear" (straight to 0) or "constant".
double LearningRateAt(std::string_view schedule, double base_lr, int64_t step,
                      int64_t warmup, int64_t total);

}  // namespace lorad::worker

#endif  // LORAD_WORKER_LR_SCHEDULE_H_
