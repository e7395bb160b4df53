#include "lorad/worker/generator.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>

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
    torch::Tensor cum = sorted.softmax(-1).cumsum(-1);
    torch::Tensor remove = (cum - sorted.softmax(-1)) > top_p;
    sorted = sorted.masked_fill(remove, -INFINITY);
    logits = torch::full_like(logits, -INFINITY).scatter(-1, idx, sorted);
  }
  return logits;
}

}  // namespace

absl::Status Generate(
    const LlamaModel& model, const AdapterSet* adapter,
    const lorad::v1::GenerateRequest& req,
    const std::function<bool(const lorad::v1::GenerateResponse&)>& on_chunk) {
  if (req.temperature() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("temperature must be >= 0, got ", req.temperature()));
  }
  if (req.top_p() < 0 || req.top_p() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_p must be in [0, 1], got ", req.top_p()));
  }
  if (req.top_k() < 0 || req.max_new_tokens() < 0 ||
      req.repetition_penalty() < 0) {
    return absl::InvalidArgumentError(
        "top_k, max_new_tokens and repetition_penalty must be >= 0");
  }
  const int64_t max_new = req.max_new_tokens() > 0 ? req.max_new_tokens() : 64;
  auto start = std::chrono::steady_clock::now();
  torch::NoGradGuard no_grad;
  const ModelConfig& c = model.config();
  std::vector<int32_t> prompt;
  if (c.bos_token_id >= 0)
    prompt.push_back(static_cast<int32_t>(c.bos_token_id));
  for (int32_t id : model.tokenizer().Encode(req.prompt()))
    prompt.push_back(id);
  if (static_cast<int64_t>(prompt.size()) + max_new >
      c.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt (", prompt.size(), " tokens) + max_new_tokens (", max_new,
        ") exceeds the model's context of ", c.max_position_embeddings));
  }
  auto gen = at::make_generator<at::CPUGeneratorImpl>(req.seed());
  KvCache cache;
  ForwardOptions options;
  options.adapter = adapter;
  options.cache = &cache;
  torch::Tensor input =
      torch::tensor(std::vector<int64_t>(prompt.begin(), prompt.end()),
                    torch::kLong)
          .unsqueeze(0);
  std::vector<int32_t> generated;
  std::string text_sent;
  std::string finish = "length";
  float ttft = 0;
  for (int64_t i = 0; i < max_new; ++i) {
    torch::Tensor logits = model.Forward(input, options)[0][-1].to(torch::kCPU);
    if (req.repetition_penalty() > 0 && req.repetition_penalty() != 1) {
      for (int32_t id : prompt) {
        float v = logits[id].item<float>();
        logits[id] =
            v > 0 ? v / req.repetition_penalty() : v * req.repetition_penalty();
      }
      for (int32_t id : generated) {
        float v = logits[id].item<float>();
        logits[id] =
            v > 0 ? v / req.repetition_penalty() : v * req.repetition_penalty();
      }
    }
    int64_t next;
    if (req.temperature() == 0) {
      next = logits.argmax().item<int64_t>();
    } else {
      torch::Tensor l =
          ApplyTopKTopP(logits / req.temperature(), req.top_k(), req.top_p());
      next = torch::multinomial(l.softmax(-1), 1, false, gen).item<int64_t>();
    }
    if (i == 0) {
      ttft =
          std::chrono::duration<float>(std::chrono::steady_clock::now() - start)
              .count();
    }
    if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), next) !=
        c.eos_token_ids.end()) {
      finish = "eos";
      break;
    }
    generated.push_back(static_cast<int32_t>(next));
    std::string text = model.tokenizer().Decode(generated, true);
    bool stopped = false;
    for (const std::string& stop : req.stop()) {
      if (stop.empty()) continue;
      size_t at = text.find(stop);
      if (at != std::string::npos) {
        text.resize(at);
        stopped = true;
      }
    }
    size_t ready = stopped ? text.size() : CompleteUtf8Prefix(text);
    if (ready > text_sent.size() &&
        text.compare(0, text_sent.size(), text_sent) == 0) {
      lorad::v1::GenerateResponse chunk;
      chunk.set_text(text.substr(text_sent.size(), ready - text_sent.size()));
      chunk.add_token_ids(static_cast<int32_t>(next));
      text_sent = text.substr(0, ready);
      if (!on_chunk(chunk)) return absl::CancelledError("client went away");
    }
    if (stopped) {
      finish = "stop";
      break;
    }
    input = torch::tensor({{next}}, torch::kLong);
  }
  lorad::v1::GenerateResponse last;
  last.set_finish_reason(finish);
  auto* usage = last.mutable_usage();
  usage->set_prompt_tokens(static_cast<int32_t>(prompt.size()));
  usage->set_completion_tokens(static_cast<int32_t>(generated.size()));
  usage->set_time_to_first_token_seconds(ttft);
  usage->set_total_seconds(
      std::chrono::duration<float>(std::chrono::steady_clock::now() - start)
          .count());
  on_chunk(last);
  return absl::OkStatus();
}

}  // namespace lorad::worker
