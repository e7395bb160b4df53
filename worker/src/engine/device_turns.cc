#include "lorad/worker/device_turns.h"

#include <algorithm>

namespace lorad::worker {

DeviceTurns::DeviceTurns(int inference_turns_per_training_turn)
    : ratio_(std::max(1, inference_turns_per_training_turn)) {}

void DeviceTurns::SetInferenceDemand(bool demand) {
  absl::MutexLock lock(&mu_);
  demand_ = demand;
}

void DeviceTurns::AcquireInference() {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !busy_ && !(training_waiting_ > 0 && streak_ >= ratio_);
  };
  mu_.Await(absl::Condition(&ready));
  busy_ = true;
  streak_ = std::min(streak_ + 1, ratio_);
  ++inference_turns_;
}

void DeviceTurns::AcquireTraining() {
  absl::MutexLock lock(&mu_);
  ++training_waiting_;
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !busy_ && (!demand_ || streak_ >= ratio_);
  };
  mu_.Await(absl::Condition(&ready));
  --training_waiting_;
  busy_ = true;
  streak_ = 0;
  ++training_turns_;
}

void DeviceTurns::Release() {
  absl::MutexLock lock(&mu_);
  busy_ = false;
}

int64_t DeviceTurns::inference_turns() const {
  absl::MutexLock lock(&mu_);
  return inference_turns_;
}

int64_t DeviceTurns::training_turns() const {
  absl::MutexLock lock(&mu_);
  return training_turns_;
}

DeviceTurn::DeviceTurn(DeviceTurns* turns, Kind kind) : turns_(turns) {
  if (turns_ == nullptr) return;
  if (kind == Kind::kInference) {
    turns_->AcquireInference();
  } else {
    turns_->AcquireTraining();
  }
}

DeviceTurn::~DeviceTurn() {
  if (turns_ != nullptr) turns_->Release();
}

}  // namespace lorad::worker
