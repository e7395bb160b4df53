// The live training line of `loractl watch`: a progress bar, the latest
// step's numbers, and an ETA from the recent step rate. Pure; not
// thread-safe (one watcher owns one estimator).
#ifndef LORAD_CLIENT_PROGRESS_H_
#define LORAD_CLIENT_PROGRESS_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "lorad/v1/lorad.pb.h"

namespace lorad::client {

// "[#####-----]" with `width` cells filled in proportion to done/total,
// clamped to [0, total]. An unknown total (<= 0) renders an empty bar.
std::string RenderBar(int64_t done, int64_t total, int width);

// Steps per second over a sliding window of the most recent samples, and
// the time left from it.
class StepRateEstimator {
 public:
  explicit StepRateEstimator(size_t window = 20) : window_(window) {}

  // Records that `step` was reached at `time_seconds` (any fixed origin).
  // A step not after the last one (a job resumed from a checkpoint) starts
  // the estimate afresh.
  void Add(int64_t step, double time_seconds);

  // nullopt until two samples at different times and steps exist.
  std::optional<double> StepsPerSecond() const;

  // Seconds until `total_steps` at the current rate; nullopt when unknown.
  std::optional<double> EtaSeconds(int64_t total_steps) const;

 private:
  struct Sample {
    int64_t step;
    double time;
  };
  size_t window_;
  std::deque<Sample> samples_;
};

// The bytes to show as "mem": the device's used bytes, else the host RSS;
// 0 when neither is known.
int64_t DisplayedMemoryBytes(const lorad::v1::MemoryUsage& memory);

// One status line, e.g.
// "[#####-----] step 12/100 loss 2.3456 lr 1.9e-04 grad 0.81 tok/s 1234
//  ETA 00:01:23 mem 1.2 GiB" (one line); a DPO step has its numbers
// (RenderDpoMetrics) after the loss. `bar_width` 0 leaves out the bar;
// `memory_bytes` 0 leaves out "mem".
std::string RenderTrainLine(const lorad::v1::TrainStep& step,
                            std::optional<double> eta_seconds,
                            int64_t memory_bytes, int bar_width);

// DPO's numbers of a step or an evaluation: "rewards chosen 0.123 rejected
// -0.045 margin 0.168 acc 0.75".
std::string RenderDpoMetrics(const lorad::v1::DpoMetrics& dpo);

// The line of an evaluation, e.g. "eval step 20: eval loss 1.2345", with
// DPO's numbers when it has them and a note when its adapter was kept.
std::string RenderEvalLine(const lorad::v1::EvalResult& eval);

// `line` cut to at most `width` - 1 columns so that it never wraps (a
// wrapped line cannot be redrawn with '\r'). `width` <= 1 leaves it whole.
std::string FitToWidth(const std::string& line, int width);

}  // namespace lorad::client

#endif  // LORAD_CLIENT_PROGRESS_H_
