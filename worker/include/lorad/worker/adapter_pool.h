// Named, versioned LoRA adapters held for serving on top of one base model.
//
// Load validates an adapter completely (PEFT files readable, base model
// name matches, target modules exist, shapes and dtypes fit) before it is
// published; a refused adapter leaves the pool as it was. Loading under an
// existing name replaces it atomically: Acquire hands out shared_ptrs, so
// requests that hold the old version finish on it and new ones get the new
// one. Unload drops the pool's references; the memory goes when the last
// request using it finishes.
//
// At most `max_device_adapters` adapters are resident on the model's device;
// the least recently used unpinned ones move to host memory and come back on
// the next Acquire. On a CPU model device and host are the same memory, but
// the bookkeeping (and the copies) are the same as on CUDA.
//
// This class is thread-safe.
#ifndef LORAD_WORKER_ADAPTER_POOL_H_
#define LORAD_WORKER_ADAPTER_POOL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "lorad/worker/llama_model.h"
#include "lorad/worker/lora.h"

namespace lorad::worker {

struct AdapterPoolOptions {
  int max_device_adapters = 8;  // <= 0: unbounded
  // Names the served base answers to (the model argument, its directory).
  // An adapter whose base_model_name_or_path is set must match one of them
  // (by full string or by last path component).
  std::vector<std::string> base_model_names;
  // Milliseconds since the epoch; injectable for tests.
  std::function<int64_t()> now_ms;
};

struct PooledAdapterInfo {
  std::string name;
  int64_t version = 0;
  int64_t rank = 0;
  std::vector<std::string> target_modules;
  int64_t size_bytes = 0;
  bool on_device = false;
  bool pinned = false;
  int64_t last_used_ms = 0;
  std::string dir;
};

class AdapterPool {
 public:
  // `model` must outlive the pool.
  AdapterPool(const LlamaModel* model, AdapterPoolOptions options);

  // Reads and validates `dir` and publishes it as `name` at `version`
  // (resident on the device, most recently used). InvalidArgument /
  // NotFound naming the file and problem; FailedPrecondition for another
  // base model; ResourceExhausted when pinning would leave no device slot
  // for unpinned adapters.
  absl::StatusOr<PooledAdapterInfo> Load(const std::string& name,
                                         int64_t version,
                                         const std::string& dir, bool pinned);

  // Drops `name`. NotFound when the pool does not hold it.
  absl::Status Unload(const std::string& name);

  // The device-resident adapter `name`, brought back from host memory when
  // needed (evicting the least recently used unpinned one). NotFound when
  // the pool does not hold it.
  absl::StatusOr<std::shared_ptr<const AdapterSet>> Acquire(
      const std::string& name);

  bool Contains(const std::string& name) const;
  std::vector<PooledAdapterInfo> List() const;

  // Validates `dir` against the served base as Load does, without adding
  // it to the pool (for ad-hoc adapters and exports).
  absl::StatusOr<AdapterSet> ReadAdapter(const std::string& dir) const;

 private:
  struct Entry {
    PooledAdapterInfo info;
    std::shared_ptr<const AdapterSet> device;  // set when resident
    std::shared_ptr<const AdapterSet> host;    // set when moved off
  };
  // Moves unpinned LRU entries (not `keep`) to host until the bound holds.
  void EvictLocked(const std::string& keep) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t NowMs() const;

  const LlamaModel* model_;
  const AdapterPoolOptions options_;
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lorad::worker

#endif  // LORAD_WORKER_ADAPTER_POOL_H_
