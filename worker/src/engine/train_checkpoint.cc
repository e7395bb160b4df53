#include "train_checkpoint.h"

#include "absl/strings/str_cat.h"
#include "lorad/common/status_macros.h"

namespace lorad::worker {

absl::Status SaveCheckpoint(const std::string& path, const AdapterSet& adapter,
                            torch::optim::Optimizer& optimizer,
                            const CheckpointState& state, Env* env) {
  std::string bytes;
  try {
    torch::serialize::OutputArchive archive;
    archive.write("step", torch::tensor(state.step, torch::kLong));
    archive.write("tokens_seen",
                  torch::tensor(state.tokens_seen, torch::kLong));
    for (const auto& [key, w] : adapter.weights()) {
      archive.write(key + ".lora_A", w.a.detach().cpu(), /*is_buffer=*/true);
      archive.write(key + ".lora_B", w.b.detach().cpu(), /*is_buffer=*/true);
    }
    archive.write(
        "rng", at::globalContext().defaultGenerator(torch::kCPU).get_state());
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
  absl::Status written = env->WriteFileAtomic(path, bytes);
  if (!written.ok()) {
    return absl::Status(written.code(),
                        absl::StrCat("cannot save the checkpoint ", path, ": ",
                                     written.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<CheckpointState> LoadCheckpoint(
    const std::string& path, AdapterSet& adapter,
    torch::optim::Optimizer& optimizer, Env* env) {
  if (!env->FileExists(path)) {
    return absl::NotFoundError(absl::StrCat("no checkpoint at ", path));
  }
  LORAD_ASSIGN_OR_RETURN(std::string bytes, env->ReadFile(path));
  CheckpointState state;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(bytes.data(), bytes.size());
    torch::Tensor t;
    archive.read("step", t);
    state.step = t.item<int64_t>();
    archive.read("tokens_seen", t);
    state.tokens_seen = t.item<int64_t>();
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
    torch::Tensor rng;
    archive.read("rng", rng);
    at::Generator gen = at::globalContext().defaultGenerator(torch::kCPU);
    gen.set_state(rng);
    torch::serialize::InputArchive opt;
    archive.read("optimizer", opt);
    optimizer.load(opt);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": unreadable checkpoint: ", e.what_without_backtrace()));
  }
  return state;
}

}  // namespace lorad::worker
