#include "lorad/worker/generator.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>
#include <utility>

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

// OpenAI's bounds for the penalties and top_logprobs.
constexpr float kMaxPenalty = 2;
constexpr int32_t kMaxTopLogprobs = 20;

absl::Status CheckOpenAiSettings(const lorad::worker::v1::Sampling& req) {
  for (auto [name, v] : {std::pair{"presence_penalty", req.presence_penalty()},
                         {"frequency_penalty", req.frequency_penalty()}}) {
    if (!std::isfinite(v) || v < -kMaxPenalty || v > kMaxPenalty) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " must be in [-2, 2], got ", v));
    }
  }
  if (req.top_logprobs() < 0 || req.top_logprobs() > kMaxTopLogprobs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "top_logprobs must be in [0, 20], got ", req.top_logprobs()));
  }
  if (req.top_logprobs() > 0 && !req.logprobs()) {
    return absl::InvalidArgumentError("top_logprobs needs logprobs");
  }
  return absl::OkStatus();
}

// The constraint for the request's response_format; nullptr for free text.
absl::StatusOr<std::unique_ptr<model::TokenConstraint>> MakeConstraint(
    const lorad::worker::v1::ResponseFormat& format,
    const ConstraintMaker* make_constraint) {
  const std::string& type = format.type();
  if (type.empty() || type == "text") return nullptr;
  if (type != "json_object" && type != "json_schema") {
    return absl::InvalidArgumentError(absl::StrCat(
        "response_format.type must be text, json_object or json_schema, got \"",
        type.substr(0, 64), "\""));
  }
  if (make_constraint == nullptr || !*make_constraint) {
    return absl::InvalidArgumentError(absl::StrCat(
        "response_format ", type, " is not supported by this worker"));
  }
  auto made = (*make_constraint)(format);
  if (made.ok() && *made == nullptr) {
    return absl::InternalError(
        absl::StrCat("the constraint maker returned no constraint for ", type));
  }
  return made;
}

}  // namespace

absl::StatusOr<PreparedRequest> PrepareRequest(
    const LlamaModel& model, const model::ChatTemplate& chat,
    const lorad::worker::v1::Sampling& req,
    const ConstraintMaker* make_constraint) {
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
  if (absl::Status s = CheckOpenAiSettings(req); !s.ok()) return s;
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
  auto constraint = MakeConstraint(req.response_format(), make_constraint);
  if (!constraint.ok()) return constraint.status();
  p.constraint = *std::move(constraint);
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
  model::TokenConstraint* constraint = prepared_.constraint.get();
  const bool openai_penalties =
      req.presence_penalty() != 0 || req.frequency_penalty() != 0;
  // Logits edited in place below must be this row's own copy.
  torch::Tensor logits =
      device_logits
          .to(torch::kCPU, torch::kFloat32, /*non_blocking=*/false,
              /*copy=*/openai_penalties || constraint != nullptr)
          .contiguous();
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
  const int64_t vocab = logits.size(-1);
  float* values = logits.data_ptr<float>();
  if (openai_penalties) {
    for (const auto [id, count] : counts_) {
      values[id] -= static_cast<float>(count) * req.frequency_penalty() +
                    req.presence_penalty();
    }
  }
  if (constraint != nullptr) {
    allowed_.assign(static_cast<size_t>(vocab), 1);
    constraint->Mask(prepared_.max_new_tokens - generated(), allowed_);
    bool any = false;
    for (int64_t j = 0; j < vocab; ++j) {
      if (allowed_[j] == 0) {
        values[j] = -INFINITY;
      } else {
        any = true;
      }
    }
    if (!any) {
      throw std::runtime_error(
          "the response_format constraint allows no next token");
    }
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
  bool complete = false;
  if (!eos) {
    const int32_t token = static_cast<int32_t>(step.token);
    if (constraint != nullptr) {
      if (absl::Status s = constraint->Accept(token); !s.ok()) {
        throw std::runtime_error(absl::StrCat(
            "the response_format constraint refused the token it allowed: ",
            s.message()));
      }
      complete = constraint->Complete();
    }
    if (req.logprobs()) {
      FillLogprobs(logits.log_softmax(-1), token, step.chunk.add_logprobs());
    }
    generated_.push_back(token);
    if (openai_penalties) ++counts_[token];
    step.chunk.add_token_ids(token);
    text_ += decoder_.Add(token);
  }
  step.done = eos || complete || generated() >= prepared_.max_new_tokens;
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
  if (stopped || complete) {
    finish_ = "stop";
    step.done = true;
  } else if (eos) {
    finish_ = "eos";
  }
  return step;
}

std::string DecodeState::TokenBytes(int32_t token) const {
  // The output is decoded apart from the prompt, so the first generated
  // token adds its first-token bytes (a SentencePiece word's space dropped).
  return model_.tokenizer()
      .TokenBytes(token, /*first=*/generated_.empty())
      .value_or("");
}

void DecodeState::FillLogprobs(const torch::Tensor& logprobs, int32_t token,
                               lorad::worker::v1::TokenLogprob* out) const {
  const float* lp = logprobs.data_ptr<float>();
  out->set_token_id(token);
  out->set_token(TokenBytes(token));
  out->set_logprob(lp[token]);
  const int64_t k =
      std::min<int64_t>(prepared_.request.top_logprobs(), logprobs.size(-1));
  if (k <= 0) return;
  auto [top, ids] = logprobs.topk(k);
  const float* top_lp = top.data_ptr<float>();
  const int64_t* top_ids = ids.data_ptr<int64_t>();
  for (int64_t i = 0; i < k; ++i) {
    // Tokens the constraint forbids cannot come: left out.
    if (!std::isfinite(top_lp[i])) break;
    auto* entry = out->add_top_logprobs();
    entry->set_token_id(static_cast<int32_t>(top_ids[i]));
    entry->set_token(TokenBytes(static_cast<int32_t>(top_ids[i])));
    entry->set_logprob(top_lp[i]);
  }
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
        on_chunk,
    const ConstraintMaker* make_constraint) {
  const auto start = DecodeState::Clock::now();
  auto prepared =
      PrepareRequest(model, model.chat_template(), req, make_constraint);
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
