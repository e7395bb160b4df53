#include "lorad/worker/training_group.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lorad/worker/device_memory.h"
#include "lorad/worker/intra_op_threads.h"

namespace lorad::worker {
namespace {

// Thrown past the forward: the pass's backward had begun, so some
// adapters may hold part of its gradients and a rerun alone would add them
// twice.
struct BackwardFailed {
  std::string what;
};

std::string ErrorText(const c10::Error& e) {
  return e.what_without_backtrace();
}

}  // namespace

MicroBatchResult RunMicroBatchAlone(const LlamaModel& model,
                                    const PreparedMicroBatch& batch,
                                    const AdapterSet& adapter,
                                    bool gradient_checkpointing,
                                    int64_t divisor) {
  ForwardOptions options;
  options.adapter = &adapter;
  options.training = batch.dropout;
  options.dropout_generator = batch.generator;
  options.gradient_checkpointing = gradient_checkpointing;
  options.hidden_out = true;
  torch::Tensor mean = batch.loss(model.Forward(batch.ids, options));
  (mean / static_cast<double>(divisor)).backward();
  MicroBatchResult result;
  result.loss = mean.item<double>();
  return result;
}

TrainingGroup::TrainingGroup(const LlamaModel* model, DeviceTurns* turns,
                             int64_t max_fused_bytes, int lanes)
    : model_(model),
      turns_(turns),
      max_fused_bytes_(max_fused_bytes != kDefaultMaxFusedBytes
                           ? max_fused_bytes
                       : model->device().is_cpu() ? kReturnedHostBlockBytes
                                                  : 0),
      lanes_(lanes != kDefaultLanes     ? std::max(lanes, 1)
             : model->device().is_cpu() ? MaxIntraOpThreads()
                                        : 1) {
  {
    absl::MutexLock lock(&lane_mu_);
    lane_work_.resize(static_cast<size_t>(lanes_ - 1));
  }
  for (size_t i = 0; i + 1 < static_cast<size_t>(lanes_); ++i) {
    lane_threads_.emplace_back([this, i] { LaneLoop(i); });
  }
  pass_thread_ = std::thread([this] { PassLoop(); });
}

TrainingGroup::~TrainingGroup() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  pass_thread_.join();
  {
    absl::MutexLock lock(&lane_mu_);
    lanes_stopping_ = true;
  }
  for (std::thread& t : lane_threads_) t.join();
}

TrainingGroup::Member::~Member() { group_->Leave(); }

std::unique_ptr<TrainingGroup::Member> TrainingGroup::Join(
    const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  ++members_;
  if (expected_joins_ > 0) --expected_joins_;
  return std::unique_ptr<Member>(new Member(this, job_id));
}

void TrainingGroup::ExpectJoins(int n) {
  absl::MutexLock lock(&mu_);
  expected_joins_ = n;
}

void TrainingGroup::Leave() {
  absl::MutexLock lock(&mu_);
  --members_;
}

int64_t TrainingGroup::passes() const {
  absl::MutexLock lock(&mu_);
  return passes_;
}

int64_t TrainingGroup::fused_passes() const {
  absl::MutexLock lock(&mu_);
  return fused_passes_;
}

int64_t TrainingGroup::widest_round() const {
  absl::MutexLock lock(&mu_);
  return widest_round_;
}

absl::StatusOr<MicroBatchResult> TrainingGroup::Run(
    Member* member, const PreparedMicroBatch& batch, const AdapterSet& adapter,
    bool gradient_checkpointing, int64_t divisor) {
  Slot slot;
  slot.member = member;
  slot.batch = &batch;
  slot.adapter = &adapter;
  slot.gradient_checkpointing = gradient_checkpointing;
  slot.divisor = divisor;
  absl::MutexLock lock(&mu_);
  waiting_.push_back(&slot);
  mu_.Await(absl::Condition(&slot.done));
  return std::move(slot.result);
}

