// Runs queued batch inference jobs, one job at a time, oldest first, each as
// up to --batch_concurrency concurrent Worker.Generate calls, so the lines
// of a job share the worker's running batch (and the device with training).
#ifndef LORAD_SERVER_JOBS_BATCH_RUNNER_H_
#define LORAD_SERVER_JOBS_BATCH_RUNNER_H_

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "api/inference_service.h"
#include "jobs/batch_input.h"
#include "jobs/batch_journal.h"
#include "options.h"
#include "store/batch_job_store.h"
#include "worker_link/worker_client.h"

namespace lorad::server {

// <data_dir>/batch/<job_id>/input.jsonl
std::string BatchInputPath(const DataLayout& layout, const std::string& id);

// Each finished line's result is stored as it arrives, so a job stopped by a
// daemon restart resumes with the lines that have no result yet. A line the
// worker refuses (a bad adapter, say) gets an error result; a line whose
// worker died is retried. This class is thread-safe.
class BatchRunner {
 public:
  // None are owned; all must outlive the runner. `inference` resolves each
  // line's adapter exactly as Inference.Generate does.
  BatchRunner(const DaemonOptions& options, BatchJobStore* store,
              BatchJournal* journal, WorkerClient* worker,
              InferenceService* inference);
  ~BatchRunner();
  BatchRunner(const BatchRunner&) = delete;
  BatchRunner& operator=(const BatchRunner&) = delete;

  // Queues again what a previous run left RUNNING, then starts the thread.
  absl::Status Start();
  // Stops the running job's calls, leaving it RUNNING for the next start.
  void Stop();
  // A job was queued.
  void Notify();
  // Moves a job that is not final to CANCELLED and stops its calls.
  // NotFound / FailedPrecondition as BatchJournal::Update.
  absl::StatusOr<v1::BatchJob> Cancel(const std::string& job_id);

 private:
  // Shared by the threads running one job's lines.
  struct Run {
    std::string job_id;
    std::vector<BatchLine> lines;
    std::vector<int64_t> pending;  // indices into lines, in input order
    size_t next = 0;
    absl::Time last_event = absl::InfinitePast();
  };
  enum class LineEnd { kStored, kStopped };

  void Loop();
  void RunJob(const std::string& job_id);
  // `calls` stops the job's worker calls.
  void RunLines(Run& run, Cancellation* calls);
  LineEnd RunLine(Run& run, const BatchLine& line, Cancellation* calls);
  // One Generate call; its text, finish reason and usage on success.
  absl::Status GenerateOnce(const BatchLine& line, Cancellation* calls,
                            std::string& text, std::string& finish_reason,
                            v1::GenerateUsage& usage);
  absl::Status Record(Run& run, const BatchLine& line, const std::string& json,
                      bool failed, int32_t completion_tokens);
  bool Halted(const std::string& job_id);

  const DaemonOptions options_;
  const DataLayout layout_;
  BatchJobStore* const store_;
  BatchJournal* const journal_;
  WorkerClient* const worker_;
  InferenceService* const inference_;

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  std::string running_job_ ABSL_GUARDED_BY(mu_);
  bool cancel_running_ ABSL_GUARDED_BY(mu_) = false;
  // Stops the running job's worker calls; null between jobs.
  Cancellation* running_calls_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::Mutex run_mu_;  // guards the Run of the job being run
  std::thread thread_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_JOBS_BATCH_RUNNER_H_
