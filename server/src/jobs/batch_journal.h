// The one place that changes batch inference jobs: each change is a
// read-modify-write of the stored job plus the events it caused, stored
// (getting their seq) and then published to live watchers, as the
// JobJournal does for fine-tune jobs.
#ifndef LORAD_SERVER_JOBS_BATCH_JOURNAL_H_
#define LORAD_SERVER_JOBS_BATCH_JOURNAL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "api/watch_job_reactor.h"
#include "jobs/event_hub.h"
#include "lorad/v1/lorad.pb.h"
#include "store/batch_job_store.h"

namespace lorad::server {

// Moves `job` to `state` (finished_at for final states, `error` when given)
// and adds the StateChange event to `events`.
void TransitionBatchTo(v1::BatchJob& job, v1::JobState state,
                       absl::string_view message,
                       std::vector<v1::JobEvent>& events,
                       const v1::JobError* error = nullptr);

// This class is thread-safe; changes are serialised.
class BatchJournal {
 public:
  using Mutator = absl::FunctionRef<absl::Status(
      v1::BatchJob& job, std::vector<v1::JobEvent>& events)>;

  // Neither is owned; both must outlive the journal.
  BatchJournal(BatchJobStore* store, EventHub* hub)
      : store_(store), hub_(hub) {}
  BatchJournal(const BatchJournal&) = delete;
  BatchJournal& operator=(const BatchJournal&) = delete;

  // Stores a new job and a StateChange event for its state.
  absl::Status Create(const v1::BatchJob& job, absl::string_view message);
  // NotFound for an unknown id; FailedPrecondition (without calling
  // `mutate`) for a final job. Returns the job as stored afterwards.
  absl::StatusOr<v1::BatchJob> Update(const std::string& job_id,
                                      Mutator mutate);
  // The history after `after_seq` and a subscription for what follows, with
  // nothing missed or repeated in between.
  absl::StatusOr<WatchJobReactor::Start> Watch(const std::string& job_id,
                                               int64_t after_seq,
                                               EventHub::Callback callback);

 private:
  absl::Status StoreAndPublish(const std::string& job_id,
                               std::vector<v1::JobEvent>& events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  BatchJobStore* const store_;
  EventHub* const hub_;
  absl::Mutex mu_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_JOBS_BATCH_JOURNAL_H_
