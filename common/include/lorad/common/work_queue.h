// A few threads that run blocking work handed over by gRPC reactors, which
// must never block themselves (the server's services and the worker's).
#ifndef LORAD_COMMON_WORK_QUEUE_H_
#define LORAD_COMMON_WORK_QUEUE_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace lorad {

// This class is thread-safe. The destructor runs what is queued, then joins.
class WorkQueue {
 public:
  explicit WorkQueue(int num_threads);
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void Run(std::function<void()> task);

 private:
  void Loop();

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

}  // namespace lorad

#endif  // LORAD_COMMON_WORK_QUEUE_H_