void TrainingGroup::PassLoop() {
  absl::MutexLock lock(&mu_);
  // A pass starts once every member has handed in a micro-batch.
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || (!waiting_.empty() && expected_joins_ == 0 &&
                         static_cast<int>(waiting_.size()) >= members_);
  };
  while (true) {
    mu_.Await(absl::Condition(&ready));
    if (stopping_) return;
    std::vector<Slot*> pass;
    pass.swap(waiting_);
    mu_.Unlock();
    const Ran ran = RunPasses(pass);
    mu_.Lock();
    for (Slot* s : pass) s->done = true;
    passes_ += ran.passes;
    fused_passes_ += ran.fused;
    widest_round_ = std::max(widest_round_, ran.widest_round);
  }
}

std::vector<std::vector<TrainingGroup::Pass>> TrainingGroup::Plan(
    const std::vector<Slot*>& slots) const {
  // In the order of the jobs' ids, so that the same jobs share passes from
  // one step to the next (each job logs when its companions change).
  std::vector<Slot*> ordered = slots;
  std::sort(ordered.begin(), ordered.end(), [](const Slot* a, const Slot* b) {
    return a->member->job_id() < b->member->job_id();
  });
  // Dealt to the lanes in turn: at least two jobs in each.
  const size_t lanes = std::max<size_t>(
      1, std::min(static_cast<size_t>(lanes_), ordered.size() / 2));
  std::vector<std::vector<Slot*>> dealt(lanes);
  for (size_t i = 0; i < ordered.size(); ++i) {
    dealt[i % lanes].push_back(ordered[i]);
  }
  const model::ModelConfig& c = model_->config();
  const int64_t widest_bytes =
      std::max(c.hidden_size, c.intermediate_size) *
      static_cast<int64_t>(c10::elementSize(model_->dtype()));
  std::vector<std::vector<Pass>> plan(lanes);
  for (size_t l = 0; l < lanes; ++l) {
    Pass pass;
    for (Slot* s : dealt[l]) {
      const int64_t r = s->batch->ids.size(0), t = s->batch->ids.size(1);
      if (max_fused_bytes_ > 0 && !pass.slots.empty() &&
          (pass.rows + r) * std::max(pass.longest, t) * widest_bytes >
              max_fused_bytes_) {
        plan[l].push_back(std::move(pass));
        pass = Pass();
      }
      pass.slots.push_back(s);
      pass.rows += r;
      pass.longest = std::max(pass.longest, t);
    }
    if (!pass.slots.empty()) plan[l].push_back(std::move(pass));
  }
  return plan;
}

TrainingGroup::Ran TrainingGroup::RunPasses(const std::vector<Slot*>& slots) {
  const std::vector<std::vector<Pass>> plan = Plan(slots);
  size_t rounds = 0;
  for (const std::vector<Pass>& lane : plan) {
    rounds = std::max(rounds, lane.size());
  }
  Ran ran;
  for (size_t r = 0; r < rounds; ++r) {
    std::vector<Pass> round;
    for (const std::vector<Pass>& lane : plan) {
      if (r < lane.size()) round.push_back(lane[r]);
    }
    RunRound(round);
    for (const Pass& p : round) {
      ++ran.passes;
      if (p.slots.size() > 1) ++ran.fused;
    }
    ran.widest_round =
        std::max<int64_t>(ran.widest_round, static_cast<int64_t>(round.size()));
  }
  return ran;
}

void TrainingGroup::RunRound(const std::vector<Pass>& passes) {
  // Each pass's LibTorch threads: by its size, the cores shared among the
  // passes side by side (CUDA: unchanged).
  const model::ModelConfig& c = model_->config();
  const int share =
      std::max<int>(1, MaxIntraOpThreads() /
                           std::max<int>(1, static_cast<int>(passes.size())));
  auto threads_for = [&](const Pass& p) {
    if (!model_->device().is_cpu()) return 0;
    return std::min(IntraOpThreadsFor(c, p.rows * p.longest), share);
  };
  DeviceTurn turn(turns_, DeviceTurn::Kind::kTraining);
  {
    absl::MutexLock lock(&lane_mu_);
    for (size_t k = 1; k < passes.size(); ++k) {
      const Pass* pass = &passes[k];
      const int threads = threads_for(*pass);
      lane_work_[k - 1] = [this, pass, threads] {
        ScopedIntraOpThreads scoped(threads);
        RunPass(*pass);
      };
      ++lane_busy_;
    }
  }
  {
    ScopedIntraOpThreads scoped(threads_for(passes[0]));
    RunPass(passes[0]);
  }
  absl::MutexLock lock(&lane_mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lane_mu_) {
    return lane_busy_ == 0;
  };
  lane_mu_.Await(absl::Condition(&idle));
}

