#include "jobs/event_hub.h"

#include <utility>

namespace lorad::server {

int64_t EventHub::Subscribe(const std::string& job_id, Callback callback) {
  absl::MutexLock lock(&mu_);
  int64_t id = next_id_++;
  subscribers_.emplace(id, Subscriber{job_id, std::move(callback)});
  return id;
}

void EventHub::Unsubscribe(int64_t subscription_id) {
  absl::MutexLock lock(&mu_);
  subscribers_.erase(subscription_id);
}

void EventHub::Publish(const v1::JobEvent& event) {
  absl::MutexLock lock(&mu_);
  for (auto& [id, subscriber] : subscribers_) {
    if (subscriber.job_id == event.job_id()) subscriber.callback(event);
  }
}

}  // namespace lorad::server
