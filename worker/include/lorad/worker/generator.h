// Text generation: request validation and prompt building (text or chat
// messages), the per-request decoding state (greedy or sampled with
// temperature, top-k, top-p, repetition penalty and a seed; stop strings,
// end-of-sequence tokens, max new tokens; streaming UTF-8-safe text and
// usage), and a one-request generator. The engine batches many DecodeStates.
#ifndef LORAD_WORKER_GENERATOR_H_
#define LORAD_WORKER_GENERATOR_H_

#include <ATen/core/Generator.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lorad/internal/worker/v1/worker.pb.h"
#include "lorad/model/chat_template.h"
#include "lorad/worker/llama_model.h"

namespace lorad::worker {

struct PreparedRequest {
  lorad::worker::v1::Sampling request;
  std::vector<int32_t> prompt;  // the ids transformers would feed the model
  int64_t max_new_tokens = 64;
  // generation_config.json's EOS ids (else config.json's) and the chat
  // template's end of turn.
  std::vector<int64_t> stop_token_ids;
};

// Validates sampling settings (InvalidArgument naming the field), renders
// `messages` with `chat` when given, tokenizes, and checks the prompt plus
// max_new_tokens fit the model's context.
absl::StatusOr<PreparedRequest> PrepareRequest(
    const LlamaModel& model, const model::ChatTemplate& chat,
    const lorad::worker::v1::Sampling& request);

// One request's decoding: fed the logits of its last position each step,
// picks the next token and says what to stream. Not thread-safe; the
// engine owns each one from a single thread.
class DecodeState {
 public:
  using Clock = std::chrono::steady_clock;
  DecodeState(const LlamaModel& model, PreparedRequest prepared,
              Clock::time_point start);

  struct Step {
    int64_t token = -1;  // the token to feed next (when !done)
    bool has_chunk = false;
    lorad::worker::v1::GenerateChunk chunk;  // new text, when has_chunk
    bool done = false;
  };
  // `logits`: fp32 [vocab] on any device.
  Step Next(const torch::Tensor& logits);

  // The last message: finish_reason and usage.
  lorad::worker::v1::GenerateChunk Final() const;

  const PreparedRequest& prepared() const { return prepared_; }
  int64_t generated() const { return static_cast<int64_t>(generated_.size()); }

 private:
  const LlamaModel& model_;
  PreparedRequest prepared_;
  Clock::time_point start_;
  at::Generator gen_;
  std::vector<int32_t> generated_;
  model::StreamDecoder decoder_;  // text of generated_, as it becomes final
  std::string text_;              // all text decoded so far
  size_t sent_ = 0;               // text_[0, sent_) went to the client
  std::string finish_ = "length";
  float ttft_ = 0;
};

// Generates for one request alone (no batching), calling `on_chunk` for
// each piece of new text; the last call carries finish_reason and usage.
// `on_chunk` returning false stops generation (Cancelled). InvalidArgument
// for bad settings (named).
absl::Status Generate(
    const LlamaModel& model, const AdapterSet* adapter,
    const lorad::worker::v1::Sampling& request,
    const std::function<bool(const lorad::worker::v1::GenerateChunk&)>&
        on_chunk);

}  // namespace lorad::worker

#endif  // LORAD_WORKER_GENERATOR_H_
