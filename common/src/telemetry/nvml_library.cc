#include "lorad/telemetry/nvml_library.h"

#include <dlfcn.h>

#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lorad/telemetry/host_stats.h"

namespace lorad::telemetry {
namespace {

// The NVML ABI, as documented in NVIDIA's nvml.h (declared here so that no
// driver header is needed to build).
using NvmlReturn = int;
using NvmlDevice = void*;
constexpr NvmlReturn kSuccess = 0;
constexpr NvmlReturn kInsufficientSize = 7;
constexpr unsigned kTemperatureGpu = 0;
constexpr unsigned kStringBuffer = 96;

struct MemoryV1 {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};
struct MemoryV2 {
  unsigned int version;
  unsigned long long total;
  unsigned long long reserved;
  unsigned long long free;
  unsigned long long used;
};
constexpr unsigned kMemoryV2Version = sizeof(MemoryV2) | (2u << 24);
struct Utilization {
  unsigned int gpu;
  unsigned int memory;
};
struct ProcessInfo {
  unsigned int pid;
  unsigned long long used_gpu_memory;
  unsigned int gpu_instance_id;
  unsigned int compute_instance_id;
};

template <typename Fn>
Fn Symbol(void* handle, const char* name) {
  return reinterpret_cast<Fn>(dlsym(handle, name));
}

}  // namespace

struct NvmlLibrary::Api {
  NvmlReturn (*init)();
  NvmlReturn (*shutdown)();
  const char* (*error_string)(NvmlReturn);
  NvmlReturn (*driver_version)(char*, unsigned);
  NvmlReturn (*device_count)(unsigned*);
  NvmlReturn (*handle_by_index)(unsigned, NvmlDevice*);
  NvmlReturn (*name)(NvmlDevice, char*, unsigned);
  NvmlReturn (*uuid)(NvmlDevice, char*, unsigned);
  NvmlReturn (*memory_v1)(NvmlDevice, MemoryV1*);
  NvmlReturn (*memory_v2)(NvmlDevice, MemoryV2*);  // optional
  NvmlReturn (*utilization)(NvmlDevice, Utilization*);
  NvmlReturn (*temperature)(NvmlDevice, unsigned, unsigned*);
  NvmlReturn (*power_usage)(NvmlDevice, unsigned*);
  NvmlReturn (*power_limit)(NvmlDevice, unsigned*);
  // _v3, else _v2 (the same record layout); optional.
  NvmlReturn (*compute_processes)(NvmlDevice, unsigned*, ProcessInfo*);
  NvmlReturn (*graphics_processes)(NvmlDevice, unsigned*, ProcessInfo*);
};

absl::StatusOr<std::unique_ptr<NvmlLibrary>> NvmlLibrary::Open(
    const std::string& path) {
  dlerror();
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    return absl::UnavailableError(absl::StrCat(
        "NVML not available: ", why != nullptr ? why : path.c_str()));
  }
  auto api = std::make_unique<Api>();
  std::vector<std::string> missing;
  auto require = [&](auto& fn, const char* name) {
    fn = Symbol<std::remove_reference_t<decltype(fn)>>(handle, name);
    if (fn == nullptr) missing.push_back(name);
  };
  auto either = [&](auto& fn, const char* name, const char* fallback) {
    fn = Symbol<std::remove_reference_t<decltype(fn)>>(handle, name);
    if (fn == nullptr) {
      fn = Symbol<std::remove_reference_t<decltype(fn)>>(handle, fallback);
    }
  };
  require(api->init, "nvmlInit_v2");
  require(api->shutdown, "nvmlShutdown");
  require(api->error_string, "nvmlErrorString");
  require(api->driver_version, "nvmlSystemGetDriverVersion");
  require(api->device_count, "nvmlDeviceGetCount_v2");
  require(api->handle_by_index, "nvmlDeviceGetHandleByIndex_v2");
  require(api->name, "nvmlDeviceGetName");
  require(api->uuid, "nvmlDeviceGetUUID");
  require(api->memory_v1, "nvmlDeviceGetMemoryInfo");
  require(api->utilization, "nvmlDeviceGetUtilizationRates");
  require(api->temperature, "nvmlDeviceGetTemperature");
  require(api->power_usage, "nvmlDeviceGetPowerUsage");
  require(api->power_limit, "nvmlDeviceGetEnforcedPowerLimit");
  api->memory_v2 =
      Symbol<decltype(api->memory_v2)>(handle, "nvmlDeviceGetMemoryInfo_v2");
  either(api->compute_processes, "nvmlDeviceGetComputeRunningProcesses_v3",
         "nvmlDeviceGetComputeRunningProcesses_v2");
  either(api->graphics_processes, "nvmlDeviceGetGraphicsRunningProcesses_v3",
         "nvmlDeviceGetGraphicsRunningProcesses_v2");
  if (!missing.empty()) {
    dlclose(handle);
    return absl::UnavailableError(absl::StrCat(
        path, " lacks NVML symbols: ", absl::StrJoin(missing, ", ")));
  }
  NvmlReturn rc = api->init();
  if (rc != kSuccess) {
    const char* why = api->error_string(rc);
    std::string message =
        absl::StrCat("nvmlInit failed: ", why != nullptr ? why : "error ", rc);
    dlclose(handle);
    return absl::UnavailableError(message);
  }
  return std::unique_ptr<NvmlLibrary>(new NvmlLibrary(handle, std::move(api)));
}

