#include "jobs/batch_runner.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "api/grpc_status.h"
#include "jobs/job_journal.h"
#include "lorad/common/status_macros.h"
#include "worker_link/wire.h"

namespace lorad::server {
namespace {

using Events = std::vector<v1::JobEvent>;

constexpr int kAttemptsPerLine = 3;
constexpr absl::Duration kProgressEvery = absl::Milliseconds(250);
constexpr absl::Duration kWorkerWait = absl::Seconds(150);

// Errors that say the call broke (the worker died or restarted), not that
// the request was bad: the line is tried again.
bool Retryable(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsCancelled(status) ||
         absl::IsInternal(status) || absl::IsDeadlineExceeded(status) ||
         absl::IsAborted(status) || absl::IsUnknown(status);
}

void AddProgress(const v1::BatchJob& job, Events& events) {
  v1::BatchProgress* progress = events.emplace_back().mutable_batch();
  progress->set_completed(job.completed());
  progress->set_total(job.num_requests());
  progress->set_failed(job.failed());
  progress->set_completion_tokens(job.completion_tokens());
}

}  // namespace

std::string BatchInputPath(const DataLayout& layout, const std::string& id) {
  return absl::StrCat(layout.root(), "/batch/", id, "/input.jsonl");
}

BatchRunner::BatchRunner(const DaemonOptions& options, BatchJobStore* store,
                         BatchJournal* journal, WorkerClient* worker,
                         InferenceService* inference)
    : options_(options),
      layout_(options.data_dir),
      store_(store),
      journal_(journal),
      worker_(worker),
      inference_(inference) {}

BatchRunner::~BatchRunner() { Stop(); }

absl::Status BatchRunner::Start() {
  LORAD_ASSIGN_OR_RETURN(std::vector<v1::BatchJob> running,
                         store_->BatchJobsInStates({v1::RUNNING}));
  for (const v1::BatchJob& job : running) {
    absl::StatusOr<v1::BatchJob> requeued =
        journal_->Update(job.id(), [](v1::BatchJob& job, Events& events) {
          TransitionBatchTo(job, v1::QUEUED,
                            "lorad restarted; the job is queued again and "
                            "resumes at the first line without a result",
                            events);
          return absl::OkStatus();
        });
    if (!requeued.ok()) {
      std::fprintf(stderr, "lorad: cannot recover batch job %s: %s\n",
                   job.id().c_str(), requeued.status().ToString().c_str());
    }
  }
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void BatchRunner::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    if (running_calls_ != nullptr) running_calls_->Cancel();
  }
  if (thread_.joinable()) thread_.join();
}

void BatchRunner::Notify() {
  absl::MutexLock lock(&mu_);
  wake_ = true;
}

absl::StatusOr<v1::BatchJob> BatchRunner::Cancel(const std::string& job_id) {
  LORAD_ASSIGN_OR_RETURN(
      v1::BatchJob job,
      journal_->Update(job_id, [](v1::BatchJob& job, Events& events) {
        TransitionBatchTo(job, v1::CANCELLED, "cancelled by request", events);
        return absl::OkStatus();
      }));
  absl::MutexLock lock(&mu_);
  if (running_job_ == job_id) {
    cancel_running_ = true;
    if (running_calls_ != nullptr) running_calls_->Cancel();
  }
  return job;
}

bool BatchRunner::Halted(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  return stop_ || (running_job_ == job_id && cancel_running_);
}

void BatchRunner::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return;
      wake_ = false;
    }
    absl::StatusOr<std::vector<v1::BatchJob>> queued =
        store_->BatchJobsInStates({v1::QUEUED});
    if (queued.ok() && !queued->empty()) {
      RunJob(queued->front().id());
      continue;
    }
    if (!queued.ok()) {
      std::fprintf(stderr, "lorad: cannot list batch jobs: %s\n",
                   queued.status().ToString().c_str());
    }
    absl::MutexLock lock(&mu_);
    auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stop_ || wake_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&woken), absl::Seconds(5));
  }
}

