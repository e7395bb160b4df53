#include "jobs/scheduler.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "jobs/job_validation.h"
#include "jobs/train_events.h"
#include "lorad/common/status_macros.h"
#include "worker_link/wire.h"

namespace lorad::server {
namespace {

using Events = std::vector<v1::JobEvent>;

absl::Status Unchanged(v1::FineTuneJob&, Events&) { return absl::OkStatus(); }

}  // namespace

Scheduler::Scheduler(const DaemonOptions& options, JobStore* store,
                     DatasetStore* datasets, JobJournal* journal,
                     WorkerClient* worker)
    : options_(options),
      layout_(options.data_dir),
      store_(store),
      datasets_(datasets),
      journal_(journal),
      worker_(worker) {}

Scheduler::~Scheduler() { Stop(); }

absl::Status Scheduler::Start() {
  LORAD_RETURN_IF_ERROR(Recover());
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void Scheduler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    for (auto& [id, call] : calls_) {
      if (call != nullptr) call->Cancel();
    }
  }
  if (thread_.joinable()) thread_.join();
}

void Scheduler::SetCall(const std::string& job_id, Cancellation* call) {
  absl::MutexLock lock(&mu_);
  if (call == nullptr) {
    calls_.erase(job_id);
  } else {
    calls_[job_id] = call;
  }
}

void Scheduler::Notify() {
  absl::MutexLock lock(&mu_);
  wake_ = true;
}

absl::StatusOr<v1::FineTuneJob> Scheduler::Cancel(const std::string& job_id) {
  LORAD_ASSIGN_OR_RETURN(
      v1::FineTuneJob job,
      journal_->Update(job_id, [](v1::FineTuneJob& job, Events& events) {
        TransitionTo(job, v1::CANCELLED, "cancelled by request", events);
        return absl::OkStatus();
      }));
  absl::MutexLock lock(&mu_);
  auto call = calls_.find(job_id);
  if (call != calls_.end() && call->second != nullptr) call->second->Cancel();
  return job;
}

absl::Status Scheduler::Recover() {
  LORAD_ASSIGN_OR_RETURN(std::vector<v1::FineTuneJob> jobs,
                         store_->JobsInStates({v1::VALIDATING, v1::RUNNING}));
  for (const v1::FineTuneJob& stored : jobs) {
    auto updated = journal_->Update(
        stored.id(), [&](v1::FineTuneJob& job, Events& events) {
          if (job.state() == v1::RUNNING) {
            TransitionTo(job, v1::QUEUED,
                         "lorad restarted; the job is queued again and "
                         "resumes from its last checkpoint",
                         events);
            return absl::OkStatus();
          }
          absl::Status valid =
              ValidateJob(*datasets_, /*hyperparameters_present=*/true, job);
          if (valid.ok()) {
            TransitionTo(job, v1::QUEUED, "validated", events);
          } else {
            v1::JobError error = MakeJobError(valid);
            TransitionTo(job, v1::FAILED, valid.message(), events, &error);
          }
          return absl::OkStatus();
        });
    if (!updated.ok()) {
      std::fprintf(stderr, "lorad: cannot recover job %s: %s\n",
                   stored.id().c_str(), updated.status().ToString().c_str());
    }
  }
  return absl::OkStatus();
}

void Scheduler::Loop() {
  while (true) {
    std::vector<std::thread> ended;
    bool stopping;
    {
      absl::MutexLock lock(&mu_);
      stopping = stop_;
      wake_ = false;
      for (auto it = runners_.begin(); it != runners_.end();) {
        if (stopping || it->second.done) {
          ended.push_back(std::move(it->second.thread));
          it = runners_.erase(it);
        } else {
          ++it;
        }
      }
    }
    // Outside mu_: a runner takes it on its way out.
    for (std::thread& t : ended) t.join();
    if (stopping) return;
    StartRunnable();
    absl::MutexLock lock(&mu_);
    // The timeout is a safety net; Notify() and ending runners are what
    // normally wake us.
    auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stop_ || wake_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&woken), absl::Seconds(5));
  }
}

