#include "lorad/worker/adapter_pool.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lorad::worker {
namespace {

std::string LastComponent(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  size_t slash = s.rfind('/');
  return slash == std::string::npos ? s : s.substr(slash + 1);
}

}  // namespace

AdapterPool::AdapterPool(const LlamaModel* model, AdapterPoolOptions options)
    : model_(model), options_(std::move(options)) {}

int64_t AdapterPool::NowMs() const {
  if (options_.now_ms) return options_.now_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::StatusOr<AdapterSet> AdapterPool::ReadAdapter(
    const std::string& dir) const {
  absl::StatusOr<AdapterSet> set;
  try {
    set = AdapterSet::LoadPeft(dir, model_->config(), torch::kCPU);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir, ": adapter could not be read: ", e.what_without_backtrace()));
  }
  if (!set.ok()) return set.status();
  const std::string& base = set->base_model_name();
  if (!base.empty() && !options_.base_model_names.empty()) {
    bool match = false;
    for (const std::string& n : options_.base_model_names) {
      match |= n == base || LastComponent(n) == LastComponent(base);
    }
    if (!match) {
      return absl::FailedPreconditionError(absl::StrCat(
          dir, ": adapter was made for base model \"", base,
          "\", this worker serves \"",
          absl::StrJoin(options_.base_model_names, "\" / \""), "\""));
    }
  }
  return set;
}

absl::StatusOr<PooledAdapterInfo> AdapterPool::Load(const std::string& name,
                                                    int64_t version,
                                                    const std::string& dir,
                                                    bool pinned) {
  if (name.empty()) return absl::InvalidArgumentError("adapter name is empty");
  absl::StatusOr<AdapterSet> read = ReadAdapter(dir);
  if (!read.ok()) return read.status();
  std::shared_ptr<const AdapterSet> device;
  try {
    device = std::make_shared<const AdapterSet>(
        read->CopyTo(model_->device(), torch::kFloat32));
  } catch (const c10::Error& e) {
    return absl::ResourceExhaustedError(
        absl::StrCat("adapter \"", name, "\" could not be placed on ",
                     model_->device().str(), ": ", e.what_without_backtrace()));
  }
  absl::MutexLock lock(&mu_);
  if (pinned && options_.max_device_adapters > 0) {
    int pinned_now = 0;
    for (const auto& [n, e] : entries_)
      pinned_now += n != name && e.info.pinned;
    if (pinned_now + 1 > options_.max_device_adapters) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot pin adapter \"", name, "\": ", pinned_now,
                       " adapters are pinned and --max_device_adapters is ",
                       options_.max_device_adapters));
    }
  }
  Entry entry;
  entry.info.name = name;
  entry.info.version = version;
  entry.info.rank = device->options().rank;
  entry.info.target_modules = device->options().target_modules;
  entry.info.size_bytes = device->SizeBytes();
  entry.info.on_device = true;
  entry.info.pinned = pinned;
  entry.info.last_used_ms = NowMs();
  entry.info.dir = dir;
  entry.device = std::move(device);
  entries_[name] = std::move(entry);
  EvictLocked(name);
  return entries_[name].info;
}

absl::Status AdapterPool::Unload(const std::string& name) {
  absl::MutexLock lock(&mu_);
  if (entries_.erase(name) == 0) {
    return absl::NotFoundError(
        absl::StrCat("adapter \"", name, "\" is not loaded"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const AdapterSet>> AdapterPool::Acquire(
    const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    return absl::NotFoundError(
        absl::StrCat("adapter \"", name, "\" is not loaded"));
  }
  Entry& e = it->second;
  e.info.last_used_ms = NowMs();
  if (e.device == nullptr) {
    try {
      e.device = std::make_shared<const AdapterSet>(
          e.host->CopyTo(model_->device(), torch::kFloat32));
    } catch (const c10::Error& err) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "adapter \"", name, "\" could not be brought back to ",
          model_->device().str(), ": ", err.what_without_backtrace()));
    }
    e.host.reset();
    e.info.on_device = true;
    EvictLocked(name);
  }
  return e.device;
}

void AdapterPool::EvictLocked(const std::string& keep) {
  if (options_.max_device_adapters <= 0) return;
  for (;;) {
    int resident = 0;
    Entry* victim = nullptr;
    for (auto& [n, e] : entries_) {
      if (e.device == nullptr) continue;
      ++resident;
      if (n == keep || e.info.pinned) continue;
      // Prefer adapters no request is using; then the least recently used.
      auto key = [](const Entry& x) {
        return std::make_pair(x.device.use_count() > 1, x.info.last_used_ms);
      };
      if (victim == nullptr || key(e) < key(*victim)) victim = &e;
    }
    if (resident <= options_.max_device_adapters || victim == nullptr) return;
    victim->host = std::make_shared<const AdapterSet>(
        victim->device->CopyTo(torch::kCPU, torch::kFloat32));
    victim->device.reset();
    victim->info.on_device = false;
  }
}

bool AdapterPool::Contains(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  return entries_.count(name) > 0;
}

std::vector<PooledAdapterInfo> AdapterPool::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<PooledAdapterInfo> out;
  for (const auto& [n, e] : entries_) out.push_back(e.info);
  return out;
}

}  // namespace lorad::worker
