#include "progress.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "format.h"

namespace lorad::client {

std::string RenderBar(int64_t done, int64_t total, int width) {
  width = std::max(width, 0);
  int filled = 0;
  if (total > 0) {
    int64_t clamped = std::clamp<int64_t>(done, 0, total);
    filled = static_cast<int>(clamped * width / total);
  }
  return absl::StrCat("[", std::string(filled, '#'),
                      std::string(width - filled, '-'), "]");
}

void StepRateEstimator::Add(int64_t step, double time_seconds) {
  if (!samples_.empty() &&
      (step <= samples_.back().step || time_seconds < samples_.back().time)) {
    samples_.clear();
  }
  samples_.push_back({step, time_seconds});
  while (samples_.size() > std::max<size_t>(window_, 2)) samples_.pop_front();
}

std::optional<double> StepRateEstimator::StepsPerSecond() const {
  if (samples_.size() < 2) return std::nullopt;
  const Sample& first = samples_.front();
  const Sample& last = samples_.back();
  double dt = last.time - first.time;
  if (dt <= 0) return std::nullopt;
  return static_cast<double>(last.step - first.step) / dt;
}

std::optional<double> StepRateEstimator::EtaSeconds(int64_t total_steps) const {
  std::optional<double> rate = StepsPerSecond();
  if (!rate.has_value() || *rate <= 0 || samples_.empty() || total_steps <= 0) {
    return std::nullopt;
  }
  int64_t left = std::max<int64_t>(total_steps - samples_.back().step, 0);
  return static_cast<double>(left) / *rate;
}

int64_t DisplayedMemoryBytes(const lorad::v1::MemoryUsage& memory) {
  if (memory.used_bytes() > 0) return memory.used_bytes();
  return std::max<int64_t>(memory.rss_bytes(), 0);
}

std::string RenderTrainLine(const lorad::v1::TrainStep& step,
                            std::optional<double> eta_seconds,
                            int64_t memory_bytes, int bar_width) {
  std::string line;
  if (bar_width > 0) {
    absl::StrAppend(&line,
                    RenderBar(step.step(), step.total_steps(), bar_width), " ");
  }
  if (step.total_steps() > 0) {
    absl::StrAppendFormat(&line, "step %d/%d", step.step(), step.total_steps());
  } else {
    absl::StrAppendFormat(&line, "step %d", step.step());
  }
  absl::StrAppendFormat(&line, " loss %.4f", step.loss());
  if (step.has_dpo()) absl::StrAppend(&line, " ", RenderDpoMetrics(step.dpo()));
  absl::StrAppendFormat(&line, " lr %.1e grad %.2f tok/s %.0f",
                        step.learning_rate(), step.grad_norm(),
                        step.tokens_per_second());
  absl::StrAppend(&line, " ETA ", FormatDuration(eta_seconds.value_or(-1.0)));
  if (memory_bytes > 0)
    absl::StrAppend(&line, " mem ", HumanBytes(memory_bytes));
  return line;
}

std::string RenderDpoMetrics(const lorad::v1::DpoMetrics& dpo) {
  return absl::StrFormat(
      "rewards chosen %.3f rejected %.3f margin %.3f acc %.2f",
      dpo.rewards_chosen(), dpo.rewards_rejected(), dpo.reward_margin(),
      dpo.reward_accuracy());
}

std::string RenderEvalLine(const lorad::v1::EvalResult& eval) {
  std::string line = absl::StrFormat("eval step %d: eval loss %.4f",
                                     eval.step(), eval.eval_loss());
  if (eval.has_dpo()) absl::StrAppend(&line, " ", RenderDpoMetrics(eval.dpo()));
  if (eval.best()) absl::StrAppend(&line, " (best so far: adapter kept)");
  return line;
}

std::string FitToWidth(const std::string& line, int width) {
  if (width <= 1 || static_cast<int>(line.size()) < width) return line;
  return line.substr(0, width - 1);
}

}  // namespace lorad::client
