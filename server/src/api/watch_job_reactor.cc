#include "api/watch_job_reactor.h"

#include <utility>

#include "api/grpc_status.h"

namespace lorad::server {
namespace {

bool IsFinalStateEvent(const v1::JobEvent& event) {
  return event.has_state() && IsFinalState(event.state().state());
}

}  // namespace

WatchJobReactor::WatchJobReactor(JobJournal* journal, EventHub* hub,
                                 const std::string& job_id, int64_t after_seq,
                                 bool history_only)
    : WatchJobReactor(
          hub, after_seq,
          [&](EventHub::Callback callback) -> absl::StatusOr<Start> {
            absl::StatusOr<JobJournal::WatchStart> watch =
                journal->Watch(job_id, after_seq, std::move(callback));
            if (!watch.ok()) return watch.status();
            Start start;
            start.history = std::move(watch->history);
            start.final = history_only || IsFinalState(watch->job.state());
            start.subscription_id = watch->subscription_id;
            return start;
          }) {}

WatchJobReactor::WatchJobReactor(EventHub* hub, int64_t after_seq,
                                 const Subscribe& subscribe)
    : hub_(hub) {
  {
    absl::MutexLock lock(&mu_);
    last_seq_ = after_seq;
  }
  absl::StatusOr<Start> start =
      subscribe([this](const v1::JobEvent& event) { OnLiveEvent(event); });
  if (!start.ok()) {
    {
      absl::MutexLock lock(&mu_);
      finished_ = true;
    }
    Finish(ToGrpcStatus(start.status()));
    return;
  }
  subscription_id_ = start->subscription_id;
  {
    absl::MutexLock lock(&mu_);
    for (const v1::JobEvent& event : start->history) Enqueue(event);
    // A job final in the snapshot has all its events in the history.
    if (start->final) complete_ = true;
    for (const v1::JobEvent& event : early_live_) Enqueue(event);
    early_live_.clear();
    loading_ = false;
  }
  Pump();
}

void WatchJobReactor::OnLiveEvent(const v1::JobEvent& event) {
  {
    absl::MutexLock lock(&mu_);
    if (loading_) {
      early_live_.push_back(event);
      return;
    }
    Enqueue(event);
  }
  Pump();
}

void WatchJobReactor::Enqueue(const v1::JobEvent& event) {
  // The final state ends the stream even when the caller already has it
  // (after_seq at or past it): otherwise a watch from past the end would
  // never end.
  if (IsFinalStateEvent(event)) complete_ = true;
  if (event.seq() <= last_seq_) return;
  last_seq_ = event.seq();
  queue_.push_back(event);
}

WatchJobReactor::Next WatchJobReactor::Decide() {
  if (finished_ || writing_ || loading_) return Next::kNothing;
  if (cancelled_) {
    finished_ = true;
    final_status_ =
        grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled");
    return Next::kFinish;
  }
  if (!queue_.empty()) {
    current_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    return Next::kWrite;
  }
  if (complete_) {
    finished_ = true;
    final_status_ = grpc::Status::OK;
    return Next::kFinish;
  }
  return Next::kNothing;
}

void WatchJobReactor::Act(Next next) {
  switch (next) {
    case Next::kNothing:
      return;
    case Next::kWrite:
      StartWrite(&current_);
      return;
    case Next::kFinish: {
      grpc::Status status;
      {
        absl::MutexLock lock(&mu_);
        status = final_status_;
      }
      Finish(status);
      return;
    }
  }
}

void WatchJobReactor::Pump() {
  Next next;
  {
    absl::MutexLock lock(&mu_);
    next = Decide();
  }
  Act(next);
}

void WatchJobReactor::OnWriteDone(bool ok) {
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) cancelled_ = true;
  }
  Pump();
}

void WatchJobReactor::OnCancel() {
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }
  Pump();
}

void WatchJobReactor::OnDone() {
  if (subscription_id_ != 0) hub_->Unsubscribe(subscription_id_);
  delete this;
}

}  // namespace lorad::server
