#include "jobs/train_events.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "jobs/job_journal.h"
#include "worker_link/wire.h"

namespace lorad::server {
namespace {

std::string DescribeStart(const worker::v1::TrainStarted& started) {
  std::string text =
      absl::StrCat("training started: ", started.total_steps(), " steps, ",
                   started.num_train_sequences(), " training and ",
                   started.num_eval_sequences(), " evaluation sequences");
  if (!started.compute_dtype().empty()) {
    absl::StrAppend(&text, ", compute dtype ", started.compute_dtype());
  }
  if (started.memory_estimate().total_bytes() > 0) {
    absl::StrAppend(&text, ", estimated peak memory ",
                    started.memory_estimate().total_bytes(), " bytes");
  }
  if (started.resumed_from_step() > 0) {
    absl::StrAppend(&text, "; resumed from the checkpoint at step ",
                    started.resumed_from_step());
  }
  return text;
}

}  // namespace

bool ApplyTrainEvent(const worker::v1::TrainEvent& event, v1::FineTuneJob& job,
                     std::vector<v1::JobEvent>& events) {
  const size_t first = events.size();
  bool finished = false;
  switch (event.kind_case()) {
    case worker::v1::TrainEvent::kStarted: {
      const worker::v1::TrainStarted& started = event.started();
      *job.mutable_memory_estimate() = ToPublic(started.memory_estimate());
      job.set_total_steps(started.total_steps());
      job.set_base_bytes_per_param(started.base_bytes_per_param());
      if (started.resumed_from_step() > job.step()) {
        job.set_step(started.resumed_from_step());
      }
      events.emplace_back().set_log(DescribeStart(started));
      break;
    }
    case worker::v1::TrainEvent::kStep: {
      const v1::TrainStep step = ToPublic(event.step());
      job.set_step(step.step());
      if (step.total_steps() > 0) job.set_total_steps(step.total_steps());
      job.set_last_loss(step.loss());
      *events.emplace_back().mutable_step() = step;
      break;
    }
    case worker::v1::TrainEvent::kEval:
      job.set_last_eval_loss(event.eval().eval_loss());
      *events.emplace_back().mutable_eval() = ToPublic(event.eval());
      break;
    case worker::v1::TrainEvent::kCheckpointStep:
      events.emplace_back().set_log(
          absl::StrCat("checkpoint saved at step ", event.checkpoint_step()));
      break;
    case worker::v1::TrainEvent::kFinished: {
      const worker::v1::TrainFinished& done = event.finished();
      job.set_adapter_path(done.adapter_dir());
      job.set_peak_memory_bytes(done.peak_memory_bytes());
      if (done.final_loss() != 0) job.set_last_loss(done.final_loss());
      job.set_best_step(done.best_step());
      job.set_best_eval_loss(done.best_eval_loss());
      job.set_stopped_early(done.stopped_early());
      std::string how = absl::StrCat("adapter written to ", done.adapter_dir());
      if (done.best_step() > 0) {
        absl::StrAppend(&how, " (the best eval loss, ", done.best_eval_loss(),
                        ", at step ", done.best_step(),
                        done.stopped_early() ? "; stopped early" : "", ")");
      }
      TransitionTo(job, v1::SUCCEEDED, how, events);
      finished = true;
      break;
    }
    case worker::v1::TrainEvent::kLog:
      events.emplace_back().set_log(event.log());
      break;
    case worker::v1::TrainEvent::KIND_NOT_SET:
      break;
  }
  if (event.has_memory()) {
    const v1::MemoryUsage memory = ToPublic(event.memory());
    for (size_t i = first; i < events.size(); ++i) {
      *events[i].mutable_memory() = memory;
    }
  }
  return finished;
}

}  // namespace lorad::server
