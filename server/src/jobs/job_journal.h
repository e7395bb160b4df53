// The one place that changes fine-tune jobs: every change is a
// read-modify-write of the stored job plus the events it produced, which are
// stored (getting their seq) and then published to live watchers.
#ifndef LORAD_SERVER_JOBS_JOB_JOURNAL_H_
#define LORAD_SERVER_JOBS_JOB_JOURNAL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "jobs/event_hub.h"
#include "lorad/v1/lorad.pb.h"
#include "store/job_store.h"

namespace lorad::server {

// SUCCEEDED, FAILED and CANCELLED: nothing changes a job after these.
bool IsFinalState(v1::JobState state);

// Moves `job` to `state` (setting finished_at for final states and `error`
// when given) and adds the matching StateChange event to `events`.
void TransitionTo(v1::FineTuneJob& job, v1::JobState state,
                  absl::string_view message, std::vector<v1::JobEvent>& events,
                  const v1::JobError* error = nullptr);

// A JobError from a status: the code's name and the message.
v1::JobError MakeJobError(const absl::Status& status);

// This class is thread-safe. Changes to one job are serialised, and events
// are published in seq order.
class JobJournal {
 public:
  // Edits the job and appends the events it caused (job_id and time are
  // filled in by the journal). A non-OK return discards the edit.
  using Mutator = absl::FunctionRef<absl::Status(
      v1::FineTuneJob& job, std::vector<v1::JobEvent>& events)>;

  // Neither is owned; both must outlive the journal.
  JobJournal(JobStore* store, EventHub* hub) : store_(store), hub_(hub) {}
  JobJournal(const JobJournal&) = delete;
  JobJournal& operator=(const JobJournal&) = delete;

  // Stores a new job and a StateChange event for its initial state.
  absl::Status Create(const v1::FineTuneJob& job, absl::string_view message);

  // Applies `mutate` to the stored job. NotFound for an unknown id;
  // FailedPrecondition (without calling `mutate`) when the job is already in
  // a final state. Returns the job as stored afterwards.
  absl::StatusOr<v1::FineTuneJob> Update(const std::string& job_id,
                                         Mutator mutate);

  // What Watch() saw, atomically: the job, its events after `after_seq`,
  // and the subscription that gets every later event.
  struct WatchStart {
    v1::FineTuneJob job;
    std::vector<v1::JobEvent> history;
    int64_t subscription_id = 0;  // for EventHub::Unsubscribe
  };
  // Reads a job and its stored events and subscribes `callback` to the ones
  // that follow, with no change in between: no event is missed or repeated.
  // NotFound for an unknown job (and then nothing is subscribed).
  absl::StatusOr<WatchStart> Watch(const std::string& job_id, int64_t after_seq,
                                   EventHub::Callback callback);

  // Adds a log event to a job that is not final.
  absl::Status Log(const std::string& job_id, absl::string_view message,
                   const v1::MemoryUsage* memory = nullptr);

 private:
  absl::Status StoreAndPublish(const std::string& job_id,
                               std::vector<v1::JobEvent>& events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  JobStore* const store_;
  EventHub* const hub_;
  absl::Mutex mu_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_JOBS_JOB_JOURNAL_H_
