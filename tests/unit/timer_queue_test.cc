// TimerQueue: callbacks run in time order on one thread; cancelled ones
// never run.
#include "jobs/timer_queue.h"

#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace lorad::server {
namespace {

TEST(TimerQueueTest, RunsCallbacksInTimeOrderOnOneThread) {
  TimerQueue timers;
  absl::Mutex mu;
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  absl::Notification last;
  const absl::Time now = absl::Now();
  auto record = [&](int i) {
    return [&, i] {
      absl::MutexLock lock(&mu);
      order.push_back(i);
      threads.push_back(std::this_thread::get_id());
      if (order.size() == 4) last.Notify();
    };
  };
  // Scheduled out of order; two share a time and keep their order.
  timers.Schedule(now + absl::Milliseconds(60), record(3));
  timers.Schedule(now + absl::Milliseconds(20), record(1));
  timers.Schedule(now + absl::Milliseconds(20), record(2));
  timers.Schedule(now - absl::Seconds(1), record(0));
  last.WaitForNotification();
  absl::MutexLock lock(&mu);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  for (const std::thread::id& id : threads) EXPECT_EQ(id, threads.front());
  EXPECT_NE(threads.front(), std::this_thread::get_id());
}

TEST(TimerQueueTest, ACancelledCallbackNeverRuns) {
  absl::Notification later_ran;
  bool cancelled_ran = false;
  {
    TimerQueue timers;
    const absl::Time now = absl::Now();
    TimerQueue::Id id = timers.Schedule(now + absl::Milliseconds(10),
                                        [&] { cancelled_ran = true; });
    EXPECT_TRUE(timers.Cancel(id));
    EXPECT_FALSE(timers.Cancel(id));
    timers.Schedule(now + absl::Milliseconds(20), [&] { later_ran.Notify(); });
    later_ran.WaitForNotification();
  }
  EXPECT_FALSE(cancelled_ran);
}

TEST(TimerQueueTest, CallbacksMayScheduleAndAnEarlierOneWakesTheThread) {
  TimerQueue timers;
  absl::Notification chained;
  // Far in the future: the thread sleeps towards it until woken.
  timers.Schedule(absl::Now() + absl::Hours(1), [] {});
  timers.Schedule(absl::Now(), [&] {
    timers.Schedule(absl::Now(), [&] { chained.Notify(); });
  });
  EXPECT_TRUE(chained.WaitForNotificationWithTimeout(absl::Seconds(60)));
}

TEST(TimerQueueTest, CallbacksNotYetDueAreDroppedOnDestruction) {
  bool ran = false;
  {
    TimerQueue timers;
    timers.Schedule(absl::Now() + absl::Hours(1), [&] { ran = true; });
  }
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace lorad::server
