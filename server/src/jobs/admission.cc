#include "jobs/admission.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "lorad/common/status_macros.h"
#include "lorad/model/memory_estimate.h"
#include "lorad/model/tiny_model.h"

namespace lorad::server {
namespace {

constexpr int64_t kMinSeqLen = 8;
constexpr int64_t kMaxBytesPerPromptToken = 16;

// The largest x in [lo, hi] with fits(x), for fits true up to some x and
// false after; lo - 1 when none.
template <typename Fits>
int64_t LargestFitting(int64_t lo, int64_t hi, const Fits& fits) {
  int64_t best = lo - 1;
  while (lo <= hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (fits(mid)) {
      best = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return best;
}

std::string DescribeRoom(const DeviceRoom& room) {
  return absl::StrCat(room.device, " has room for ",
                      FormatBytes(room.room_bytes()), " (",
                      FormatBytes(room.free_bytes), " free + ",
                      FormatBytes(room.worker_bytes), " held by the worker)");
}

absl::Status Refuse(absl::string_view what, int64_t need,
                    const DeviceRoom& room,
                    const std::vector<std::string>& remedies) {
  return absl::ResourceExhaustedError(absl::StrCat(
      what, " but ", DescribeRoom(room), ": ",
      FormatBytes(need - room.room_bytes()),
      " short. What would fit: ", absl::StrJoin(remedies, "; "), "."));
}

model::TrainingShape ShapeOf(const v1::Hyperparameters& hp,
                             int64_t compute_bytes) {
  model::TrainingShape shape;
  shape.rank = hp.rank();
  shape.target_modules.assign(hp.target_modules().begin(),
                              hp.target_modules().end());
  shape.batch_size = std::max(1, hp.batch_size());
  shape.seq_len = hp.max_seq_len();
  shape.gradient_checkpointing = hp.gradient_checkpointing();
  shape.compute_bytes = compute_bytes;
  model::SetOptimizer(hp.optimizer(), &shape);
  shape.preference = hp.method() == "dpo";
  // The server validated the name; an unknown one would be refused there.
  shape.base_quantization = model::ParseBaseQuantization(hp.quantization())
                                .value_or(model::BaseQuantization::kNf4);
  return shape;
}

// What the device must hold: all of it but the state a paged optimizer
// lets move to host memory.
int64_t DeviceNeed(const model::MemoryEstimateBytes& e) {
  return e.total - e.pageable;
}

std::string Estimated(int64_t bytes) {
  return absl::StrCat("estimate ", FormatBytes(bytes));
}

}  // namespace

std::string FormatBytes(int64_t bytes) {
  constexpr double kMiB = 1024.0 * 1024.0;
  constexpr double kGiB = 1024.0 * kMiB;
  if (bytes >= (int64_t{1} << 30) || bytes <= -(int64_t{1} << 30)) {
    return absl::StrFormat("%.1f GiB", static_cast<double>(bytes) / kGiB);
  }
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / kMiB);
}

int64_t ComputeBytes(const std::string& compute_dtype, const DeviceRoom& room) {
  if (compute_dtype == "float32") return 4;
  if (compute_dtype == "bfloat16") return 2;
  return room.is_cuda() ? 2 : 4;
}

std::string ChooseGradientCheckpointing(const model::ModelConfig& config,
                                        const DeviceRoom& room,
                                        v1::Hyperparameters& hp) {
  if (hp.has_gradient_checkpointing()) return "";
  if (!room.known()) {
    hp.set_gradient_checkpointing(true);
    return "gradient checkpointing on (auto: the device's room is unknown)";
  }
  model::TrainingShape shape =
      ShapeOf(hp, ComputeBytes(hp.compute_dtype(), room));
  shape.gradient_checkpointing = false;
  const int64_t without =
      DeviceNeed(model::EstimateTrainingMemory(config, shape));
  const bool fits = without <= room.room_bytes();
  hp.set_gradient_checkpointing(!fits);
  return absl::StrCat("gradient checkpointing ", fits ? "off" : "on",
                      " (auto: without it the job needs ", FormatBytes(without),
                      "; ", DescribeRoom(room), ")");
}

absl::Status AdmitFineTune(const model::ModelConfig& config,
                           const v1::Hyperparameters& hp,
                           const DeviceRoom& room) {
  if (!room.known()) return absl::OkStatus();
  const model::TrainingShape shape =
      ShapeOf(hp, ComputeBytes(hp.compute_dtype(), room));
  auto total = [&](const model::TrainingShape& s) {
    return DeviceNeed(model::EstimateTrainingMemory(config, s));
  };
  auto fits = [&](const model::TrainingShape& s) {
    return total(s) <= room.room_bytes();
  };
  const model::MemoryEstimateBytes e =
      model::EstimateTrainingMemory(config, shape);
  if (DeviceNeed(e) <= room.room_bytes()) return absl::OkStatus();

  std::vector<std::string> remedies;
  bool any_fits = false;
  auto with = [&](auto edit) {
    model::TrainingShape s = shape;
    edit(s);
    return s;
  };
  if (shape.batch_size > 1) {
    const int64_t b = LargestFitting(1, shape.batch_size - 1, [&](int64_t b) {
      return fits(with([b](auto& s) { s.batch_size = b; }));
    });
    if (b >= 1) {
      any_fits = true;
      const int64_t effective =
          shape.batch_size * std::max(1, hp.gradient_accumulation());
      const int64_t accumulation = (effective + b - 1) / b;
      remedies.push_back(absl::StrCat(
          "batch_size ", b, " (",
          Estimated(total(with([b](auto& s) { s.batch_size = b; }))),
          "; with gradient_accumulation ", accumulation,
          b * accumulation == effective
              ? absl::StrCat(" the effective batch stays ", effective)
              : absl::StrCat(" the effective batch is ", b * accumulation,
                             " instead of ", effective),
          ")"));
    } else {
      remedies.push_back(absl::StrCat(
          "batch_size 1 alone is not enough (",
          Estimated(total(with([](auto& s) { s.batch_size = 1; }))), ")"));
    }
  }
  if (!shape.gradient_checkpointing) {
    const model::TrainingShape s =
        with([](auto& s) { s.gradient_checkpointing = true; });
    any_fits |= fits(s);
    remedies.push_back(absl::StrCat("gradient_checkpointing on",
                                    fits(s) ? "" : " alone is not enough", " (",
                                    Estimated(total(s)), ")"));
  }
  if (shape.seq_len > kMinSeqLen) {
    const int64_t l = LargestFitting(
        kMinSeqLen, shape.seq_len - 1,
        [&](int64_t l) { return fits(with([l](auto& s) { s.seq_len = l; })); });
    if (l >= kMinSeqLen) {
      any_fits = true;
      remedies.push_back(absl::StrCat(
          "max_seq_len ", l, " (",
          Estimated(total(with([l](auto& s) { s.seq_len = l; }))), ")"));
    } else {
      remedies.push_back(absl::StrCat(
          "max_seq_len ", kMinSeqLen, " alone is not enough (",
          Estimated(total(with([](auto& s) { s.seq_len = kMinSeqLen; }))),
          ")"));
    }
  }
  if (!shape.optimizer_paged) {
    const model::TrainingShape s = with([](auto& s) {
      s.optimizer_paged = true;
      s.optimizer_8bit = true;
    });
    any_fits |= fits(s);
    remedies.push_back(absl::StrCat("optimizer paged_adamw_8bit",
                                    fits(s) ? "" : " alone is not enough",
                                    " (its state may move to host memory; ",
                                    Estimated(total(s)), " on the device)"));
  }
  if (!any_fits) {
    auto smallest = [&](int64_t l) {
      return with([l](auto& s) {
        s.batch_size = 1;
        s.gradient_checkpointing = true;
        s.seq_len = l;
      });
    };
    const int64_t l = LargestFitting(kMinSeqLen, shape.seq_len, [&](int64_t l) {
      return fits(smallest(l));
    });
    if (l >= kMinSeqLen) {
      remedies.push_back(absl::StrCat(
          "batch_size 1 with gradient_checkpointing on and max_seq_len ", l,
          " (", Estimated(total(smallest(l))), ")"));
    } else {
      remedies.push_back(absl::StrCat(
          "nothing: even batch_size 1 with gradient_checkpointing on and "
          "max_seq_len ",
          kMinSeqLen, " needs ", FormatBytes(total(smallest(kMinSeqLen)))));
    }
  }
  return Refuse(
      absl::StrCat(
          "fine-tune job needs about ", FormatBytes(e.total), " (base model ",
          FormatBytes(e.base), ", adapter ", FormatBytes(e.adapter),
          ", gradients ", FormatBytes(e.gradients), ", optimizer ",
          FormatBytes(e.optimizer), ", activations ",
          FormatBytes(e.activations), " for batch_size ", shape.batch_size,
          " x max_seq_len ", shape.seq_len,
          e.pageable > 0 ? absl::StrCat("; ", FormatBytes(e.pageable),
                                        " of it may page to host memory")
                         : "",
          ")"),
      DeviceNeed(e), room, remedies);
}

int64_t PromptTokensAtLeast(const worker::v1::Sampling& sampling) {
  int64_t bytes = static_cast<int64_t>(sampling.prompt().size());
  for (const worker::v1::ChatMessage& m : sampling.messages()) {
    bytes += static_cast<int64_t>(m.content().size());
  }
  return std::max<int64_t>(
      1, (bytes + kMaxBytesPerPromptToken - 1) / kMaxBytesPerPromptToken);
}

GenerationDemand DemandOf(const worker::v1::Sampling& sampling) {
  GenerationDemand demand;
  demand.prompt_tokens = PromptTokensAtLeast(sampling);
  if (sampling.max_new_tokens() > 0) {
    demand.max_new_tokens = sampling.max_new_tokens();
  }
  return demand;
}

absl::Status AdmitGeneration(const model::ModelConfig& config,
                             const GenerationDemand& demand, int concurrency,
                             const DeviceRoom& room) {
  if (!room.known()) return absl::OkStatus();
  const int64_t bytes = ComputeBytes("auto", room);
  const int64_t base =
      model::BaseModelBytes(config, bytes, demand.base_quantization);
  concurrency = std::max(concurrency, 1);
  auto need = [&](int64_t max_new_tokens, int64_t n) {
    return base + n * model::KvCacheBytes(
                          config, demand.prompt_tokens + max_new_tokens, bytes);
  };
  const int64_t total = need(demand.max_new_tokens, concurrency);
  if (total <= room.room_bytes()) return absl::OkStatus();

  std::vector<std::string> remedies;
  const int64_t m = LargestFitting(
      1, demand.max_new_tokens - 1,
      [&](int64_t m) { return need(m, concurrency) <= room.room_bytes(); });
  if (m >= 1) {
    remedies.push_back(absl::StrCat("max_new_tokens ", m, " (",
                                    Estimated(need(m, concurrency)), ")"));
  } else {
    remedies.push_back(absl::StrCat("max_new_tokens 1 is not enough (",
                                    Estimated(need(1, concurrency)), ")"));
  }
  if (concurrency > 1) {
    const int64_t c = LargestFitting(1, concurrency - 1, [&](int64_t c) {
      return need(demand.max_new_tokens, c) <= room.room_bytes();
    });
    if (c >= 1) {
      remedies.push_back(absl::StrCat("--batch_concurrency ", c, " (",
                                      Estimated(need(demand.max_new_tokens, c)),
                                      ")"));
    }
  }
  const int64_t positions = demand.prompt_tokens + demand.max_new_tokens;
  return Refuse(
      absl::StrCat(
          "generation needs about ", FormatBytes(total), " (base model ",
          FormatBytes(base), " + KV cache ", FormatBytes(total - base), " for ",
          concurrency > 1 ? absl::StrCat(concurrency, " requests x ") : "",
          positions, " positions: max_new_tokens ", demand.max_new_tokens,
          " + a prompt of at least ", demand.prompt_tokens,
          demand.prompt_tokens == 1 ? " token)" : " tokens)"),
      total, room, remedies);
}

absl::Status AdmitTogether(const std::vector<TrainingDemand>& jobs,
                           const DeviceRoom& room) {
  if (!room.known() || jobs.empty()) return absl::OkStatus();
  absl::flat_hash_map<std::string, int64_t> longest;  // by base
  for (const TrainingDemand& j : jobs) {
    int64_t& l = longest[j.base_key];
    l = std::max<int64_t>(l, j.hp.max_seq_len());
  }
  absl::flat_hash_map<std::string, int64_t> bases;
  int64_t jobs_bytes = 0;
  for (const TrainingDemand& j : jobs) {
    model::TrainingShape shape =
        ShapeOf(j.hp, ComputeBytes(j.hp.compute_dtype(), room));
    shape.seq_len = longest[j.base_key];
    const model::MemoryEstimateBytes e =
        model::EstimateTrainingMemory(j.config, shape);
    bases[j.base_key] = e.base;
    jobs_bytes += DeviceNeed(e) - e.base;
  }
  int64_t base_bytes = 0;
  for (const auto& [key, bytes] : bases) base_bytes += bytes;
  const int64_t need = base_bytes + jobs_bytes;
  if (need <= room.room_bytes()) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      jobs.size(), " fine-tune jobs at once need about ", FormatBytes(need),
      " (", bases.size(), bases.size() == 1 ? " base " : " bases ",
      FormatBytes(base_bytes),
      " + the jobs' adapters, optimizer state and "
      "activations ",
      FormatBytes(jobs_bytes), ") but ", DescribeRoom(room), ": ",
      FormatBytes(need - room.room_bytes()), " short"));
}

