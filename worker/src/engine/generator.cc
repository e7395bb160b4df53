#include "lorad/worker/generator.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"

namespace lorad::worker {
namespace {

// Bytes at the end of `text` that could be the start of one of `stops`:
// held back so that a stop string split across tokens never reaches the
// client in part.
size_t HeldForStops(
    const std::string& text,
    const google::protobuf::RepeatedPtrField<std::string>& stops) {
  size_t held = 0;
  for (const std::string& stop : stops) {
    if (stop.empty()) continue;
    for (size_t n = std::min(stop.size() - 1, text.size()); n > held; --n) {
      if (text.compare(text.size() - n, n, stop, 0, n) == 0) {
        held = n;
        break;
      }
    }
  }
  return held;
}

torch::Tensor ApplyTopKTopP(torch::Tensor logits, int64_t top_k, double top_p) {
  if (top_k > 0 && top_k < logits.size(-1)) {
    torch::Tensor kth = std::get<0>(logits.topk(top_k)).index({-1});
    logits = logits.masked_fill(logits < kth, -INFINITY);
  }
  if (top_p > 0 && top_p < 1) {
    auto [sorted, idx] = logits.sort(/*dim=*/-1, /*descending=*/true);
    torch::Tensor probs = sorted.softmax(-1);
    torch::Tensor remove = (probs.cumsum(-1) - probs) > top_p;
    sorted = sorted.masked_fill(remove, -INFINITY);
    logits = torch::full_like(logits, -INFINITY).scatter(-1, idx, sorted);
  }
  return logits;
}

}  // namespace

absl::StatusOr<PreparedRequest> PrepareRequest(
    const LlamaModel& model, const model::ChatTemplate& chat,
    const lorad::worker::v1::Sampling& req) {
  if (!std::isfinite(req.temperature()) || req.temperature() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "temperature must be a finite number >= 0, got ", req.temperature()));
  }
  if (!std::isfinite(req.top_p()) || req.top_p() < 0 || req.top_p() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_p must be in [0, 1], got ", req.top_p()));
  }
  if (!std::isfinite(req.repetition_penalty())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "repetition_penalty must be finite, got ", req.repetition_penalty()));
  }
  if (req.top_k() < 0 || req.max_new_tokens() < 0 ||
      req.repetition_penalty() < 0) {
    return absl::InvalidArgumentError(
        "top_k, max_new_tokens and repetition_penalty must be >= 0");
  }
  if (!req.prompt().empty() && req.messages_size() > 0) {
    return absl::InvalidArgumentError("give prompt or messages, not both");
  }
  PreparedRequest p;
  p.request = req;
  p.max_new_tokens = req.max_new_tokens() > 0 ? req.max_new_tokens() : 64;
  const model::ModelConfig& c = model.config();
  const model::Tokenizer& tokenizer = model.tokenizer();
  // The ids transformers would feed the model: tokenizer(prompt) for text
  // (the tokenizer's post-processor decides BOS); for messages, the
  // rendered template tokenized without special tokens, as
  // apply_chat_template(tokenize=True) does (the template writes them).
  if (req.messages_size() > 0) {
    std::vector<model::ChatTurn> turns;
    for (const auto& m : req.messages())
      turns.push_back({m.role(), m.content()});
    auto rendered = model::RenderChat(chat, turns);
    if (!rendered.ok()) return rendered.status();
    p.prompt = chat.jinja != nullptr
                   ? tokenizer.Encode(*rendered)
                   : tokenizer.EncodeWithSpecialTokens(*rendered);
    if (!chat.end_of_turn.empty()) {
      if (auto id = tokenizer.TokenToId(chat.end_of_turn)) {
        p.stop_token_ids.push_back(*id);
      }
    }
  } else {
    p.prompt = tokenizer.EncodeWithSpecialTokens(req.prompt());
  }
  if (p.prompt.empty()) {
    return absl::InvalidArgumentError(
        "the prompt is empty and the tokenizer adds no special token to "
        "start from");
  }
  for (int64_t id : c.stop_token_ids) p.stop_token_ids.push_back(id);
  if (static_cast<int64_t>(p.prompt.size()) + p.max_new_tokens >
      c.max_position_embeddings) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt (", p.prompt.size(), " tokens) + max_new_tokens (",
                     p.max_new_tokens, ") exceeds the model's context of ",
                     c.max_position_embeddings));
  }
  return p;
}

DecodeState::DecodeState(const LlamaModel& model, PreparedRequest prepared,
                         Clock::time_point start)
    : model_(model),
      prepared_(std::move(prepared)),
      start_(start),
      gen_(at::make_generator<at::CPUGeneratorImpl>(prepared_.request.seed())),
      decoder_(model.tokenizer(), /*skip_special_tokens=*/true) {}

