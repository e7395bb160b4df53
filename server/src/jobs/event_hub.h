// In-process fan-out of job events to live watchers.
#ifndef LORAD_SERVER_JOBS_EVENT_HUB_H_
#define LORAD_SERVER_JOBS_EVENT_HUB_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "lorad/v1/lorad.pb.h"

namespace lorad::server {

// Publishers hand each stored event to Publish(); every subscriber of that
// job gets it, in publish order. This class is thread-safe.
class EventHub {
 public:
  // Called with the hub's lock held: it must be quick and must not call back
  // into the hub (queue the event and return).
  using Callback = std::function<void(const v1::JobEvent&)>;

  EventHub() = default;
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  // Returns a subscription id for Unsubscribe().
  int64_t Subscribe(const std::string& job_id, Callback callback);
  // After it returns the callback is not running and will not run again.
  void Unsubscribe(int64_t subscription_id);
  void Publish(const v1::JobEvent& event);

 private:
  struct Subscriber {
    std::string job_id;
    Callback callback;
  };

  absl::Mutex mu_;
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<int64_t, Subscriber> subscribers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_JOBS_EVENT_HUB_H_