NvmlLibrary::NvmlLibrary(void* handle, std::unique_ptr<Api> api)
    : handle_(handle), api_(std::move(api)) {}

NvmlLibrary::~NvmlLibrary() {
  api_->shutdown();
  dlclose(handle_);
}

std::string NvmlLibrary::ErrorString(int code) const {
  const char* s = api_->error_string(code);
  return s != nullptr ? s : absl::StrCat("NVML error ", code);
}

std::string NvmlLibrary::DriverVersion() {
  absl::MutexLock lock(&mu_);
  char buffer[kStringBuffer] = {};
  if (api_->driver_version(buffer, sizeof(buffer)) != kSuccess) return "";
  return buffer;
}

absl::StatusOr<std::vector<v1::GpuDevice>> NvmlLibrary::ReadDevices(
    const std::string& proc_dir) {
  absl::MutexLock lock(&mu_);
  unsigned count = 0;
  NvmlReturn rc = api_->device_count(&count);
  if (rc != kSuccess) {
    return absl::UnavailableError(
        absl::StrCat("nvmlDeviceGetCount: ", ErrorString(rc)));
  }
  std::vector<v1::GpuDevice> devices;
  for (unsigned i = 0; i < count; ++i) {
    v1::GpuDevice gpu;
    gpu.set_index(static_cast<int32_t>(i));
    std::vector<std::string> errors;
    auto check = [&](NvmlReturn code, const char* what) {
      if (code != kSuccess) {
        errors.push_back(absl::StrCat(what, ": ", ErrorString(code)));
      }
      return code == kSuccess;
    };
    NvmlDevice device = nullptr;
    if (!check(api_->handle_by_index(i, &device), "handle")) {
      gpu.set_status(absl::StrJoin(errors, "; "));
      devices.push_back(std::move(gpu));
      continue;
    }
    char text[kStringBuffer] = {};
    if (check(api_->name(device, text, sizeof(text)), "name")) {
      gpu.set_name(text);
    }
    char uuid[kStringBuffer] = {};
    if (check(api_->uuid(device, uuid, sizeof(uuid)), "uuid")) {
      gpu.set_uuid(uuid);
    }
    MemoryV2 memory2 = {};
    memory2.version = kMemoryV2Version;
    if (api_->memory_v2 != nullptr &&
        api_->memory_v2(device, &memory2) == kSuccess) {
      gpu.set_memory_total_bytes(static_cast<int64_t>(memory2.total));
      gpu.set_memory_used_bytes(static_cast<int64_t>(memory2.used));
      gpu.set_memory_free_bytes(static_cast<int64_t>(memory2.free));
      gpu.set_memory_reserved_bytes(static_cast<int64_t>(memory2.reserved));
    } else {
      MemoryV1 memory = {};
      if (check(api_->memory_v1(device, &memory), "memory")) {
        gpu.set_memory_total_bytes(static_cast<int64_t>(memory.total));
        gpu.set_memory_used_bytes(static_cast<int64_t>(memory.used));
        gpu.set_memory_free_bytes(static_cast<int64_t>(memory.free));
      }
    }
    Utilization utilization = {};
    if (check(api_->utilization(device, &utilization), "utilization")) {
      gpu.set_utilization_gpu_percent(static_cast<int32_t>(utilization.gpu));
      gpu.set_utilization_memory_percent(
          static_cast<int32_t>(utilization.memory));
    }
    unsigned value = 0;
    if (check(api_->temperature(device, kTemperatureGpu, &value),
              "temperature")) {
      gpu.set_temperature_celsius(static_cast<int32_t>(value));
    }
    if (check(api_->power_usage(device, &value), "power draw")) {
      gpu.set_power_draw_watts(value / 1000.0);
    }
    if (check(api_->power_limit(device, &value), "power limit")) {
      gpu.set_power_limit_watts(value / 1000.0);
    }
    for (auto* list : {api_->compute_processes, api_->graphics_processes}) {
      if (list == nullptr) continue;
      std::vector<ProcessInfo> infos(16);
      unsigned n = static_cast<unsigned>(infos.size());
      rc = list(device, &n, infos.data());
      if (rc == kInsufficientSize) {
        infos.resize(n + 8);
        n = static_cast<unsigned>(infos.size());
        rc = list(device, &n, infos.data());
      }
      if (!check(rc, "processes")) continue;
      for (unsigned p = 0; p < n && p < infos.size(); ++p) {
        bool seen = false;
        for (const v1::GpuProcess& have : gpu.processes()) {
          seen = seen || have.pid() == infos[p].pid;
        }
        if (seen) continue;
        v1::GpuProcess* process = gpu.add_processes();
        process->set_pid(infos[p].pid);
        process->set_name(ReadProcessName(proc_dir, infos[p].pid));
        // NVML reports an unavailable per-process figure as all ones.
        if (infos[p].used_gpu_memory != ~0ull) {
          process->set_used_bytes(
              static_cast<int64_t>(infos[p].used_gpu_memory));
        }
      }
    }
    gpu.set_status(errors.empty() ? "ok" : absl::StrJoin(errors, "; "));
    devices.push_back(std::move(gpu));
  }
  return devices;
}

}  // namespace lorad::telemetry
