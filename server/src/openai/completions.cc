// POST /v1/completions and /v1/chat/completions: one gRPC Generate call per
// choice (prompt x n), all joining the engine's continuous batch as gRPC
// clients' requests do. Streamed answers are server-sent events; each call
// reads its next message only once its last event reached the socket, so
// a slow client slows only its own stream and no thread waits for it.
#include <nlohmann/json.hpp>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "openai/api.h"
#include "openai/generation_request.h"
#include "openai/logprobs_json.h"

namespace lorad::server::openai {
namespace {

using nlohmann::json;

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string NewId(const char* prefix) {
  std::random_device rd;
  return absl::StrFormat("%s%08x%08x", prefix, rd(), rd());
}

// The API's finish reasons: the worker's "eos" and "stop" are both "stop".
std::string FinishReason(const std::string& worker) {
  return worker == "length" ? "length" : "stop";
}

class Completion;

class GenerateCall final
    : public grpc::ClientReadReactor<v1::GenerateResponse> {
 public:
  GenerateCall(std::shared_ptr<Completion> owner, int index,
               v1::GenerateRequest request)
      : owner_(std::move(owner)), index_(index), request_(std::move(request)) {}
  void Start(ApiContext& api, const http::Request& http_request);
  void Cancel() { context_.TryCancel(); }
  void ReadNext() { StartRead(&response_); }
  // Keeps OnDone (and so this object's deletion) back while an event of
  // this call is on its way to the client.
  void Hold() { AddHold(); }
  void Release() { RemoveHold(); }
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  std::shared_ptr<Completion> owner_;
  const int index_;
  grpc::ClientContext context_;
  v1::GenerateRequest request_;
  v1::GenerateResponse response_;
};

struct Choice {
  std::string text;
  std::string finish_reason;
  json logprobs = json::array();  // chat: content entries
  json completion_logprobs;       // completions: the legacy object
  int prompt_index = 0;
  bool role_sent = false;
  bool done = false;
  GenerateCall* call = nullptr;  // until done
};

class Completion : public std::enable_shared_from_this<Completion> {
 public:
  Completion(ApiContext& api, GenerationPlan plan,
             std::shared_ptr<http::Reply> reply)
      : api_(api),
        plan_(std::move(plan)),
        reply_(std::move(reply)),
        id_(NewId(plan_.chat ? "chatcmpl-" : "cmpl-")),
        created_(absl::ToUnixSeconds(absl::Now())) {}

  void Start(const http::Request& http_request) {
    const int choices = static_cast<int>(plan_.prompts.size()) * plan_.n;
    choices_.resize(static_cast<size_t>(choices));
    prompt_tokens_.assign(plan_.prompts.size(), 0);
    std::vector<GenerateCall*> calls;
    {
      absl::MutexLock lock(&mu_);
      for (int i = 0; i < choices; ++i) {
        Choice& c = choices_[static_cast<size_t>(i)];
        c.prompt_index = i / plan_.n;
        v1::GenerateRequest r =
            plan_.prompts[static_cast<size_t>(c.prompt_index)];
        r.set_seed(r.seed() + static_cast<uint64_t>(i % plan_.n));
        c.call = new GenerateCall(shared_from_this(), i, std::move(r));
        calls.push_back(c.call);
      }
    }
    reply_->OnClientGone([weak = weak_from_this()] {
      if (auto self = weak.lock()) self->CancelAll();
    });
    for (GenerateCall* call : calls) call->Start(api_, http_request);
  }

  // A message of choice `index`; `next` asks for the following one.
  void OnMessage(int index, const v1::GenerateResponse& m, GenerateCall* call) {
    std::string event;
    {
      absl::MutexLock lock(&mu_);
      Choice& c = choices_[static_cast<size_t>(index)];
      c.text += m.text();
      AppendLogprobs(c, m);
      if (!m.finish_reason().empty()) {
        c.finish_reason = FinishReason(m.finish_reason());
        prompt_tokens_[static_cast<size_t>(c.prompt_index)] =
            m.usage().prompt_tokens();
        completion_tokens_ += m.usage().completion_tokens();
      }
      if (plan_.stream) event = StreamEvent(c, index, m);
    }
    if (event.empty()) {
      call->ReadNext();
      return;
    }
    StartEventsOnce();
    call->Hold();
    reply_->Event(std::move(event), [call](bool ok) {
      if (ok) {
        call->ReadNext();
      } else {
        call->Cancel();  // the client left
      }
      call->Release();
    });
  }

  void OnCallDone(int index, const grpc::Status& status,
                  const grpc::ClientContext& context) {
    bool last = false;
    {
      absl::MutexLock lock(&mu_);
      Choice& c = choices_[static_cast<size_t>(index)];
      c.done = true;
      c.call = nullptr;
      if (!status.ok() && failure_.ok()) {
        failure_ = status;
        failure_response_ = FromGrpc(status, &context);
        // One choice failing fails the request: stop the others.
        for (Choice& other : choices_) {
          if (other.call != nullptr) other.call->Cancel();
        }
      }
      last = ++finished_ == static_cast<int>(choices_.size());
    }
    api_.CallEnded();
    if (last) Finish();
  }

  void CancelAll() {
    absl::MutexLock lock(&mu_);
    for (Choice& c : choices_) {
      if (c.call != nullptr) c.call->Cancel();
    }
  }

 private:
  void StartEventsOnce() {
    bool start = false;
    {
      absl::MutexLock lock(&mu_);
      start = !events_started_;
      events_started_ = true;
    }
    if (start) reply_->StartEvents();
  }

