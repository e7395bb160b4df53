#include "worker_link/wire.h"

namespace lorad::server {

worker::v1::TrainConfig ToWorker(const v1::Hyperparameters& hp) {
  worker::v1::TrainConfig c;
  c.set_rank(hp.rank());
  c.set_alpha(hp.alpha());
  c.set_dropout(hp.dropout());
  for (const std::string& m : hp.target_modules()) c.add_target_modules(m);
  c.set_learning_rate(hp.learning_rate());
  c.set_epochs(hp.epochs());
  c.set_max_steps(hp.max_steps());
  c.set_batch_size(hp.batch_size());
  c.set_gradient_accumulation(hp.gradient_accumulation());
  c.set_max_grad_norm(hp.max_grad_norm());
  c.set_weight_decay(hp.weight_decay());
  c.set_warmup_steps(hp.warmup_steps());
  c.set_lr_scheduler(hp.lr_scheduler());
  c.set_max_seq_len(hp.max_seq_len());
  c.set_packing(hp.packing());
  c.set_gradient_checkpointing(hp.gradient_checkpointing());
  c.set_seed(hp.seed());
  c.set_eval_every(hp.eval_every());
  c.set_checkpoint_every(hp.checkpoint_every());
  c.set_validation_split(hp.validation_split());
  c.set_compute_dtype(hp.compute_dtype());
  c.set_train_on_prompt(hp.train_on_prompt());
  c.set_optimizer(hp.optimizer());
  c.set_early_stopping_patience(hp.early_stopping_patience());
  c.set_method(hp.method());
  c.set_dpo_beta(hp.dpo_beta());
  c.set_dpo_loss_type(hp.dpo_loss_type());
  c.set_quantization(hp.quantization());
  return c;
}

worker::v1::Sampling ToWorker(const v1::GenerateRequest& request) {
  worker::v1::Sampling s;
  s.set_prompt(request.prompt());
  s.set_max_new_tokens(request.max_new_tokens());
  s.set_temperature(request.temperature());
  s.set_top_k(request.top_k());
  s.set_top_p(request.top_p());
  s.set_seed(request.seed());
  for (const std::string& stop : request.stop()) s.add_stop(stop);
  s.set_repetition_penalty(request.repetition_penalty());
  for (const v1::ChatMessage& m : request.messages()) {
    worker::v1::ChatMessage* out = s.add_messages();
    out->set_role(m.role());
    out->set_content(m.content());
  }
  s.set_presence_penalty(request.presence_penalty());
  s.set_frequency_penalty(request.frequency_penalty());
  s.set_logprobs(request.logprobs());
  s.set_top_logprobs(request.top_logprobs());
  if (request.has_response_format()) {
    s.mutable_response_format()->set_type(request.response_format().type());
    s.mutable_response_format()->set_json_schema(
        request.response_format().json_schema());
  }
  return s;
}

v1::GenerateResponse ToPublic(const worker::v1::GenerateChunk& chunk) {
  v1::GenerateResponse r;
  r.set_text(chunk.text());
  r.mutable_token_ids()->CopyFrom(chunk.token_ids());
  r.set_finish_reason(chunk.finish_reason());
  if (chunk.has_usage()) {
    v1::GenerateUsage* u = r.mutable_usage();
    u->set_prompt_tokens(chunk.usage().prompt_tokens());
    u->set_completion_tokens(chunk.usage().completion_tokens());
    u->set_time_to_first_token_seconds(
        chunk.usage().time_to_first_token_seconds());
    u->set_total_seconds(chunk.usage().total_seconds());
  }
  for (const worker::v1::TokenLogprob& in : chunk.logprobs()) {
    v1::TokenLogprob* out = r.add_logprobs();
    out->set_token_id(in.token_id());
    out->set_token(in.token());
    out->set_logprob(in.logprob());
    for (const worker::v1::TopLogprob& top : in.top_logprobs()) {
      v1::TopLogprob* t = out->add_top_logprobs();
      t->set_token_id(top.token_id());
      t->set_token(top.token());
      t->set_logprob(top.logprob());
    }
  }
  return r;
}

v1::MemoryUsage ToPublic(const worker::v1::MemoryUsage& memory) {
  v1::MemoryUsage m;
  m.set_device(memory.device());
  m.set_used_bytes(memory.used_bytes());
  m.set_total_bytes(memory.total_bytes());
  m.set_peak_bytes(memory.peak_bytes());
  m.set_rss_bytes(memory.rss_bytes());
  m.set_allocator_allocated_bytes(memory.allocator_allocated_bytes());
  m.set_allocator_reserved_bytes(memory.allocator_reserved_bytes());
  m.set_allocator_peak_allocated_bytes(memory.allocator_peak_allocated_bytes());
  m.set_allocator_peak_reserved_bytes(memory.allocator_peak_reserved_bytes());
  return m;
}

v1::MemoryEstimate ToPublic(const worker::v1::MemoryEstimate& estimate) {
  v1::MemoryEstimate e;
  e.set_base_bytes(estimate.base_bytes());
  e.set_adapter_bytes(estimate.adapter_bytes());
  e.set_optimizer_bytes(estimate.optimizer_bytes());
  e.set_gradient_bytes(estimate.gradient_bytes());
  e.set_activation_bytes(estimate.activation_bytes());
  e.set_activation_bytes_no_checkpoint(
      estimate.activation_bytes_no_checkpoint());
  e.set_activation_bytes_checkpoint(estimate.activation_bytes_checkpoint());
  e.set_total_bytes(estimate.total_bytes());
  e.set_resident_bytes(estimate.resident_bytes());
  e.set_pageable_bytes(estimate.pageable_bytes());
  return e;
}

v1::DpoMetrics ToPublic(const worker::v1::DpoMetrics& dpo) {
  v1::DpoMetrics d;
  d.set_rewards_chosen(dpo.rewards_chosen());
  d.set_rewards_rejected(dpo.rewards_rejected());
  d.set_reward_margin(dpo.reward_margin());
  d.set_reward_accuracy(dpo.reward_accuracy());
  d.set_logps_chosen(dpo.logps_chosen());
  d.set_logps_rejected(dpo.logps_rejected());
  return d;
}

v1::TrainStep ToPublic(const worker::v1::TrainStep& step) {
  v1::TrainStep s;
  s.set_step(step.step());
  s.set_total_steps(step.total_steps());
  s.set_loss(step.loss());
  s.set_learning_rate(step.learning_rate());
  s.set_grad_norm(step.grad_norm());
  s.set_tokens_per_second(step.tokens_per_second());
  s.set_tokens_seen(step.tokens_seen());
  s.set_epoch(step.epoch());
  if (step.has_dpo()) *s.mutable_dpo() = ToPublic(step.dpo());
  return s;
}

v1::EvalResult ToPublic(const worker::v1::EvalResult& eval) {
  v1::EvalResult e;
  e.set_step(eval.step());
  e.set_eval_loss(eval.eval_loss());
  e.set_best(eval.best());
  if (eval.has_dpo()) *e.mutable_dpo() = ToPublic(eval.dpo());
  return e;
}

}  // namespace lorad::server
