#include "lorad/worker/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lorad/common/dataset.h"
#include "lorad/common/files.h"
#include "lorad/common/status_macros.h"
#include "lorad/model/memory_estimate.h"
#include "lorad/model/training_data.h"
#include "lorad/worker/adamw8bit.h"
#include "lorad/worker/device_memory.h"
#include "lorad/worker/lr_schedule.h"
#include "lorad/worker/paged_optimizer.h"
#include "train_checkpoint.h"

namespace lorad::worker {
namespace {

bool EightBit(const lorad::worker::v1::TrainConfig& hp) {
  return hp.optimizer() == "adamw_8bit" || hp.optimizer() == "paged_adamw_8bit";
}
bool Paged(const lorad::worker::v1::TrainConfig& hp) {
  return absl::StartsWith(hp.optimizer(), "paged_");
}

// The optimizer hp.optimizer names (the server validated it): torch's AdamW
// with fp32 moments, or the 8-bit block-wise AdamW; either paged
// (paged_optimizer.h) once created or resumed.
std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(
    const lorad::worker::v1::TrainConfig& hp,
    const std::vector<torch::Tensor>& params) {
  if (EightBit(hp)) {
    AdamW8bitOptions o(hp.learning_rate());
    o.betas({0.9, 0.999}).eps(1e-8).weight_decay(hp.weight_decay());
    return std::make_unique<AdamW8bit>(params, o);
  }
  return std::make_unique<torch::optim::AdamW>(
      params, torch::optim::AdamWOptions(hp.learning_rate())
                  .betas({0.9, 0.999})
                  .eps(1e-8)
                  .weight_decay(hp.weight_decay()));
}

using lorad::worker::v1::TrainEvent;

absl::StatusOr<std::vector<model::TokenSequence>> LoadSequences(
    const std::string& path, const LlamaModel& model,
    const lorad::worker::v1::TrainConfig& hp) {
  LORAD_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  auto parsed = ParseJsonlDataset(text, hp.train_on_prompt());
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", parsed.status().message()));
  }
  // The model's own chat template and EOS text, as TRL's SFTTrainer would
  // use them (model/training_data.h).
  const model::ChatTemplate& chat = model.chat_template();
  model::TokenizeOptions options;
  options.max_seq_len = hp.max_seq_len();
  options.packing = hp.packing();
  options.train_on_prompt = hp.train_on_prompt();
  options.chat = &chat;
  for (const auto& [name, text] : chat.special_tokens) {
    if (name == "eos_token") options.eos_text = text;
  }
  if (options.eos_text.empty() && !model.config().eos_token_ids.empty()) {
    options.eos_text = model.tokenizer().Decode(
        {static_cast<int32_t>(model.config().eos_token_ids[0])}, false);
  }
  absl::StatusOr<std::vector<model::TokenSequence>> sequences =
      model::TokenizeDataset(*parsed, model.tokenizer(), options);
  if (!sequences.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", sequences.status().message()));
  }
  return sequences;
}

struct Batch {
  torch::Tensor ids;     // [B, T] long
  torch::Tensor labels;  // [B, T] long, -100 where no loss
  int64_t tokens = 0;    // non-pad tokens
};

Batch MakeBatch(const std::vector<model::TokenSequence>& seqs,
                const std::vector<int64_t>& pick, int32_t pad_id,
                torch::Device device) {
  int64_t longest = 0;
  for (int64_t i : pick) {
    longest = std::max<int64_t>(longest, seqs[i].ids.size());
  }
  const int64_t b = static_cast<int64_t>(pick.size());
  torch::Tensor ids = torch::full({b, longest}, pad_id, torch::kLong);
  torch::Tensor labels =
      torch::full({b, longest}, model::kIgnoreLabel, torch::kLong);
  auto ia = ids.accessor<int64_t, 2>();
  auto la = labels.accessor<int64_t, 2>();
  Batch batch;
  for (int64_t r = 0; r < b; ++r) {
    const model::TokenSequence& s = seqs[pick[r]];
    for (size_t t = 0; t < s.ids.size(); ++t) {
      ia[r][t] = s.ids[t];
      la[r][t] = s.labels[t];
    }
    batch.tokens += static_cast<int64_t>(s.ids.size());
  }
  batch.ids = ids.to(device);
  batch.labels = labels.to(device);
  return batch;
}

// Sum of the next-token losses and how many targets they cover.
std::pair<torch::Tensor, int64_t> LossSum(const LlamaModel& model,
                                          const Batch& batch,
                                          const ForwardOptions& options) {
  torch::Tensor logits = model.Forward(batch.ids, options);
  const int64_t v = logits.size(-1);
  torch::Tensor shifted = logits.slice(1, 0, -1).reshape({-1, v});
  torch::Tensor targets = batch.labels.slice(1, 1).reshape({-1});
  int64_t count = targets.ne(model::kIgnoreLabel).sum().item<int64_t>();
  torch::Tensor loss = torch::nn::functional::cross_entropy(
      shifted, targets,
      torch::nn::functional::CrossEntropyFuncOptions()
          .ignore_index(model::kIgnoreLabel)
          .reduction(torch::kSum));
  return {loss, count};
}

absl::StatusOr<float> Evaluate(const LlamaModel& model,
                               const AdapterSet& adapter,
                               const std::vector<model::TokenSequence>& seqs,
                               int64_t batch_size, int32_t pad_id,
                               DeviceTurns* turns) {
  torch::NoGradGuard no_grad;
  ForwardOptions options;
  options.adapter = &adapter;
  double total = 0;
  int64_t count = 0;
  for (size_t start = 0; start < seqs.size(); start += batch_size) {
    std::vector<int64_t> pick;
    for (size_t i = start; i < std::min(seqs.size(), start + batch_size); ++i) {
      pick.push_back(static_cast<int64_t>(i));
    }
    DeviceTurn turn(turns, DeviceTurn::Kind::kTraining);
    Batch batch = MakeBatch(seqs, pick, pad_id, model.device());
    auto [loss, n] = LossSum(model, batch, options);
    total += loss.item<double>();
    count += n;
  }
  return count == 0 ? 0.0f : static_cast<float>(total / count);
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
  auto emit = [&](TrainEvent e) {
    *e.mutable_memory() = CurrentMemoryUsage(device);
    if (cb.on_event) cb.on_event(e);
  };

  LORAD_ASSIGN_OR_RETURN(std::vector<model::TokenSequence> train,
                         LoadSequences(job.training_path, model, hp));
  std::vector<model::TokenSequence> eval;
  if (!job.validation_path.empty()) {
    LORAD_ASSIGN_OR_RETURN(eval, LoadSequences(job.validation_path, model, hp));
  } else {
    model::SplitValidation(&train, &eval, hp.validation_split(), hp.seed());
  }
  if (train.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        job.training_path, ": no example has a token to learn after ",
        "tokenizing to max_seq_len ", hp.max_seq_len()));
  }
  const int32_t pad_id =
      static_cast<int32_t>(model.config().pad_token_id >= 0
                               ? model.config().pad_token_id
                               : (model.config().eos_token_ids.empty()
                                      ? 0
                                      : model.config().eos_token_ids[0]));

  const int64_t n = static_cast<int64_t>(train.size());
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
  std::unique_ptr<torch::optim::Optimizer> optimizer_owner =
      MakeOptimizer(hp, adapter.Parameters());
  torch::optim::Optimizer& optimizer = *optimizer_owner;

  torch::manual_seed(hp.seed());
  LORAD_RETURN_IF_ERROR(MakeDirs(job.job_dir));
  CheckpointState state;
  auto resumed = LoadCheckpoint(job.job_dir, adapter, optimizer);
  if (resumed.ok()) {
    state = resumed->state;
    for (const std::string& why : resumed->skipped) {
      TrainEvent e;
      e.set_log(absl::StrCat("skipped a checkpoint: ", why));
      emit(e);
    }
  } else if (!absl::IsNotFound(resumed.status())) {
    return resumed.status();
  }
  if (Paged(hp)) {
    LORAD_ASSIGN_OR_RETURN(PagedState paged, PageOptimizerState(optimizer));
    TrainEvent e;
    e.set_log(paged.note);
    emit(e);
  }

  model::TrainingShape shape;
  shape.rank = hp.rank();
  shape.target_modules = lora.target_modules;
  shape.batch_size = hp.batch_size();
  int64_t longest = 0;
  for (const model::TokenSequence& s : train) {
    longest = std::max<int64_t>(longest, s.ids.size());
  }
  shape.seq_len = longest;
  shape.gradient_checkpointing = hp.gradient_checkpointing();
  shape.compute_bytes = model.dtype() == torch::kFloat32 ? 4 : 2;
  shape.optimizer_8bit = EightBit(hp);
  shape.optimizer_paged = Paged(hp);
  model::MemoryEstimateBytes est =
      model::EstimateTrainingMemory(model.config(), shape);
  {
    TrainEvent e;
    auto* s = e.mutable_started();
    s->set_total_steps(static_cast<int32_t>(total_steps));
    s->set_resumed_from_step(static_cast<int32_t>(state.step));
    s->set_base_bytes_per_param(model.QuantizedBytesPerParam());
    s->set_num_train_sequences(n);
    s->set_num_eval_sequences(static_cast<int64_t>(eval.size()));
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

  ForwardOptions train_options;
  train_options.adapter = &adapter;
  train_options.training = true;
  train_options.gradient_checkpointing = hp.gradient_checkpointing();
  const std::vector<torch::Tensor> params = adapter.Parameters();
  float last_loss = 0;
  const int64_t patience = hp.early_stopping_patience();
  if (patience > 0 && eval.empty()) {
    return absl::InvalidArgumentError(
        "early_stopping_patience needs validation data: the validation file "
        "or split gave no sequences");
  }
  bool stop_early = false;
  // Evaluates; with early stopping, writes the adapter when the eval loss
  // is the lowest so far and decides whether patience ran out.
  auto eval_and_emit = [&](int64_t step) -> absl::Status {
    if (eval.empty()) return absl::OkStatus();
    LORAD_ASSIGN_OR_RETURN(
        float loss, Evaluate(model, adapter, eval, hp.batch_size(), pad_id,
                             cb.device_turns));
    TrainEvent e;
    e.mutable_eval()->set_step(static_cast<int32_t>(step));
    e.mutable_eval()->set_eval_loss(loss);
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
          (void)SaveCheckpoint(job.job_dir, adapter, optimizer, state);
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
      DeviceTurn turn(cb.device_turns, DeviceTurn::Kind::kTraining);
      Batch batch = MakeBatch(train, pick, pad_id, device);
      auto [loss, count] = LossSum(model, batch, train_options);
      torch::Tensor mean = loss / std::max<int64_t>(1, count);
      (mean / static_cast<double>(accum)).backward();
      loss_sum += mean.item<double>();
      step_tokens += batch.tokens;
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
      LORAD_RETURN_IF_ERROR(
          SaveCheckpoint(job.job_dir, adapter, optimizer, state));
      saved_step = state.step;
      TrainEvent c;
      c.set_checkpoint_step(static_cast<int32_t>(state.step));
      emit(c);
    }
  }
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
