#include "lorad/worker/generator.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"

namespace lorad::worker {
namespace {

// Length of the longest prefix of `s` that ends on a UTF-8 boundary.
size_t CompleteUtf8Prefix(const std::string& s) {
  size_t end = s.size();
  size_t i = end;
  int back = 0;
  while (i > 0 && back < 4) {
    unsigned char c = static_cast<unsigned char>(s[i - 1]);
    if ((c & 0xC0) != 0x80) {
      int need = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
      return (end - (i - 1) >= static_cast<size_t>(need)) ? end : i - 1;
    }
    --i;
    ++back;
  }
  return end;
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
  std::string text = req.prompt();
  if (req.messages_size() > 0) {
    std::vector<model::ChatTurn> turns;
    for (const auto& m : req.messages())
      turns.push_back({m.role(), m.content()});
    auto rendered = model::RenderChat(chat, turns);
    if (!rendered.ok()) return rendered.status();
    text = *rendered;
    if (!chat.end_of_turn.empty()) {
      if (auto id = model.tokenizer().TokenToId(chat.end_of_turn)) {
        p.stop_token_ids.push_back(*id);
      }
    }
  }
  if (c.bos_token_id >= 0)
    p.prompt.push_back(static_cast<int32_t>(c.bos_token_id));
  for (int32_t id : model.tokenizer().Encode(text)) p.prompt.push_back(id);
  for (int64_t id : c.eos_token_ids) p.stop_token_ids.push_back(id);
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
      gen_(at::make_generator<at::CPUGeneratorImpl>(prepared_.request.seed())) {
}

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
  const auto& stops = prepared_.stop_token_ids;
  if (std::find(stops.begin(), stops.end(), step.token) != stops.end()) {
    finish_ = "eos";
    step.done = true;
    return step;
  }
  generated_.push_back(static_cast<int32_t>(step.token));
  std::string text = model_.tokenizer().Decode(generated_, true);
  bool stopped = false;
  for (const std::string& stop : req.stop()) {
    if (stop.empty()) continue;
    size_t at = text.find(stop);
    if (at != std::string::npos) {
      text.resize(at);
      stopped = true;
    }
  }
  // Every token is reported; text goes out once it is complete UTF-8.
  step.has_chunk = true;
  step.chunk.add_token_ids(static_cast<int32_t>(step.token));
  size_t ready = stopped ? text.size() : CompleteUtf8Prefix(text);
  if (ready > text_sent_.size() &&
      text.compare(0, text_sent_.size(), text_sent_) == 0) {
    step.chunk.set_text(
        text.substr(text_sent_.size(), ready - text_sent_.size()));
    text_sent_ = text.substr(0, ready);
  }
  if (stopped) {
    finish_ = "stop";
    step.done = true;
  } else if (generated() >= prepared_.max_new_tokens) {
    step.done = true;
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
