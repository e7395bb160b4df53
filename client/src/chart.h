// Charts of a job's curves: a PNG (loss, eval loss and memory over steps)
// and a plain-text loss chart for the terminal.
#ifndef LORAD_CLIENT_CHART_H_
#define LORAD_CLIENT_CHART_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "lorad/v1/lorad.pb.h"

namespace lorad::client {

// (step, value) points of one curve, in step order.
using Curve = std::vector<std::pair<double, double>>;

// The curves of a job, from its events.
struct JobCurves {
  Curve loss;
  Curve eval_loss;
  Curve memory_mib;  // memory in use at each step, MiB
};
JobCurves CurvesFromEvents(const std::vector<v1::JobEvent>& events);

// A width x height PNG: loss and eval loss above, memory below, with axes,
// tick labels and a legend. InvalidArgument when there is no loss point or
// the size is below 200x160.
absl::StatusOr<std::string> RenderCurvesPng(const JobCurves& curves,
                                            const std::string& title,
                                            int width = 960, int height = 640);

// `loss` drawn with '*' in a width x height grid of characters, with the
// y-axis labelled on the left and the step range below; "" for no points.
std::string RenderTextChart(const Curve& loss, int width = 60, int height = 12);

}  // namespace lorad::client

#endif  // LORAD_CLIENT_CHART_H_