void TrainingGroup::LaneLoop(size_t i) {
  absl::MutexLock lock(&lane_mu_);
  auto has_work = [this, i]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lane_mu_) {
    return lanes_stopping_ || lane_work_[i] != nullptr;
  };
  while (true) {
    lane_mu_.Await(absl::Condition(&has_work));
    if (lane_work_[i] == nullptr) return;  // stopping, nothing handed in
    std::function<void()> work = std::move(lane_work_[i]);
    lane_work_[i] = nullptr;
    lane_mu_.Unlock();
    work();  // RunPass catches what LibTorch throws
    lane_mu_.Lock();
    --lane_busy_;
  }
}

void TrainingGroup::RunPass(const Pass& pass) {
  const std::vector<Slot*>& slots = pass.slots;
  auto alone = [&](Slot* s) {
    try {
      s->result = RunMicroBatchAlone(*model_, *s->batch, *s->adapter,
                                     s->gradient_checkpointing, s->divisor);
    } catch (const c10::Error& e) {
      s->result = absl::InternalError(
          absl::StrCat("training failed in LibTorch: ", ErrorText(e)));
    } catch (const std::exception& e) {
      s->result =
          absl::InternalError(absl::StrCat("training failed: ", e.what()));
    }
  };
  if (slots.size() == 1) {
    alone(slots[0]);
    return;
  }
  try {
    // Stack the rows, each batch padded on the right to the longest T.
    const int64_t longest = pass.longest;
    bool checkpoint = false;
    for (const Slot* s : slots) {
      checkpoint = checkpoint || s->gradient_checkpointing;
    }
    std::vector<torch::Tensor> ids;
    std::vector<AdapterRows> rows;
    for (const Slot* s : slots) {
      const torch::Tensor& x = s->batch->ids;
      ids.push_back(x.size(1) == longest
                        ? x
                        : torch::constant_pad_nd(x, {0, longest - x.size(1)},
                                                 s->batch->pad_id));
      rows.push_back({s->adapter, x.size(0), s->batch->dropout,
                      s->batch->generator, x.size(1)});
    }
    ForwardOptions options;
    options.row_adapters = &rows;
    options.training = true;
    options.gradient_checkpointing = checkpoint;
    options.hidden_out = true;
    // One split of the hidden states: its backward is one cat of the jobs'
    // gradients, where a narrow per job would each make a zero gradient
    // the size of all of them.
    std::vector<int64_t> sizes;
    for (const AdapterRows& r : rows) sizes.push_back(r.rows);
    std::vector<torch::Tensor> hidden =
        model_->Forward(torch::cat(ids, 0), options).split_with_sizes(sizes, 0);
    torch::Tensor total;
    std::vector<torch::Tensor> means;
    for (size_t i = 0; i < slots.size(); ++i) {
      const int64_t t = slots[i]->batch->ids.size(1);
      torch::Tensor mine = t == longest ? hidden[i] : hidden[i].narrow(1, 0, t);
      torch::Tensor mean = slots[i]->batch->loss(mine);
      means.push_back(mean);
      torch::Tensor part = mean / static_cast<double>(slots[i]->divisor);
      total = total.defined() ? total + part : part;
    }
    try {
      total.backward();
    } catch (const c10::Error& e) {
      throw BackwardFailed{ErrorText(e)};
    }
    for (size_t i = 0; i < slots.size(); ++i) {
      MicroBatchResult result;
      result.loss = means[i].item<double>();
      for (const Slot* other : slots) {
        if (other != slots[i])
          result.fused_with.push_back(other->member->job_id());
      }
      slots[i]->result = std::move(result);
    }
  } catch (const BackwardFailed& e) {
    for (Slot* s : slots) {
      s->result = absl::InternalError(absl::StrCat(
          "training failed in LibTorch, in the backward of micro-batches "
          "fused with other jobs: ",
          e.what));
    }
  } catch (const std::exception&) {
    // Before the backward: nothing reached the adapters, so each batch
    // runs again alone and fails (or not) on its own.
    for (Slot* s : slots) alone(s);
  }
}

}  // namespace lorad::worker
