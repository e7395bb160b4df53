#include "train_checkpoint.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "lorad/common/files.h"
#include "lorad/common/status_macros.h"

namespace lorad::worker {
namespace {

constexpr absl::string_view kPrefix = "checkpoint-";
constexpr absl::string_view kSuffix = ".pt";
// The trailer: this marker, then the sha256 (hex) of everything before it.
constexpr absl::string_view kTrailerMark = "\nlorad-checkpoint-sha256:";
constexpr size_t kHexLen = 64;

// The step in a checkpoint file name, or -1 for other names.
int64_t StepOf(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, kPrefix) ||
      !absl::ConsumeSuffix(&name, kSuffix)) {
    return -1;
  }
  int64_t step = -1;
  return absl::SimpleAtoi(name, &step) && step >= 0 ? step : -1;
}

// Checkpoint steps in `dir`, newest first.
absl::StatusOr<std::vector<int64_t>> Steps(const std::string& dir, Env* env) {
  std::vector<int64_t> steps;
  if (!env->FileExists(dir)) return steps;
  LORAD_ASSIGN_OR_RETURN(std::vector<std::string> names, env->ListDir(dir));
  for (const std::string& name : names) {
    if (int64_t step = StepOf(name); step >= 0) steps.push_back(step);
  }
  std::sort(steps.begin(), steps.end(), std::greater<>());
  return steps;
}

// `rng`, or the CPU default generator when it is undefined.
at::Generator OrDefault(const at::Generator& rng) {
  return rng.defined() ? rng
                       : at::globalContext().defaultGenerator(torch::kCPU);
}

// `bytes` as a 1-D uint8 tensor (archives hold tensors only).
torch::Tensor BytesTensor(const std::string& bytes) {
  torch::Tensor t =
      torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  if (!bytes.empty()) std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

absl::StatusOr<std::string> Serialise(const AdapterSet& adapter,
                                      torch::optim::Optimizer& optimizer,
                                      const CheckpointState& state,
                                      const at::Generator& rng) {
  std::string bytes;
  try {
    torch::serialize::OutputArchive archive;
    archive.write("step", torch::tensor(state.step, torch::kLong));
    archive.write("tokens_seen",
                  torch::tensor(state.tokens_seen, torch::kLong));
    archive.write("best_step", torch::tensor(state.best_step, torch::kLong));
    archive.write("best_eval_loss", torch::tensor(state.best_eval_loss));
    archive.write("evals_since_best",
                  torch::tensor(state.evals_since_best, torch::kLong));
    archive.write("sent_events", BytesTensor(state.sent_events));
    for (const auto& [key, w] : adapter.weights()) {
      archive.write(key + ".lora_A", w.a.detach().cpu(), /*is_buffer=*/true);
      archive.write(key + ".lora_B", w.b.detach().cpu(), /*is_buffer=*/true);
    }
    {
      at::Generator gen = OrDefault(rng);
      std::lock_guard<std::mutex> lock(gen.mutex());
      archive.write("rng", gen.get_state());
    }
    torch::serialize::OutputArchive opt;
    optimizer.save(opt);
    archive.write("optimizer", opt);
    archive.save_to([&bytes](const void* data, size_t n) {
      bytes.append(static_cast<const char*>(data), n);
      return n;
    });
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("cannot serialise checkpoint: ",
                                            e.what_without_backtrace()));
  }
  absl::StrAppend(&bytes, kTrailerMark, Sha256Hex(bytes));
  return bytes;
}

// The archive inside a checkpoint file, once its checksum matches.
absl::StatusOr<absl::string_view> Verified(const std::string& path,
                                           absl::string_view bytes) {
  const size_t trailer = kTrailerMark.size() + kHexLen;
  if (bytes.size() < trailer ||
      bytes.substr(bytes.size() - trailer, kTrailerMark.size()) !=
          kTrailerMark) {
    return absl::DataLossError(
        absl::StrCat(path, ": no checksum trailer (truncated?)"));
  }
  absl::string_view archive = bytes.substr(0, bytes.size() - trailer);
  if (Sha256Hex(std::string_view(archive.data(), archive.size())) !=
      bytes.substr(bytes.size() - kHexLen)) {
    return absl::DataLossError(absl::StrCat(path, ": checksum mismatch"));
  }
  return archive;
}

