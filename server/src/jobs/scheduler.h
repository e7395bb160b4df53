// Runs queued fine-tune jobs on the worker, oldest first, up to
// max_concurrent_jobs at a time as long as they fit the device together.
#ifndef LORAD_SERVER_JOBS_SCHEDULER_H_
#define LORAD_SERVER_JOBS_SCHEDULER_H_

#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "jobs/job_journal.h"
#include "lorad/v1/lorad.pb.h"
#include "options.h"
#include "store/dataset_store.h"
#include "store/job_store.h"
#include "worker_link/worker_client.h"

namespace lorad::server {

// One thread takes the oldest QUEUED jobs and gives each its own runner
// thread, which marks it RUNNING and streams Worker.Train, turning its
// events into job events. Jobs start in order while fewer than
// DaemonOptions::max_concurrent_jobs run and the fit check (SetFitCheck)
// accepts the next one beside those running; the worker fuses the
// micro-batches of jobs on one base. When the worker dies
// mid-job it is restarted and the job re-run (the worker resumes from the
// job's checkpoint) until max_job_attempts runs have been made; then the job
// FAILS. Errors the worker reports fail the job at once, and so does a store
// error while it runs (the worker's run is stopped; the job goes FAILED
// with the store's code and message, retried until the store takes it).
//
// This class is thread-safe.
class Scheduler {
 public:
  // None are owned; all must outlive the scheduler.
  Scheduler(const DaemonOptions& options, JobStore* store,
            DatasetStore* datasets, JobJournal* journal, WorkerClient* worker);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Re-queues what a previous run of lorad left RUNNING or QUEUED, validates
  // again what it left VALIDATING, then starts the scheduling thread.
  absl::Status Start();
  // Stops the running job's worker call, leaving the job RUNNING so that the
  // next start resumes it, and joins the thread. Idempotent.
  void Stop();

  // Wakes the thread: a job was queued.
  void Notify();

  // Called on the scheduling thread when a job has written its adapter to
  // `adapter_dir`, before the job is marked SUCCEEDED; an error is logged to
  // the job and does not fail it. Set before Start().
  using AdapterHook = std::function<absl::Status(
      const v1::FineTuneJob& job, const std::string& adapter_dir)>;
  void SetAdapterHook(AdapterHook hook) { adapter_hook_ = std::move(hook); }

  // Called before a queued job starts beside `running` (not empty): OK to
  // start it now, an error (said in the job's log once) to wait until one
  // of them ends. Unset: only max_concurrent_jobs bounds. Set before
  // Start().
  using FitCheck =
      std::function<absl::Status(const std::vector<v1::FineTuneJob>& running,
                                 const v1::FineTuneJob& candidate)>;
  void SetFitCheck(FitCheck check) { fit_check_ = std::move(check); }

  // Moves a job that is not final to CANCELLED and stops its worker call if
  // it is running. NotFound for an unknown job; FailedPrecondition when it
  // is already final.
  absl::StatusOr<v1::FineTuneJob> Cancel(const std::string& job_id);

 private:
  enum class Outcome {
    kDone,
    kStopping,
    kWorkerDied,
    kWorkerError,
    kStoreError
  };
  struct RunResult {
    Outcome outcome;
    absl::Status status;
  };

  absl::Status Recover();
  void Loop();
  // Starts runners for the queued jobs that may start now.
  void StartRunnable();
  // Registers the call (or wait) through which `job_id` can be stopped;
  // null unregisters.
  void SetCall(const std::string& job_id, Cancellation* call);
  void RunJob(const std::string& job_id);
  bool Stopping();
  // Waits for a ready worker; Stop() ends the wait.
  absl::StatusOr<WorkerHandle> AwaitWorker(const std::string& job_id);
  RunResult TrainOnce(const WorkerHandle& worker, const v1::FineTuneJob& job);
  RunResult ClassifyEnd(const WorkerHandle& worker, const absl::Status& status);
  // Moves the job to FAILED, retrying while the store fails, until it is
  // final or Stop() is called.
  void Fail(const std::string& job_id, const absl::Status& status);
  // Fail() for a store error met while the job ran.
  void FailStoreError(const std::string& job_id, const absl::Status& status);
  // True when the stored job is in a final state (false when unreadable).
  bool IsFinal(const std::string& job_id);

  const DaemonOptions options_;
  const DataLayout layout_;
  JobStore* const store_;
  DatasetStore* const datasets_;
  JobJournal* const journal_;
  WorkerClient* const worker_;

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  struct Runner {
    std::thread thread;
    bool done = false;
  };
  // The jobs being run, by id, each on its own thread.
  std::map<std::string, Runner> runners_ ABSL_GUARDED_BY(mu_);
  // Stops the worker call (or the wait for a worker) of a running job.
  std::map<std::string, Cancellation*> calls_ ABSL_GUARDED_BY(mu_);
  // Jobs whose log already says why they wait to start.
  std::set<std::string> told_waiting_ ABSL_GUARDED_BY(mu_);
  AdapterHook adapter_hook_;
  FitCheck fit_check_;
  std::thread thread_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_JOBS_SCHEDULER_H_