  // For the whole answer only: a streamed one sends them per event.
  void AppendLogprobs(Choice& c, const v1::GenerateResponse& m)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!plan_.logprobs || plan_.stream) return;
    if (plan_.chat) {
      for (json& entry : ChatLogprobs(m))
        c.logprobs.push_back(std::move(entry));
    } else {
      AppendCompletionLogprobs(m, c.text.size() - m.text().size(),
                               &c.completion_logprobs);
    }
  }

  json Header(const char* object) const {
    return {{"id", id_},
            {"object", object},
            {"created", created_},
            {"model", plan_.model},
            {"system_fingerprint", nullptr}};
  }

  json Usage() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int64_t prompt = 0;
    for (int t : prompt_tokens_) prompt += t;
    return {{"prompt_tokens", prompt},
            {"completion_tokens", completion_tokens_},
            {"total_tokens", prompt + completion_tokens_}};
  }

  // The SSE data for message `m` of choice `index`, or "" for nothing.
  std::string StreamEvent(Choice& c, int index, const v1::GenerateResponse& m)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const bool finished = !m.finish_reason().empty();
    const bool has_logprobs = plan_.logprobs && HasLogprobs(m);
    if (m.text().empty() && !finished && !has_logprobs && c.role_sent) {
      return "";
    }
    json choice = {{"index", index},
                   {"finish_reason", finished ? json(c.finish_reason) : json()},
                   {"logprobs", nullptr}};
    json chunk;
    if (plan_.chat) {
      chunk = Header("chat.completion.chunk");
      json delta = json::object();
      if (!c.role_sent) {
        delta["role"] = "assistant";
        c.role_sent = true;
      }
      if (!m.text().empty() || delta.contains("role")) {
        delta["content"] = m.text();
      }
      choice["delta"] = delta;
      if (has_logprobs) choice["logprobs"] = {{"content", ChatLogprobs(m)}};
    } else {
      chunk = Header("text_completion");
      c.role_sent = true;
      choice["text"] = m.text();
      if (has_logprobs) {
        json lp;
        AppendCompletionLogprobs(m, c.text.size() - m.text().size(), &lp);
        choice["logprobs"] = lp;
      }
    }
    chunk["choices"] = json::array({choice});
    if (plan_.include_usage) chunk["usage"] = nullptr;
    return Dump(chunk);
  }

  void Finish() {
    absl::MutexLock lock(&mu_);
    if (!failure_.ok()) {
      if (!events_started_) {
        reply_->Send(failure_response_);
      } else {
        reply_->Event(failure_response_.body);
        reply_->Event("[DONE]");
        reply_->EndEvents();
      }
      return;
    }
    if (plan_.stream) {
      if (!events_started_) {
        events_started_ = true;
        reply_->StartEvents();
      }
      if (plan_.include_usage) {
        json chunk =
            Header(plan_.chat ? "chat.completion.chunk" : "text_completion");
        chunk["choices"] = json::array();
        chunk["usage"] = Usage();
        reply_->Event(Dump(chunk));
      }
      reply_->Event("[DONE]");
      reply_->EndEvents();
      return;
    }
    json out = Header(plan_.chat ? "chat.completion" : "text_completion");
    json list = json::array();
    for (size_t i = 0; i < choices_.size(); ++i) {
      const Choice& c = choices_[i];
      json choice = {{"index", i},
                     {"finish_reason", c.finish_reason},
                     {"logprobs", nullptr}};
      if (plan_.chat) {
        choice["message"] = {
            {"role", "assistant"}, {"content", c.text}, {"refusal", nullptr}};
        if (plan_.logprobs) choice["logprobs"] = {{"content", c.logprobs}};
      } else {
        choice["text"] = c.text;
        if (plan_.logprobs) choice["logprobs"] = c.completion_logprobs;
      }
      list.push_back(std::move(choice));
    }
    out["choices"] = std::move(list);
    out["usage"] = Usage();
    reply_->Send(Json(200, Dump(out)));
  }

  ApiContext& api_;
  const GenerationPlan plan_;
  const std::shared_ptr<http::Reply> reply_;
  const std::string id_;
  const int64_t created_;
  absl::Mutex mu_;
  std::vector<Choice> choices_ ABSL_GUARDED_BY(mu_);
  std::vector<int> prompt_tokens_ ABSL_GUARDED_BY(mu_);
  int64_t completion_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  int finished_ ABSL_GUARDED_BY(mu_) = 0;
  bool events_started_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status failure_ ABSL_GUARDED_BY(mu_);
  http::Response failure_response_ ABSL_GUARDED_BY(mu_);
};

void GenerateCall::Start(ApiContext& api, const http::Request& http_request) {
  ApiContext::Authorize(http_request, &context_);
  api.CallStarted();
  api.inference().async()->Generate(&context_, &request_, this);
  StartRead(&response_);
  StartCall();
}

void GenerateCall::OnReadDone(bool ok) {
  if (!ok) return;  // OnDone follows
  owner_->OnMessage(index_, response_, this);
}

void GenerateCall::OnDone(const grpc::Status& status) {
  std::shared_ptr<Completion> owner = std::move(owner_);
  owner->OnCallDone(index_, status, context_);
  delete this;
}

}  // namespace

void HandleCompletions(ApiContext& api, const http::Request& request,
                       std::shared_ptr<http::Reply> reply, bool chat) {
  http::Response error;
  std::optional<json> body = ParseBody(request, &error);
  if (!body.has_value()) {
    reply->Send(std::move(error));
    return;
  }
  GenerationPlan plan;
  if (auto bad = ParseGeneration(*body, chat, api.options().base_model,
                                 api.options().max_choices, &plan)) {
    reply->Send(*std::move(bad));
    return;
  }
  auto completion =
      std::make_shared<Completion>(api, std::move(plan), std::move(reply));
  completion->Start(request);
}

}  // namespace lorad::server::openai
