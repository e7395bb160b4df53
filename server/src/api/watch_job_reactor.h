// The reactor behind FineTuning.WatchJob.
#ifndef LORAD_SERVER_API_WATCH_JOB_REACTOR_H_
#define LORAD_SERVER_API_WATCH_JOB_REACTOR_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/support/server_callback.h"
#include "jobs/event_hub.h"
#include "jobs/job_journal.h"
#include "lorad/v1/lorad.pb.h"

namespace lorad::server {

// Streams a job's stored events after `after_seq`, then its live ones, and
// finishes with OK once the job is final and its last event was written;
// NOT_FOUND for an unknown job. An `after_seq` at or past the job's last
// event is not an error: nothing is written until an event after it exists,
// and the stream still ends OK when the job becomes (or already is) final,
// possibly having written nothing. Writes one event at a time; live events that
// arrive meanwhile wait in a queue. Deletes itself in OnDone().
class WatchJobReactor final : public grpc::ServerWriteReactor<v1::JobEvent> {
 public:
  // Starts at once. `journal` and `hub` must outlive the call.
  // With `history_only` it ends after the stored events.
  WatchJobReactor(JobJournal* journal, EventHub* hub, const std::string& job_id,
                  int64_t after_seq, bool history_only = false);

  // What a journal's Watch saw, atomically: the stored events after
  // after_seq, whether the job was already final, and the subscription that
  // gets every later event.
  struct Start {
    std::vector<v1::JobEvent> history;
    bool final = false;
    int64_t subscription_id = 0;
  };
  using Subscribe =
      std::function<absl::StatusOr<Start>(EventHub::Callback callback)>;
  // The same for any kind of job: `subscribe` is called once, at once.
  WatchJobReactor(EventHub* hub, int64_t after_seq, const Subscribe& subscribe);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  enum class Next { kNothing, kWrite, kFinish };

  void OnLiveEvent(const v1::JobEvent& event);
  void Enqueue(const v1::JobEvent& event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Decides under the lock; acts (StartWrite / Finish) outside it.
  Next Decide() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Act(Next next);
  void Pump();

  EventHub* const hub_;
  int64_t subscription_id_ = 0;

  absl::Mutex mu_;
  // Until the history is queued, live events wait here so order is kept.
  bool loading_ ABSL_GUARDED_BY(mu_) = true;
  std::deque<v1::JobEvent> early_live_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::JobEvent> queue_ ABSL_GUARDED_BY(mu_);
  int64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  // The job is final and every event it will ever have is queued.
  bool complete_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
  // The event being written; touched only by the writer.
  v1::JobEvent current_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_API_WATCH_JOB_REACTOR_H_