Admission::Admission(std::function<DeviceRoom()> room, Options options)
    : room_(std::move(room)), options_(options) {}

absl::Status Admission::CheckFineTune(v1::FineTuneJob& job,
                                      std::string* note) const {
  LORAD_ASSIGN_OR_RETURN(const model::ModelConfig config,
                         model::ModelConfigOf(job.model()));
  const DeviceRoom room = room_();
  std::string chosen =
      ChooseGradientCheckpointing(config, room, *job.mutable_hyperparameters());
  if (note != nullptr) *note = std::move(chosen);
  return AdmitFineTune(config, job.hyperparameters(), room);
}

absl::Status Admission::CheckBeside(const std::vector<v1::FineTuneJob>& running,
                                    const v1::FineTuneJob& candidate) const {
  const DeviceRoom room = room_();
  std::vector<const v1::FineTuneJob*> all;
  for (const v1::FineTuneJob& r : running) all.push_back(&r);
  all.push_back(&candidate);
  std::vector<TrainingDemand> jobs;
  for (const v1::FineTuneJob* job : all) {
    LORAD_ASSIGN_OR_RETURN(model::ModelConfig config,
                           model::ModelConfigOf(job->model()));
    const v1::Hyperparameters& hp = job->hyperparameters();
    jobs.push_back({absl::StrCat(job->model(), "|", hp.quantization(), "|",
                                 ComputeBytes(hp.compute_dtype(), room)),
                    std::move(config), hp});
  }
  return AdmitTogether(jobs, room);
}