void BatchRunner::RunJob(const std::string& job_id) {
  Run run;
  run.job_id = job_id;
  absl::StatusOr<std::vector<std::pair<int64_t, std::string>>> done =
      store_->BatchResults(job_id, -1, 0);
  absl::StatusOr<v1::BatchJob> job = journal_->Update(
      job_id, [&](v1::BatchJob& job, Events& events) -> absl::Status {
        if (!done.ok()) return done.status();
        job.set_attempts(job.attempts() + 1);
        if (job.started_at_unix() == 0) {
          job.set_started_at_unix(absl::ToUnixSeconds(absl::Now()));
        }
        // Recounted from the stored results: they are what survives a crash.
        job.set_completed(static_cast<int64_t>(done->size()));
        int64_t failed = 0;
        for (const auto& [index, json] : *done)
          failed += IsBatchErrorJson(json);
        job.set_failed(failed);
        TransitionBatchTo(
            job, v1::RUNNING,
            done->empty()
                ? absl::StrCat("running ", job.num_requests(), " requests")
                : absl::StrCat("resuming: ", done->size(), " of ",
                               job.num_requests(), " done"),
            events);
        AddProgress(job, events);
        return absl::OkStatus();
      });
  if (!job.ok()) {
    if (!absl::IsFailedPrecondition(job.status())) {
      std::fprintf(stderr, "lorad: cannot start batch job %s: %s\n",
                   job_id.c_str(), job.status().ToString().c_str());
      absl::SleepFor(absl::Seconds(1));
    }
    return;
  }
  absl::StatusOr<std::string> input =
      options_.env->ReadFile(BatchInputPath(layout_, job_id));
  absl::StatusOr<std::vector<BatchLine>> lines =
      input.ok() ? ParseBatchInput(*input, job->defaults())
                 : absl::StatusOr<std::vector<BatchLine>>(input.status());
  if (!lines.ok()) {
    (void)journal_->Update(job_id, [&](v1::BatchJob& job, Events& events) {
      v1::JobError error = MakeJobError(absl::DataLossError(absl::StrCat(
          "the stored input cannot be read: ", lines.status().message())));
      TransitionBatchTo(job, v1::FAILED, error.message(), events, &error);
      return absl::OkStatus();
    });
    return;
  }
  run.lines = *std::move(lines);
  std::vector<bool> have(run.lines.size(), false);
  for (const auto& [index, json] : *done) {
    if (index >= 0 && index < static_cast<int64_t>(have.size())) {
      have[index] = true;
    }
  }
  for (size_t i = 0; i < run.lines.size(); ++i) {
    if (!have[i]) run.pending.push_back(static_cast<int64_t>(i));
  }
  Cancellation calls;
  {
    absl::MutexLock lock(&mu_);
    running_job_ = job_id;
    cancel_running_ = false;
    running_calls_ = &calls;
    if (stop_) calls.Cancel();
  }
  RunLines(run, &calls);
  {
    absl::MutexLock lock(&mu_);
    running_job_.clear();
    running_calls_ = nullptr;
  }
  if (Halted(job_id)) return;
  absl::StatusOr<std::vector<int64_t>> stored =
      store_->BatchResultIndices(job_id);
  (void)journal_->Update(job_id, [&](v1::BatchJob& job, Events& events) {
    if (!stored.ok()) return stored.status();
    if (stored->size() < run.lines.size()) return absl::OkStatus();
    AddProgress(job, events);
    TransitionBatchTo(
        job, v1::SUCCEEDED,
        absl::StrCat(job.completed() - job.failed(), " of ", job.num_requests(),
                     " requests answered, ", job.failed(), " failed"),
        events);
    return absl::OkStatus();
  });
}

void BatchRunner::RunLines(Run& run, Cancellation* calls) {
  // The first line runs alone, so that a cold worker loads the model once
  // rather than once per concurrent call.
  if (run.pending.empty()) return;
  run.next = 1;
  if (RunLine(run, run.lines[run.pending[0]], calls) == LineEnd::kStopped) {
    return;
  }
  const int threads =
      std::max(1, std::min<int>(options_.batch_concurrency,
                                static_cast<int>(run.pending.size())));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([this, &run, calls] {
      while (!Halted(run.job_id)) {
        int64_t index;
        {
          absl::MutexLock lock(&run_mu_);
          if (run.next >= run.pending.size()) return;
          index = run.pending[run.next++];
        }
        if (RunLine(run, run.lines[index], calls) == LineEnd::kStopped) return;
      }
    });
  }
  for (std::thread& t : pool) t.join();
}

BatchRunner::LineEnd BatchRunner::RunLine(Run& run, const BatchLine& line,
                                          Cancellation* calls) {
  absl::Status status;
  for (int attempt = 1; attempt <= kAttemptsPerLine; ++attempt) {
    std::string text, finish_reason;
    v1::GenerateUsage usage;
    status = GenerateOnce(line, calls, text, finish_reason, usage);
    if (Halted(run.job_id)) return LineEnd::kStopped;
    if (status.ok()) {
      absl::Status recorded =
          Record(run, line, BatchResultJson(line, text, finish_reason, usage),
                 false, usage.completion_tokens());
      return recorded.ok() ? LineEnd::kStored : LineEnd::kStopped;
    }
    if (!Retryable(status)) break;
    absl::SleepFor(absl::Seconds(1));
  }
  absl::Status recorded =
      Record(run, line, BatchErrorJson(line, status), true, 0);
  return recorded.ok() ? LineEnd::kStored : LineEnd::kStopped;
}

absl::Status BatchRunner::GenerateOnce(const BatchLine& line,
                                       Cancellation* calls, std::string& text,
                                       std::string& finish_reason,
                                       v1::GenerateUsage& usage) {
  LORAD_ASSIGN_OR_RETURN(worker::v1::GenerateRequest request,
                         inference_->Resolve(line.request));
  CallOptions options;
  options.ready_wait = kWorkerWait;
  options.cancel = calls;
  LORAD_ASSIGN_OR_RETURN(std::vector<worker::v1::GenerateChunk> chunks,
                         worker_->Generate(request, options));
  for (const worker::v1::GenerateChunk& chunk : chunks) {
    const v1::GenerateResponse response = ToPublic(chunk);
    text += response.text();
    if (!response.finish_reason().empty()) {
      finish_reason = response.finish_reason();
    }
    if (response.has_usage()) usage = response.usage();
  }
  return absl::OkStatus();
}

absl::Status BatchRunner::Record(Run& run, const BatchLine& line,
                                 const std::string& json, bool failed,
                                 int32_t completion_tokens) {
  LORAD_RETURN_IF_ERROR(store_->PutBatchResult(run.job_id, line.index, json));
  return journal_
      ->Update(run.job_id,
               [&](v1::BatchJob& job, Events& events) {
                 job.set_completed(job.completed() + 1);
                 job.set_failed(job.failed() + (failed ? 1 : 0));
                 job.set_completion_tokens(job.completion_tokens() +
                                           completion_tokens);
                 absl::MutexLock lock(&run_mu_);
                 const absl::Time now = absl::Now();
                 if (now - run.last_event >= kProgressEvery) {
                   run.last_event = now;
                   AddProgress(job, events);
                 }
                 return absl::OkStatus();
               })
      .status();
}

}  // namespace lorad::server