void Scheduler::StartRunnable() {
  absl::StatusOr<std::vector<v1::FineTuneJob>> queued =
      store_->JobsInStates({v1::QUEUED});
  if (!queued.ok()) {
    std::fprintf(stderr, "lorad: cannot list queued jobs: %s\n",
                 queued.status().ToString().c_str());
    return;
  }
  const size_t bound =
      static_cast<size_t>(std::max(1, options_.max_concurrent_jobs));
  for (const v1::FineTuneJob& job : *queued) {
    std::vector<std::string> running;
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
      // A runner just started may not have marked its job RUNNING yet.
      if (runners_.count(job.id()) > 0) continue;
      if (runners_.size() >= bound) return;
      for (const auto& [id, runner] : runners_) running.push_back(id);
    }
    if (!running.empty() && fit_check_) {
      std::vector<v1::FineTuneJob> beside;
      for (const std::string& id : running) {
        absl::StatusOr<v1::FineTuneJob> r = store_->GetJob(id);
        if (r.ok()) beside.push_back(*std::move(r));
      }
      absl::Status fits = fit_check_(beside, job);
      if (!fits.ok()) {
        // Oldest first: later jobs wait behind this one.
        bool tell;
        {
          absl::MutexLock lock(&mu_);
          tell = told_waiting_.insert(job.id()).second;
        }
        if (tell) {
          (void)journal_->Log(job.id(),
                              absl::StrCat("waiting for a running job to end: ",
                                           fits.message()));
        }
        return;
      }
    }
    absl::MutexLock lock(&mu_);
    if (stop_) return;
    told_waiting_.erase(job.id());
    Runner& runner = runners_[job.id()];
    runner.thread = std::thread([this, id = job.id()] {
      RunJob(id);
      absl::MutexLock lock(&mu_);
      runners_[id].done = true;
      wake_ = true;
    });
  }
}

void Scheduler::RunJob(const std::string& job_id) {
  while (true) {
    absl::StatusOr<v1::FineTuneJob> job =
        journal_->Update(job_id, [](v1::FineTuneJob& job, Events& events) {
          job.set_attempts(job.attempts() + 1);
          if (job.state() != v1::RUNNING) {
            if (job.started_at_unix() == 0) {
              job.set_started_at_unix(absl::ToUnixSeconds(absl::Now()));
            }
            TransitionTo(job, v1::RUNNING,
                         absl::StrCat("attempt ", job.attempts()), events);
          }
          return absl::OkStatus();
        });
    if (!job.ok()) {
      // Cancelled meanwhile, or the store failing: then the job fails.
      if (!IsFinal(job_id)) FailStoreError(job_id, job.status());
      return;
    }

    RunResult result;
    absl::StatusOr<WorkerHandle> worker = AwaitWorker(job_id);
    if (Stopping()) {
      result = {Outcome::kStopping, absl::OkStatus()};
    } else if (absl::IsFailedPrecondition(worker.status())) {
      result = {Outcome::kWorkerError, worker.status()};
    } else if (!worker.ok()) {
      result = {Outcome::kWorkerDied, worker.status()};
    } else {
      result = TrainOnce(*worker, *job);
    }

    switch (result.outcome) {
      case Outcome::kDone:
        return;
      case Outcome::kStopping:
        (void)journal_->Log(job_id,
                            "lorad is stopping; the job resumes from its last "
                            "checkpoint when lorad starts again");
        return;
      case Outcome::kWorkerError:
        Fail(job_id, result.status);
        return;
      case Outcome::kStoreError:
        FailStoreError(job_id, result.status);
        return;
      case Outcome::kWorkerDied:
        if (worker.ok()) worker_->Restart(worker->generation);
        if (job->attempts() >= options_.max_job_attempts) {
          Fail(job_id,
               absl::UnavailableError(absl::StrCat(
                   "the worker failed ", job->attempts(),
                   " times (--max_job_attempts=", options_.max_job_attempts,
                   "); last error: ", result.status.message())));
          return;
        }
        (void)journal_->Log(
            job_id,
            absl::StrCat("worker restarted; resuming from the last "
                         "checkpoint (attempt ",
                         job->attempts() + 1, " of ", options_.max_job_attempts,
                         "; it failed with: ", result.status.message(), ")"));
        break;
    }
    if (Stopping()) return;
  }
}

bool Scheduler::Stopping() {
  absl::MutexLock lock(&mu_);
  return stop_;
}

absl::StatusOr<WorkerHandle> Scheduler::AwaitWorker(const std::string& job_id) {
  Cancellation wait;
  {
    absl::MutexLock lock(&mu_);
    if (stop_) return absl::CancelledError("lorad is stopping");
    calls_[job_id] = &wait;
  }
  absl::StatusOr<WorkerHandle> worker = worker_->AwaitReady(
      options_.worker_start_timeout + absl::Seconds(30), &wait);
  SetCall(job_id, nullptr);
  return worker;
}

