// Text generation: request validation and prompt building (text or chat
// messages), the per-request decoding state (greedy or sampled with
// temperature, top-k, top-p, repetition, presence and frequency penalties
// and a seed; an optional TokenConstraint (response_format); stop strings,
// end-of-sequence tokens, max new tokens; streaming UTF-8-safe text,
// logprobs and usage), and a one-request generator. The engine batches many
// DecodeStates.
#ifndef LORAD_WORKER_GENERATOR_H_
#define LORAD_WORKER_GENERATOR_H_

#include <ATen/core/Generator.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lorad/internal/worker/v1/worker.pb.h"
#include "lorad/model/chat_template.h"
#include "lorad/model/token_constraint.h"
#include "lorad/worker/llama_model.h"

namespace lorad::worker {

// Builds the constraint for a response_format of type "json_object" or
// "json_schema" (InvalidArgument naming what is wrong with the format).
using ConstraintMaker =
    std::function<absl::StatusOr<std::unique_ptr<model::TokenConstraint>>(
        const lorad::worker::v1::ResponseFormat&)>;

// Move-only (it owns the constraint).
struct PreparedRequest {
  lorad::worker::v1::Sampling request;
  std::vector<int32_t> prompt;  // the ids transformers would feed the model
  int64_t max_new_tokens = 64;
  // generation_config.json's EOS ids (else config.json's) and the chat
  // template's end of turn.
  std::vector<int64_t> stop_token_ids;
  // The response_format's rule; nullptr for free text.
  std::unique_ptr<model::TokenConstraint> constraint;
};

// Validates sampling settings (InvalidArgument naming the field), renders
// `messages` with `chat` when given, tokenizes, checks the prompt plus
// max_new_tokens fit the model's context, and builds the response_format's
// constraint with `make_constraint` (nullptr or empty: a json_object or
// json_schema format is InvalidArgument, "not supported by this worker").
absl::StatusOr<PreparedRequest> PrepareRequest(
    const LlamaModel& model, const model::ChatTemplate& chat,
    const lorad::worker::v1::Sampling& request,
    const ConstraintMaker* make_constraint = nullptr);

// One request's decoding: fed the logits of its last position each step,
// picks the next token and says what to stream. Not thread-safe; the
// engine owns each one from a single thread.
//
// Each step, on fp32 logits: the repetition penalty (HF's, over prompt and
// output), then presence and frequency penalties (OpenAI's, over the output:
// logit[j] -= count[j] * frequency + (count[j] > 0) * presence), then the
// constraint's mask (forbidden ids get -inf). Logprobs are log_softmax of
// these logits; greedy takes their argmax, sampling applies temperature,
// top-k and top-p to them. The chosen token goes to the constraint's
// Accept(); once it is Complete() the generation ends with finish_reason
// "stop". A request without penalties or constraint pays for none of it.
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
  // Fills `out` (a TokenLogprob) for `token` from `logprobs` (log_softmax
  // of the step's final logits).
  void FillLogprobs(const torch::Tensor& logprobs, int32_t token,
                    lorad::worker::v1::TokenLogprob* out) const;
  // The bytes `token` adds to the output: raw even when it ends inside a
  // UTF-8 character (the API's "bytes"); "" for special tokens.
  std::string TokenBytes(int32_t token) const;

  // Times each id was generated (kept only with presence/frequency).
  std::unordered_map<int32_t, int32_t> counts_;
  std::vector<uint8_t> allowed_;  // the constraint's mask, reused each step
  model::StreamDecoder decoder_;  // text of generated_, as it becomes final
  std::string text_;              // all text decoded so far
  size_t sent_ = 0;               // text_[0, sent_) went to the client
  std::string finish_ = "length";
  float ttft_ = 0;
};

// Generates for one request alone (no batching), calling `on_chunk` for
// each piece of new text; the last call carries finish_reason and usage.
// `on_chunk` returning false stops generation (Cancelled). InvalidArgument
// for bad settings (named). `make_constraint` as in PrepareRequest.
absl::Status Generate(
    const LlamaModel& model, const AdapterSet* adapter,
    const lorad::worker::v1::Sampling& request,
    const std::function<bool(const lorad::worker::v1::GenerateChunk&)>&
        on_chunk,
    const ConstraintMaker* make_constraint = nullptr);

}  // namespace lorad::worker

#endif  // LORAD_WORKER_GENERATOR_H_
