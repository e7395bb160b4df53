#include "lorad/worker/engine.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "lorad/worker/intra_op_threads.h"

namespace lorad::worker {

GenerationStream::Event GenerationStream::Next(
    lorad::worker::v1::GenerateChunk* out, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || finished_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (!queue_.empty()) {
    *out = std::move(queue_.front());
    queue_.pop_front();
    return Event::kMessage;
  }
  return finished_ ? Event::kEnd : Event::kTimeout;
}

void GenerationStream::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
}

bool GenerationStream::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

absl::Status GenerationStream::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

void GenerationStream::SetListener(std::function<void()> listener) {
  absl::MutexLock lock(&mu_);
  listener_ = std::move(listener);
}

void GenerationStream::Push(lorad::worker::v1::GenerateChunk message) {
  std::function<void()> listener;
  {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(message));
    listener = listener_;
  }
  if (listener) listener();
}

void GenerationStream::Finish(absl::Status status) {
  std::function<void()> listener;
  {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    finished_ = true;
    status_ = std::move(status);
    listener = listener_;
  }
  if (listener) listener();
}

struct Engine::Row {
  std::shared_ptr<GenerationStream> stream;
  std::shared_ptr<const AdapterSet> adapter;
  std::unique_ptr<DecodeState> state;
  KvCache cache;
  int64_t next = -1;
};

Engine::Engine(const LlamaModel* model, EngineOptions options)
    : model_(model), options_(std::move(options)) {
  thread_ = std::thread([this] { Loop(); });
}

Engine::~Engine() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

absl::StatusOr<std::shared_ptr<GenerationStream>> Engine::Submit(
    const lorad::worker::v1::Sampling& request,
    std::shared_ptr<const AdapterSet> adapter) {
  const auto start = DecodeState::Clock::now();
  absl::StatusOr<PreparedRequest> prepared;
  try {
    prepared = PrepareRequest(*model_, model_->chat_template(), request,
                              &options_.make_constraint);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("preparing the request failed: ",
                                            e.what_without_backtrace()));
  }
  if (!prepared.ok()) return prepared.status();
  auto row = std::make_unique<Row>();
  row->stream = std::make_shared<GenerationStream>();
  row->adapter = std::move(adapter);
  row->state =
      std::make_unique<DecodeState>(*model_, *std::move(prepared), start);
  std::shared_ptr<GenerationStream> stream = row->stream;
  absl::MutexLock lock(&mu_);
  if (stop_) return absl::UnavailableError("the engine is shutting down");
  if (static_cast<int>(queue_.size()) >= options_.max_queued) {
    return absl::ResourceExhaustedError(absl::StrCat(
        options_.max_queued, " generate requests are already waiting"));
  }
  queue_.push_back(std::move(row));
  return stream;
}

