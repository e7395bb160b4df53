// One thread that runs short callbacks at given times: the periodic writes of
// streaming reactors and the deadlines of waits, so that neither needs a
// thread of its own.
#ifndef LORAD_SERVER_JOBS_TIMER_QUEUE_H_
#define LORAD_SERVER_JOBS_TIMER_QUEUE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace lorad::server {

// This class is thread-safe. Callbacks run on the queue's own thread, one at
// a time, in the order of their times (ties in the order scheduled). They
// must not block: blocking work goes to a WorkQueue. A callback may Schedule
// and Cancel.
class TimerQueue {
 public:
  using Id = uint64_t;

  // Starts the thread.
  TimerQueue();
  // Joins the thread; callbacks still scheduled are destroyed unrun.
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Runs `callback` at `when`, or as soon as possible when that has passed.
  // The id is never 0.
  Id Schedule(absl::Time when, std::function<void()> callback);

  // Drops a callback that has not started: true when it was dropped (it
  // never runs), false when it has started or finished, or `id` is unknown.
  // Does not wait for a callback that is running.
  bool Cancel(Id id);

 private:
  using Key = std::pair<absl::Time, Id>;

  void Loop();

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // Set when the earliest time may have changed, to wake the thread.
  bool changed_ ABSL_GUARDED_BY(mu_) = false;
  Id next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<Key, std::function<void()>> due_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<Id, absl::Time> times_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_JOBS_TIMER_QUEUE_H_