absl::StatusOr<CheckpointState> Restore(const std::string& path,
                                        absl::string_view archive_bytes,
                                        AdapterSet& adapter,
                                        torch::optim::Optimizer& optimizer,
                                        const at::Generator& rng) {
  CheckpointState state;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(archive_bytes.data(), archive_bytes.size());
    torch::Tensor t;
    archive.read("step", t);
    state.step = t.item<int64_t>();
    archive.read("tokens_seen", t);
    state.tokens_seen = t.item<int64_t>();
    // Absent in checkpoints written before early stopping existed. (Each
    // read needs a fresh tensor: reading into one of another dtype fails.)
    torch::Tensor best_step, best_loss, since_best;
    if (archive.try_read("best_step", best_step)) {
      state.best_step = best_step.item<int64_t>();
    }
    if (archive.try_read("best_eval_loss", best_loss)) {
      state.best_eval_loss = best_loss.item<float>();
    }
    if (archive.try_read("evals_since_best", since_best)) {
      state.evals_since_best = since_best.item<int64_t>();
    }
    torch::Tensor sent;
    if (archive.try_read("sent_events", sent)) {
      if (sent.scalar_type() != torch::kUInt8 || sent.dim() != 1) {
        return absl::DataLossError(
            absl::StrCat(path, ": sent_events is not a byte vector"));
      }
      sent = sent.contiguous();
      state.sent_events.assign(static_cast<const char*>(sent.data_ptr()),
                               static_cast<size_t>(sent.numel()));
    }
    torch::NoGradGuard no_grad;
    for (const auto& [key, w] : adapter.weights()) {
      torch::Tensor a, b;
      archive.read(key + ".lora_A", a, /*is_buffer=*/true);
      archive.read(key + ".lora_B", b, /*is_buffer=*/true);
      if (!a.sizes().equals(w.a.sizes()) || !b.sizes().equals(w.b.sizes())) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": checkpoint shapes for ", key, " do not fit the job"));
      }
      w.a.copy_(a);
      w.b.copy_(b);
    }
    torch::Tensor saved_rng;
    archive.read("rng", saved_rng);
    at::Generator gen = OrDefault(rng);
    try {
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(saved_rng);
    } catch (const c10::Error&) {
      // Saved by a generator of another device kind: the masks go on from
      // the job's seed instead.
    }
    torch::serialize::InputArchive opt;
    archive.read("optimizer", opt);
    optimizer.load(opt);
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat(
        path, ": unreadable checkpoint: ", e.what_without_backtrace()));
  }
  return state;
}

}  // namespace

std::string CheckpointPath(const std::string& dir, int64_t step) {
  return absl::StrCat(dir, "/", kPrefix, step, kSuffix);
}

absl::Status SaveCheckpoint(const std::string& dir, const AdapterSet& adapter,
                            torch::optim::Optimizer& optimizer,
                            const CheckpointState& state, Env* env,
                            const at::Generator& rng) {
  LORAD_ASSIGN_OR_RETURN(std::string bytes,
                         Serialise(adapter, optimizer, state, rng));
  const std::string path = CheckpointPath(dir, state.step);
  absl::Status written = env->WriteFileAtomic(path, bytes);
  if (!written.ok()) {
    return absl::Status(written.code(),
                        absl::StrCat("cannot save the checkpoint ", path, ": ",
                                     written.message()));
  }
  // Keep this one and the newest before it. A file that will not go away
  // costs only disk; the next save tries again.
  absl::StatusOr<std::vector<int64_t>> steps = Steps(dir, env);
  if (steps.ok()) {
    int kept = 0;
    for (int64_t step : *steps) {
      if (step > state.step) {
        // Left by an attempt that got further; this run replays those steps.
        (void)env->RemoveFile(CheckpointPath(dir, step));
      } else if (++kept > 2) {
        (void)env->RemoveFile(CheckpointPath(dir, step));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<RestoredCheckpoint> LoadCheckpoint(
    const std::string& dir, AdapterSet& adapter,
    torch::optim::Optimizer& optimizer, Env* env, const at::Generator& rng) {
  LORAD_ASSIGN_OR_RETURN(std::vector<int64_t> steps, Steps(dir, env));
  if (steps.empty()) {
    return absl::NotFoundError(absl::StrCat("no checkpoint in ", dir));
  }
  RestoredCheckpoint restored;
  for (int64_t step : steps) {
    const std::string path = CheckpointPath(dir, step);
    absl::StatusOr<std::string> bytes = env->ReadFile(path);
    absl::StatusOr<absl::string_view> archive =
        bytes.ok() ? Verified(path, *bytes)
                   : absl::StatusOr<absl::string_view>(bytes.status());
    absl::StatusOr<CheckpointState> state =
        archive.ok() ? Restore(path, *archive, adapter, optimizer, rng)
                     : absl::StatusOr<CheckpointState>(archive.status());
    if (state.ok()) {
      restored.state = *state;
      restored.path = path;
      return restored;
    }
    if (absl::IsInvalidArgument(state.status())) return state.status();
    restored.skipped.push_back(std::string(state.status().message()));
  }
  return absl::DataLossError(
      absl::StrCat("no intact checkpoint in ", dir, ": ",
                   absl::StrJoin(restored.skipped, "; ")));
}

}  // namespace lorad::worker