EngineStats Engine::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void Engine::Loop() {
  // Every thread, not the count a training job's thread set last
  // (LibTorch starts a thread with the count set most recently anywhere).
  ScopedIntraOpThreads threads(MaxIntraOpThreads());
  for (;;) {
    std::vector<std::unique_ptr<Row>> joining;
    {
      absl::MutexLock lock(&mu_);
      if (rows_.empty() && queue_.empty()) {
        if (options_.turns) options_.turns->SetInferenceDemand(false);
        auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stop_ || !queue_.empty();
        };
        mu_.Await(absl::Condition(&wake));
      }
      if (stop_) break;
      while (!queue_.empty() &&
             static_cast<int>(rows_.size() + joining.size()) <
                 options_.max_batch) {
        joining.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (options_.turns) options_.turns->SetInferenceDemand(true);
    Turn(joining);
  }
  if (options_.turns) options_.turns->SetInferenceDemand(false);
  absl::MutexLock lock(&mu_);
  for (auto& r : rows_) r->stream->Finish(absl::UnavailableError("shutdown"));
  for (auto& r : queue_) r->stream->Finish(absl::UnavailableError("shutdown"));
  rows_.clear();
  queue_.clear();
}

void Engine::Turn(std::vector<std::unique_ptr<Row>>& joining) {
  DeviceTurn turn(options_.turns, DeviceTurn::Kind::kInference);
  auto drop_cancelled = [](std::vector<std::unique_ptr<Row>>& rows) {
    std::erase_if(rows, [](const std::unique_ptr<Row>& r) {
      if (!r->stream->cancelled()) return false;
      r->stream->Finish(absl::CancelledError("request cancelled"));
      return true;
    });
  };
  drop_cancelled(rows_);
  drop_cancelled(joining);
  try {
    if (!joining.empty()) Prefill(joining);
    if (!rows_.empty()) Decode();
  } catch (const std::exception& e) {
    const c10::Error* ce = dynamic_cast<const c10::Error*>(&e);
    absl::Status failed = absl::InternalError(
        absl::StrCat("generation failed in LibTorch: ",
                     ce ? ce->what_without_backtrace() : e.what()));
    for (auto& r : joining) {
      if (r) r->stream->Finish(failed);
    }
    for (auto& r : rows_) {
      if (r) r->stream->Finish(failed);
    }
    rows_.clear();
  }
  if (rows_.empty()) {
    plan_key_.clear();
    plan_ = BatchedLora();
  }
}

bool Engine::Advance(Row& row, const torch::Tensor& logits) {
  DecodeState::Step step;
  try {
    step = row.state->Next(logits);
  } catch (const std::exception& e) {
    // Sampling failed for this row alone: it ends with the error, the
    // rest of the batch goes on.
    const c10::Error* ce = dynamic_cast<const c10::Error*>(&e);
    row.stream->Finish(absl::InternalError(
        absl::StrCat("sampling failed in LibTorch: ",
                     ce ? ce->what_without_backtrace() : e.what())));
    return false;
  }
  if (step.has_chunk) row.stream->Push(std::move(step.chunk));
  if (!step.done) {
    row.next = step.token;
    return true;
  }
  row.stream->Push(row.state->Final());
  row.stream->Finish(absl::OkStatus());
  return false;
}

void Engine::Prefill(std::vector<std::unique_ptr<Row>>& joining) {
  std::vector<int64_t> ids;
  std::vector<LoraSegment> segments;
  RaggedBatch batch;
  bool any_adapter = false;
  for (auto& r : joining) {
    const PreparedRequest& p = r->state->prepared();
    const int64_t n = static_cast<int64_t>(p.prompt.size());
    r->cache = model_->ReserveCache(n + p.max_new_tokens);
    segments.push_back({r->adapter.get(), static_cast<int64_t>(ids.size()), n});
    ids.insert(ids.end(), p.prompt.begin(), p.prompt.end());
    batch.lengths.push_back(n);
    batch.caches.push_back(&r->cache);
    any_adapter |= r->adapter != nullptr;
  }
  batch.ids = torch::tensor(ids, torch::kLong);
  BatchedLora lora;
  if (any_adapter) {
    lora = BuildBatchedLora(segments, model_->config(), model_->device(),
                            model_->dtype());
    if (options_.lora_backend) lora.backend = options_.lora_backend;
    batch.lora = &lora;
  }
  torch::Tensor logits = model_->ForwardRagged(batch).to(torch::kCPU);
  int64_t generated = 0;
  for (size_t i = 0; i < joining.size(); ++i) {
    std::unique_ptr<Row> row = std::move(joining[i]);
    const int64_t before = row->state->generated();
    const bool alive = Advance(*row, logits[static_cast<int64_t>(i)]);
    generated += row->state->generated() - before;
    if (alive) rows_.push_back(std::move(row));
  }
  joining.clear();
  absl::MutexLock lock(&mu_);
  ++stats_.prefill_steps;
  stats_.tokens_generated += generated;
}

void Engine::Decode() {
  std::vector<std::shared_ptr<const AdapterSet>> key;
  bool any_adapter = false;
  for (auto& r : rows_) {
    key.push_back(r->adapter);
    any_adapter |= r->adapter != nullptr;
  }
  if (key != plan_key_) {
    plan_ = BatchedLora();
    if (any_adapter) {
      std::vector<LoraSegment> segments;
      for (size_t i = 0; i < rows_.size(); ++i) {
        segments.push_back(
            {rows_[i]->adapter.get(), static_cast<int64_t>(i), 1});
      }
      plan_ = BuildBatchedLora(segments, model_->config(), model_->device(),
                               model_->dtype());
      if (options_.lora_backend) plan_.backend = options_.lora_backend;
    }
    plan_key_ = std::move(key);
  }
  RaggedBatch batch;
  std::vector<int64_t> ids;
  for (auto& r : rows_) {
    ids.push_back(r->next);
    batch.lengths.push_back(1);
    batch.caches.push_back(&r->cache);
  }
  batch.ids = torch::tensor(ids, torch::kLong);
  batch.lora = any_adapter ? &plan_ : nullptr;
  torch::Tensor logits = model_->ForwardRagged(batch).to(torch::kCPU);
  const int64_t batch_rows = static_cast<int64_t>(rows_.size());
  int64_t generated = 0;
  std::vector<std::unique_ptr<Row>> alive;
  for (size_t i = 0; i < rows_.size(); ++i) {
    const int64_t before = rows_[i]->state->generated();
    const bool keep = Advance(*rows_[i], logits[static_cast<int64_t>(i)]);
    generated += rows_[i]->state->generated() - before;
    if (keep) alive.push_back(std::move(rows_[i]));
  }
  rows_ = std::move(alive);
  absl::MutexLock lock(&mu_);
  ++stats_.decode_steps;
  stats_.largest_batch = std::max(stats_.largest_batch, batch_rows);
  stats_.tokens_generated += generated;
}

}  // namespace lorad::worker