Scheduler::RunResult Scheduler::TrainOnce(const WorkerHandle& worker,
                                          const v1::FineTuneJob& job) {
  Cancellation call;
  {
    absl::MutexLock lock(&mu_);
    if (stop_) return {Outcome::kStopping, absl::OkStatus()};
    calls_[job.id()] = &call;
  }
  auto unregister = [&] { SetCall(job.id(), nullptr); };
  // Cancel() changes the store before it looks for the running call, so a
  // cancel that came just before registration is seen here.
  absl::StatusOr<v1::FineTuneJob> stored =
      journal_->Update(job.id(), Unchanged);
  if (!stored.ok()) {
    unregister();
    if (IsFinal(job.id())) return {Outcome::kDone, absl::OkStatus()};
    return {Outcome::kStoreError, stored.status()};
  }

  worker::v1::TrainRequest request;
  // The worker sends again what a resumed checkpoint holds past this.
  request.set_recorded_step(stored->step());
  request.set_job_id(job.id());
  request.set_model(job.model());
  request.set_model_cache_dir(layout_.ModelsDir());
  absl::StatusOr<v1::Dataset> training =
      datasets_->GetDataset(job.training_file());
  if (!training.ok()) {
    unregister();
    return {Outcome::kWorkerError, training.status()};
  }
  request.set_training_path(layout_.DatasetPath(training->sha256()));
  if (!job.validation_file().empty()) {
    absl::StatusOr<v1::Dataset> validation =
        datasets_->GetDataset(job.validation_file());
    if (!validation.ok()) {
      unregister();
      return {Outcome::kWorkerError, validation.status()};
    }
    request.set_validation_path(layout_.DatasetPath(validation->sha256()));
  }
  request.set_job_dir(layout_.JobDir(job.id()));
  request.set_adapter_dir(layout_.AdapterDir(job.id()));
  *request.mutable_config() = ToWorker(job.hyperparameters());

  bool finished = false;
  bool job_final = false;
  absl::Status store_error;
  absl::Status status = worker_->Train(
      worker, request, &call, [&](const worker::v1::TrainEvent& event) {
        if (event.has_finished() && adapter_hook_) {
          absl::Status hooked =
              adapter_hook_(job, event.finished().adapter_dir());
          if (!hooked.ok()) {
            (void)journal_->Log(job.id(),
                                absl::StrCat("the adapter was not registered: ",
                                             hooked.message()));
          }
        }
        absl::StatusOr<v1::FineTuneJob> updated = journal_->Update(
            job.id(), [&](v1::FineTuneJob& job, Events& events) {
              finished = ApplyTrainEvent(event, job, events) || finished;
              return absl::OkStatus();
            });
        if (updated.ok()) return true;
        // Cancelled meanwhile, or the store failed: stop the worker's run
        // either way; a store error then fails the job.
        if (IsFinal(job.id())) {
          job_final = true;
        } else {
          store_error = updated.status();
        }
        return false;
      });
  unregister();
  if (!store_error.ok()) return {Outcome::kStoreError, store_error};
  if (finished || job_final) return {Outcome::kDone, absl::OkStatus()};
  {
    absl::MutexLock lock(&mu_);
    if (stop_) return {Outcome::kStopping, absl::OkStatus()};
  }
  if (absl::Status alive = journal_->Update(job.id(), Unchanged).status();
      !alive.ok()) {
    if (IsFinal(job.id())) return {Outcome::kDone, absl::OkStatus()};
    return {Outcome::kStoreError, alive};
  }
  return ClassifyEnd(worker, status);
}

Scheduler::RunResult Scheduler::ClassifyEnd(const WorkerHandle& worker,
                                            const absl::Status& status) {
  if (status.ok()) {
    return {Outcome::kWorkerDied,
            absl::UnavailableError(
                "the worker ended the training stream without finishing")};
  }
  // A killed worker shows up as a broken stream; give the process a moment
  // to be seen as gone before deciding whose fault the error was.
  if (absl::IsUnavailable(status) || absl::IsCancelled(status) ||
      worker_->GoneWithin(worker.generation, absl::Milliseconds(500))) {
    return {Outcome::kWorkerDied, status};
  }
  return {Outcome::kWorkerError, status};
}

void Scheduler::Fail(const std::string& job_id, const absl::Status& status) {
  // The store may be failing too: try until the job is final or lorad
  // stops (the next start then re-queues it), never leaving it RUNNING
  // silently.
  absl::Duration backoff = absl::Milliseconds(100);
  while (true) {
    absl::Status failed =
        journal_
            ->Update(job_id,
                     [&](v1::FineTuneJob& job, Events& events) {
                       v1::JobError error = MakeJobError(status);
                       TransitionTo(job, v1::FAILED, status.message(), events,
                                    &error);
                       return absl::OkStatus();
                     })
            .status();
    if (failed.ok() || IsFinal(job_id)) return;
    std::fprintf(stderr, "lorad: cannot mark job %s FAILED (%s): %s\n",
                 job_id.c_str(), std::string(status.message()).c_str(),
                 failed.ToString().c_str());
    absl::MutexLock lock(&mu_);
    auto stopping = [this]()
                        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping), backoff)) return;
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
}

void Scheduler::FailStoreError(const std::string& job_id,
                               const absl::Status& status) {
  std::fprintf(stderr, "lorad: job %s: the job store failed: %s\n",
               job_id.c_str(), status.ToString().c_str());
  Fail(job_id, absl::Status(status.code(),
                            absl::StrCat("the job store failed while the job "
                                         "ran: ",
                                         status.message())));
}

bool Scheduler::IsFinal(const std::string& job_id) {
  absl::StatusOr<v1::FineTuneJob> job = store_->GetJob(job_id);
  return job.ok() && IsFinalState(job->state());
}

}  // namespace lorad::server
