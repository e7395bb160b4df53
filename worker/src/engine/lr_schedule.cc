#include "lorad/worker/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace lorad::worker {

double LearningRateAt(std::string_view schedule, double base_lr, int64_t step,
                      int64_t warmup, int64_t total) {
  if (step < warmup) {
    return base_lr * static_cast<double>(step) /
           static_cast<double>(std::max<int64_t>(1, warmup));
  }
  if (schedule == "constant") return base_lr;
  const double span = static_cast<double>(std::max<int64_t>(1, total - warmup));
  if (schedule == "linear") {
    return base_lr * std::max(0.0, static_cast<double>(total - step) / span);
  }
  const double progress = static_cast<double>(step - warmup) / span;
  return base_lr *
         std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));
}

}  // namespace lorad::worker
