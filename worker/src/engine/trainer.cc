#include "lorad/worker/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lorad/common/files.h"
#include "lorad/common/status_macros.h"
#include "lorad/model/memory_estimate.h"
#include "lorad/model/training_data.h"
#include "lorad/worker/adamw8bit.h"
#include "lorad/worker/device_memory.h"
#include "lorad/worker/fused_adamw.h"
#include "lorad/worker/intra_op_threads.h"
#include "lorad/worker/lr_schedule.h"
#include "lorad/worker/paged_optimizer.h"
#include "lorad/worker/training_group.h"
#include "objective.h"
#include "train_checkpoint.h"

namespace lorad::worker {
namespace {

// The optimizer hp.optimizer names (the server validated it; `shape` holds
// what model::SetOptimizer read from the name): AdamW with fp32 moments
// (stepped by LibTorch's fused kernel, fused_adamw.h) or the 8-bit
// block-wise AdamW; either paged (paged_optimizer.h) once created or
// resumed.
std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(
    const lorad::worker::v1::TrainConfig& hp, const model::TrainingShape& shape,
    const std::vector<torch::Tensor>& params) {
  if (shape.optimizer_8bit) {
    AdamW8bitOptions o(hp.learning_rate());
    o.betas({0.9, 0.999}).eps(1e-8).weight_decay(hp.weight_decay());
    return std::make_unique<AdamW8bit>(params, o);
  }
  return std::make_unique<FusedAdamW>(
      params, torch::optim::AdamWOptions(hp.learning_rate())
                  .betas({0.9, 0.999})
                  .eps(1e-8)
                  .weight_decay(hp.weight_decay()));
}

using lorad::worker::v1::TrainEvent;

// How many sent events a checkpoint keeps: far more than can be in flight
// between the worker and lorad when either is killed.
constexpr size_t kSentEventsKept = 4096;

// Resuming from `state`: sends again, in their order, the events its
// checkpoint kept from after `recorded_step` (lost on their way to the
// caller), and moves the kept events into `sent` so later checkpoints keep
// them too. Kept events that do not parse are dropped; the checkpoint is
// still resumed from.
void ResendUnrecorded(int64_t recorded_step, const TrainCallbacks& cb,
                      const CheckpointState& state,
                      std::deque<lorad::worker::v1::SentTrainEvent>& sent) {
  lorad::worker::v1::SentTrainEvents kept;
  if (state.sent_events.empty() || !kept.ParseFromString(state.sent_events)) {
    return;
  }
  int64_t first = 0, last = 0;
  for (auto& e : *kept.mutable_events()) {
    if (e.at_step() > recorded_step) {
      if (cb.on_event) cb.on_event(e.event());
      if (first == 0) first = e.at_step();
      last = e.at_step();
    }
    sent.push_back(std::move(e));
  }
  while (sent.size() > kSentEventsKept) sent.pop_front();
  if (first > 0 && cb.on_event) {
    TrainEvent log;
    log.set_log(absl::StrCat(
        "sent again the events of steps ", first, " to ", last,
        " from the checkpoint: they were sent before the interruption but "
        "not recorded (the last step recorded was ",
        recorded_step, ")"));
    cb.on_event(log);
  }
}

absl::Status Train(const LlamaModel& model, const TrainJob& job,
                   const TrainCallbacks& cb) {
  const lorad::worker::v1::TrainConfig& hp = job.hp;
  if (hp.batch_size() < 1 || hp.gradient_accumulation() < 1 ||
      hp.max_seq_len() < 2 || hp.learning_rate() <= 0) {
    return absl::InvalidArgumentError(
        "hyper-parameters incomplete: batch_size, gradient_accumulation, "
        "max_seq_len and learning_rate must be set");
  }
  const torch::Device device = model.device();
  CheckpointState state;
  // The events sent since TrainStarted, after those the resumed checkpoint
  // kept, each with its step: checkpoints keep them (see TrainJob).
  std::deque<lorad::worker::v1::SentTrainEvent> sent;
  bool keep_sent = false;
  auto emit = [&](TrainEvent e) {
    *e.mutable_memory() = CurrentMemoryUsage(device);
    if (cb.on_event) cb.on_event(e);
    if (!keep_sent) return;
    if (sent.size() >= kSentEventsKept) sent.pop_front();
    sent.emplace_back().set_at_step(static_cast<int32_t>(state.step));
    *sent.back().mutable_event() = std::move(e);
  };

  LORAD_ASSIGN_OR_RETURN(std::unique_ptr<Objective> objective,
                         MakeObjective(model, job));
  const int64_t n = objective->num_train();
  const int64_t micro_per_epoch = (n + hp.batch_size() - 1) / hp.batch_size();
  const int64_t accum = hp.gradient_accumulation();
  const int64_t steps_per_epoch =
      std::max<int64_t>(1, (micro_per_epoch + accum - 1) / accum);
  const int64_t total_steps = hp.max_steps() > 0
                                  ? hp.max_steps()
                                  : std::max(1, hp.epochs()) * steps_per_epoch;

  LoraOptions lora;
  lora.rank = hp.rank();
  lora.alpha = hp.alpha();
  lora.dropout = hp.dropout();
  lora.target_modules.assign(hp.target_modules().begin(),
                             hp.target_modules().end());
  LORAD_ASSIGN_OR_RETURN(
      AdapterSet adapter,
      AdapterSet::CreateForTraining(model.config(), lora, hp.seed(), device));
  model::TrainingShape shape;
  model::SetOptimizer(hp.optimizer(), &shape);
  std::unique_ptr<torch::optim::Optimizer> optimizer_owner =
      MakeOptimizer(hp, shape, adapter.Parameters());
  torch::optim::Optimizer& optimizer = *optimizer_owner;

  // The job's own generator for dropout masks (not LibTorch's default,
  // which other jobs in this process draw from and reseed): its masks
  // depend on its seed alone, fused with other jobs or not.
  at::Generator dropout_generator = NewGenerator(device, hp.seed());
  LORAD_RETURN_IF_ERROR(MakeDirs(job.job_dir));
  auto resumed = LoadCheckpoint(job.job_dir, adapter, optimizer, Env::Default(),
                                dropout_generator);
  if (resumed.ok()) {
    state = resumed->state;
    for (const std::string& why : resumed->skipped) {
      TrainEvent e;
      e.set_log(absl::StrCat("skipped a checkpoint: ", why));
      emit(e);
    }
    ResendUnrecorded(job.recorded_step, cb, state, sent);
  } else if (!absl::IsNotFound(resumed.status())) {
    return resumed.status();
  }
  auto save = [&]() -> absl::Status {
    lorad::worker::v1::SentTrainEvents kept;
    for (const auto& e : sent) *kept.add_events() = e;
    state.sent_events = kept.SerializeAsString();
    return SaveCheckpoint(job.job_dir, adapter, optimizer, state,
                          Env::Default(), dropout_generator);
  };
  if (shape.optimizer_paged) {
    LORAD_ASSIGN_OR_RETURN(PagedState paged, PageOptimizerState(optimizer));
    TrainEvent e;
    e.set_log(paged.note);
    emit(e);
  }

  shape.rank = hp.rank();
  shape.target_modules = lora.target_modules;
  shape.batch_size = hp.batch_size();
  objective->Shape(&shape);
  shape.gradient_checkpointing = hp.gradient_checkpointing();
  shape.compute_bytes = model.dtype() == torch::kFloat32 ? 4 : 2;
  shape.logits_chunk_bytes = LogitsChunkBytes();
  model::MemoryEstimateBytes est =
      model::EstimateTrainingMemory(model.config(), shape);
  // This thread's LibTorch threads, from the widest micro-batch (a fused
  // pass picks its own on the group's thread).
  const int64_t micro_batch_tokens =
      shape.batch_size * (shape.preference ? 2 : 1) * shape.seq_len;
  ScopedIntraOpThreads threads(
      device.is_cpu() ? IntraOpThreadsFor(model.config(), micro_batch_tokens)
                      : 0);
  {
    TrainEvent e;
    auto* s = e.mutable_started();
    s->set_total_steps(static_cast<int32_t>(total_steps));
    s->set_resumed_from_step(static_cast<int32_t>(state.step));
    s->set_base_bytes_per_param(model.QuantizedBytesPerParam());
    s->set_num_train_sequences(n);
    s->set_num_eval_sequences(objective->num_eval());
    s->set_compute_dtype(std::string(c10::toString(model.dtype())));
    auto* m = s->mutable_memory_estimate();
    m->set_base_bytes(model.BaseBytes());
    m->set_adapter_bytes(est.adapter);
    m->set_optimizer_bytes(est.optimizer);
    m->set_gradient_bytes(est.gradients);
    m->set_activation_bytes(est.activations);
    m->set_activation_bytes_no_checkpoint(est.activations_no_checkpoint);
    m->set_activation_bytes_checkpoint(est.activations_checkpoint);
    const int64_t resident = std::max<int64_t>(
        0, CurrentMemoryUsage(device).used_bytes() - model.BaseBytes());
    m->set_resident_bytes(resident);
    m->set_pageable_bytes(est.pageable);
    m->set_total_bytes(resident + model.BaseBytes() + est.adapter +
                       est.optimizer + est.gradients + est.activations);
    emit(e);
  }
  if (const int64_t rows = model.LogitsChunkRows(micro_batch_tokens);
      rows > 0) {
    TrainEvent e;
    e.set_log(absl::StrCat(
        "the head and its loss run ", rows,
        " positions at a time: a micro-batch's whole logits (",
        micro_batch_tokens, " positions x ", model.config().vocab_size,
        " tokens, fp32) would take ",
        micro_batch_tokens * model.config().vocab_size * 4 / (1 << 20),
        " MiB"));
    emit(e);
  }
  keep_sent = true;

  // In a group, the job waits for the others' micro-batches from here on;
  // leaving (on any return) stops them waiting for its.
  std::unique_ptr<TrainingGroup::Member> member;
  if (cb.group != nullptr) member = cb.group->Join(job.job_id);
  std::vector<std::string> fused_with;
  const std::vector<torch::Tensor> params = adapter.Parameters();
  float last_loss = 0;
  const int64_t patience = hp.early_stopping_patience();
  if (patience > 0 && objective->num_eval() == 0) {
    return absl::InvalidArgumentError(
        "early_stopping_patience needs validation data: the validation file "
        "or split gave no sequences");
  }
  bool stop_early = false;
  // Evaluates; with early stopping, writes the adapter when the eval loss
  // is the lowest so far and decides whether patience ran out.
  auto eval_and_emit = [&](int64_t step) -> absl::Status {
    if (objective->num_eval() == 0) return absl::OkStatus();
    TrainEvent e;
    e.mutable_eval()->set_step(static_cast<int32_t>(step));
    objective->Evaluate(adapter, hp.batch_size(), cb.device_turns,
                        e.mutable_eval());
    const float loss = e.eval().eval_loss();
    if (patience > 0) {
      if (loss < state.best_eval_loss) {
        state.best_eval_loss = loss;
        state.best_step = step;
        state.evals_since_best = 0;
        LORAD_RETURN_IF_ERROR(
            adapter.SavePeft(job.adapter_dir, job.base_model_name));
        e.mutable_eval()->set_best(true);
      } else {
        stop_early = ++state.evals_since_best >= patience;
      }
    }
    emit(e);
    return absl::OkStatus();
  };

  // The last step a checkpoint holds (0: none yet).
  int64_t saved_step = state.step;
  for (int64_t step = state.step; step < total_steps; ++step) {
    auto t0 = std::chrono::steady_clock::now();
    const double lr = LearningRateAt(hp.lr_scheduler(), hp.learning_rate(),
                                     step, hp.warmup_steps(), total_steps);
    for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
    optimizer.zero_grad();
    double loss_sum = 0;
    int64_t step_tokens = 0;
    int64_t epoch = 0;
    for (int64_t m = 0; m < accum; ++m) {
      if (cb.cancelled && cb.cancelled()) {
        // Stopped between two steps (lorad is shutting down, or the job was
        // cancelled): keep what was trained since the last checkpoint, so
        // a restart resumes here. Only at a step's first micro-batch: later
        // ones have drawn from the random state the checkpoint records.
        if (m == 0 && state.step > saved_step) {
          DeviceTurn turn(cb.device_turns, DeviceTurn::Kind::kTraining);
          (void)save();
        }
        return absl::CancelledError("job cancelled");
      }
      const int64_t micro = step * accum + m;
      epoch = micro / micro_per_epoch;
      const int64_t within = micro % micro_per_epoch;
      std::vector<int64_t> order = model::EpochOrder(n, hp.seed(), epoch);
      std::vector<int64_t> pick(
          order.begin() + within * hp.batch_size(),
          order.begin() + std::min(n, (within + 1) * hp.batch_size()));
      MicroBatchResult result;
      if (member == nullptr) {
        DeviceTurn turn(cb.device_turns, DeviceTurn::Kind::kTraining);
        PreparedMicroBatch prepared = objective->Prepare(pick, &step_tokens);
        prepared.generator = dropout_generator;
        result = RunMicroBatchAlone(model, prepared, adapter,
                                    hp.gradient_checkpointing(), accum);
      } else {
        // The group's pass takes its own turn; only the preparation (and
        // DPO's reference pass) takes one here.
        PreparedMicroBatch prepared;
        {
          DeviceTurn turn(cb.device_turns, DeviceTurn::Kind::kTraining);
          prepared = objective->Prepare(pick, &step_tokens);
        }
        prepared.generator = dropout_generator;
        LORAD_ASSIGN_OR_RETURN(
            result, cb.group->Run(member.get(), prepared, adapter,
                                  hp.gradient_checkpointing(), accum));
        if (result.fused_with != fused_with) {
          fused_with = result.fused_with;
          TrainEvent log;
          log.set_log(fused_with.empty()
                          ? std::string("micro-batches run alone")
                          : absl::StrCat("micro-batches fused with job",
                                         fused_with.size() > 1 ? "s " : " ",
                                         absl::StrJoin(fused_with, ", "),
                                         " on the same base (one forward and "
                                         "backward for ",
                                         fused_with.size() + 1, " jobs)"));
          emit(log);
        }
      }
      loss_sum += result.loss;
    }
    double grad_norm = 0;
    {
      DeviceTurn turn(cb.device_turns, DeviceTurn::Kind::kTraining);
      if (hp.max_grad_norm() > 0) {
        grad_norm =
            torch::nn::utils::clip_grad_norm_(params, hp.max_grad_norm());
      } else {
        torch::NoGradGuard no_grad;
        double sq = 0;
        for (const auto& p : params) {
          if (p.grad().defined()) sq += p.grad().pow(2).sum().item<double>();
        }
        grad_norm = std::sqrt(sq);
      }
      optimizer.step();
    }
    state.step = step + 1;
    state.tokens_seen += step_tokens;
    last_loss = static_cast<float>(loss_sum / accum);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    TrainEvent e;
    auto* s = e.mutable_step();
    s->set_step(static_cast<int32_t>(state.step));
    s->set_total_steps(static_cast<int32_t>(total_steps));
    s->set_loss(last_loss);
    s->set_learning_rate(static_cast<float>(lr));
    s->set_grad_norm(static_cast<float>(grad_norm));
    s->set_tokens_per_second(
        static_cast<float>(secs > 0 ? step_tokens / secs : 0));
    s->set_tokens_seen(state.tokens_seen);
    s->set_epoch(static_cast<int32_t>(epoch));
    objective->FinishStep(s);
    emit(e);
    if (!std::isfinite(last_loss)) {
      return absl::InvalidArgumentError(
          absl::StrCat("loss became ", last_loss, " at step ", state.step,
                       "; lower learning_rate (", hp.learning_rate(), ")"));
    }
    if (hp.eval_every() > 0 && state.step % hp.eval_every() == 0 &&
        state.step < total_steps) {
      LORAD_RETURN_IF_ERROR(eval_and_emit(state.step));
      if (stop_early) {
        TrainEvent log;
        log.set_log(absl::StrCat(
            "early stopping at step ", state.step, ": ", patience,
            " evaluations without a lower eval loss than ",
            state.best_eval_loss, " (step ", state.best_step, ")"));
        emit(log);
        break;
      }
    }
    if (hp.checkpoint_every() > 0 && state.step % hp.checkpoint_every() == 0 &&
        state.step < total_steps) {
      DeviceTurn turn(cb.device_turns, DeviceTurn::Kind::kTraining);
      LORAD_RETURN_IF_ERROR(save());
      saved_step = state.step;
      TrainEvent c;
      c.set_checkpoint_step(static_cast<int32_t>(state.step));
      emit(c);
    }
  }
  member.reset();  // no more micro-batches: the others need not wait
  if (!stop_early) LORAD_RETURN_IF_ERROR(eval_and_emit(state.step));
  // With early stopping the adapter on disk is the best evaluation's.
  if (patience == 0 || state.best_step == 0) {
    LORAD_RETURN_IF_ERROR(
        adapter.SavePeft(job.adapter_dir, job.base_model_name));
  }
  TrainEvent done;
  auto* finished = done.mutable_finished();
  finished->set_adapter_dir(job.adapter_dir);
  finished->set_peak_memory_bytes(PeakMemoryBytes(device));
  finished->set_final_loss(last_loss);
  if (patience > 0) {
    finished->set_best_step(static_cast<int32_t>(state.best_step));
    finished->set_best_eval_loss(state.best_eval_loss);
    finished->set_stopped_early(stop_early);
  }
  emit(done);
  return absl::OkStatus();
}

}  // namespace

absl::Status RunTraining(const LlamaModel& model, const TrainJob& job,
                         const TrainCallbacks& callbacks) {
  try {
    return Train(model, job, callbacks);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("training failed in LibTorch: ",
                                            e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("training failed: ", e.what()));
  }
}

}  // namespace lorad::worker