absl::Status Admission::CheckGenerate(
    const worker::v1::GenerateRequest& request) const {
  LORAD_ASSIGN_OR_RETURN(const model::ModelConfig config,
                         model::ModelConfigOf(request.model()));
  GenerationDemand demand = DemandOf(request.sampling());
  demand.base_quantization =
      model::ParseBaseQuantization(request.quantization())
          .value_or(model::BaseQuantization::kNf4);
  return AdmitGeneration(config, demand, 1, room_());
}

absl::Status Admission::CheckBatch(
    const std::vector<BatchLine>& lines,
    const absl::flat_hash_map<std::string, BatchBase>& base_of_adapter) const {
  struct Largest {
    const BatchLine* line = nullptr;
    GenerationDemand demand;
    int64_t requests = 0;
  };
  // Keyed by model and quantization: an int8 base holds about twice the
  // bytes of the same model in NF4.
  std::map<std::pair<std::string, model::BaseQuantization>, Largest> by_base;
  for (const BatchLine& line : lines) {
    auto base = base_of_adapter.find(line.request.adapter());
    if (base == base_of_adapter.end()) continue;
    const model::BaseQuantization quantization =
        model::ParseBaseQuantization(base->second.quantization)
            .value_or(model::BaseQuantization::kNf4);
    Largest& largest = by_base[{base->second.model, quantization}];
    ++largest.requests;
    worker::v1::Sampling sampling;
    sampling.set_prompt(line.request.prompt());
    for (const v1::ChatMessage& m : line.request.messages()) {
      sampling.add_messages()->set_content(m.content());
    }
    sampling.set_max_new_tokens(line.request.max_new_tokens());
    GenerationDemand demand = DemandOf(sampling);
    demand.base_quantization = quantization;
    if (largest.line == nullptr ||
        demand.prompt_tokens + demand.max_new_tokens >
            largest.demand.prompt_tokens + largest.demand.max_new_tokens) {
      largest.line = &line;
      largest.demand = demand;
    }
  }
  const DeviceRoom room = room_();
  for (const auto& [key, largest] : by_base) {
    const std::string& model_name = key.first;
    LORAD_ASSIGN_OR_RETURN(const model::ModelConfig config,
                           model::ModelConfigOf(model_name));
    const int concurrency = static_cast<int>(std::min<int64_t>(
        std::max(1, options_.batch_concurrency), largest.requests));
    absl::Status fits =
        AdmitGeneration(config, largest.demand, concurrency, room);
    if (!fits.ok()) {
      const bool int8 = key.second == model::BaseQuantization::kInt8;
      return absl::Status(
          fits.code(),
          absl::StrCat("line ", largest.line->line, " (the largest of ",
                       largest.requests, " requests on model ", model_name,
                       int8 ? " in int8" : "", ", ", concurrency,
                       " at a time): ", fits.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace lorad::server