DecodeState::Step DecodeState::Next(const torch::Tensor& device_logits) {
  const lorad::worker::v1::Sampling& req = prepared_.request;
  torch::Tensor logits = device_logits.to(torch::kCPU, torch::kFloat32);
  const float penalty = req.repetition_penalty();
  if (penalty > 0 && penalty != 1) {
    std::set<int64_t> seen(prepared_.prompt.begin(), prepared_.prompt.end());
    seen.insert(generated_.begin(), generated_.end());
    torch::Tensor idx = torch::tensor(
        std::vector<int64_t>(seen.begin(), seen.end()), torch::kLong);
    torch::Tensor v = logits.index_select(0, idx);
    logits = logits.index_copy(0, idx,
                               torch::where(v > 0, v / penalty, v * penalty));
  }
  Step step;
  // Below kGreedyTemperature, dividing by the temperature overflows; a
  // temperature that small is greedy anyway. Probabilities that still come
  // out non-finite (huge logits after a tiny repetition penalty) fall back
  // to greedy too, rather than failing the row.
  constexpr float kGreedyTemperature = 1e-5f;
  bool greedy = req.temperature() < kGreedyTemperature;
  torch::Tensor probs;
  if (!greedy) {
    probs = ApplyTopKTopP(logits / req.temperature(), req.top_k(), req.top_p())
                .softmax(-1);
    greedy = !torch::isfinite(probs).all().item<bool>() ||
             !(probs.sum().item<float>() > 0);
  }
  if (greedy) {
    step.token = logits.nan_to_num(-INFINITY).argmax().item<int64_t>();
  } else {
    step.token = torch::multinomial(probs, 1, false, gen_).item<int64_t>();
  }
  if (generated_.empty()) {
    ttft_ = std::chrono::duration<float>(Clock::now() - start_).count();
  }
  const auto& stop_ids = prepared_.stop_token_ids;
  const bool eos =
      std::find(stop_ids.begin(), stop_ids.end(), step.token) != stop_ids.end();
  if (!eos) {
    generated_.push_back(static_cast<int32_t>(step.token));
    step.chunk.add_token_ids(static_cast<int32_t>(step.token));
    text_ += decoder_.Add(static_cast<int32_t>(step.token));
  }
  step.done = eos || generated() >= prepared_.max_new_tokens;
  // At the end, a character cut short decodes as U+FFFD (as HF does).
  if (step.done) text_ += decoder_.Finish();
  size_t ready = text_.size();
  bool stopped = false;
  // Only text not yet searched (plus a stop's length of overlap) can hold a
  // new match.
  for (const std::string& stop : req.stop()) {
    if (stop.empty()) continue;
    const size_t from = sent_ > stop.size() ? sent_ - stop.size() : 0;
    const size_t at = text_.find(stop, from);
    if (at != std::string::npos && at < ready) {
      ready = at;
      stopped = true;
    }
  }
  if (!stopped && !step.done) ready -= HeldForStops(text_, req.stop());
  if (ready > sent_) {
    step.chunk.set_text(text_.substr(sent_, ready - sent_));
    sent_ = ready;
  }
  step.has_chunk = !eos || !step.chunk.text().empty();
  if (stopped) {
    finish_ = "stop";
    step.done = true;
  } else if (eos) {
    finish_ = "eos";
  }
  return step;
}

lorad::worker::v1::GenerateChunk DecodeState::Final() const {
  lorad::worker::v1::GenerateChunk last;
  last.set_finish_reason(finish_);
  auto* usage = last.mutable_usage();
  usage->set_prompt_tokens(static_cast<int32_t>(prepared_.prompt.size()));
  usage->set_completion_tokens(static_cast<int32_t>(generated_.size()));
  usage->set_time_to_first_token_seconds(ttft_);
  usage->set_total_seconds(
      std::chrono::duration<float>(Clock::now() - start_).count());
  return last;
}

absl::Status Generate(
    const LlamaModel& model, const AdapterSet* adapter,
    const lorad::worker::v1::Sampling& req,
    const std::function<bool(const lorad::worker::v1::GenerateChunk&)>&
        on_chunk) {
  const auto start = DecodeState::Clock::now();
  auto prepared = PrepareRequest(
      model, model::ChatTemplate::FromModelDir(model.dir()), req);
  if (!prepared.ok()) return prepared.status();
  const int64_t capacity =
      static_cast<int64_t>(prepared->prompt.size()) + prepared->max_new_tokens;
  DecodeState state(model, *std::move(prepared), start);
  KvCache cache = model.ReserveCache(capacity);
  const std::vector<int32_t>& prompt = state.prepared().prompt;
  std::vector<int64_t> ids(prompt.begin(), prompt.end());
  for (;;) {
    const int64_t n = static_cast<int64_t>(ids.size());
    BatchedLora lora = BuildBatchedLora({{adapter, 0, n}}, model.config(),
                                        model.device(), model.dtype());
    RaggedBatch batch;
    batch.ids = torch::tensor(ids, torch::kLong);
    batch.lengths = {n};
    batch.caches = {&cache};
    batch.lora = adapter != nullptr ? &lora : nullptr;
    DecodeState::Step step = state.Next(model.ForwardRagged(batch)[0]);
    if (step.has_chunk && !on_chunk(step.chunk)) {
      return absl::CancelledError("client went away");
    }
    if (step.done) break;
    ids = {step.token};
  }
  on_chunk(state.Final());
  return absl::OkStatus();
}

}  // namespace lorad::worker
