#include "jobs/timer_queue.h"

#include "absl/time/clock.h"

namespace lorad::server {

TimerQueue::TimerQueue() : thread_([this] { Loop(); }) {}

TimerQueue::~TimerQueue() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

TimerQueue::Id TimerQueue::Schedule(absl::Time when,
                                    std::function<void()> callback) {
  absl::MutexLock lock(&mu_);
  const Id id = next_id_++;
  if (due_.empty() || Key(when, id) < due_.begin()->first) changed_ = true;
  due_.emplace(Key(when, id), std::move(callback));
  times_.emplace(id, when);
  return id;
}

bool TimerQueue::Cancel(Id id) {
  absl::MutexLock lock(&mu_);
  auto it = times_.find(id);
  if (it == times_.end()) return false;
  due_.erase(Key(it->second, id));
  times_.erase(it);
  return true;
}

void TimerQueue::Loop() {
  absl::MutexLock lock(&mu_);
  while (!stop_) {
    changed_ = false;
    auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stop_ || changed_;
    };
    if (due_.empty()) {
      mu_.Await(absl::Condition(&woken));
      continue;
    }
    auto first = due_.begin();
    if (first->first.first > absl::Now()) {
      mu_.AwaitWithDeadline(absl::Condition(&woken), first->first.first);
      continue;
    }
    std::function<void()> callback = std::move(first->second);
    times_.erase(first->first.second);
    due_.erase(first);
    mu_.Unlock();
    callback();
    callback = nullptr;  // its captures go before the lock is taken again
    mu_.Lock();
  }
}

}  // namespace lorad::server
