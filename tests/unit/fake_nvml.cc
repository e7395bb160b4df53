// A stand-in libnvidia-ml: exports the NVML C symbols lorad uses and answers
// with fixed values for two GPUs, so that the real dlopen path is tested
// without a driver. Environment variables make parts of it fail:
//   FAKE_NVML_INIT_FAIL=1         nvmlInit_v2 returns
//   NVML_ERROR_DRIVER_NOT_LOADED FAKE_NVML_TEMPERATURE_FAIL=1
//   nvmlDeviceGetTemperature -> NOT_SUPPORTED FAKE_NVML_NO_MEMORY_V2=1
//   nvmlDeviceGetMemoryInfo_v2 -> NOT_SUPPORTED
#include <cstdlib>
#include <cstring>

namespace {

constexpr int kSuccess = 0;
constexpr int kInvalidArgument = 2;
constexpr int kNotSupported = 3;
constexpr int kInsufficientSize = 7;
constexpr int kDriverNotLoaded = 9;
constexpr unsigned kDevices = 2;
constexpr unsigned long long kGiB = 1ull << 30;

struct MemoryV1 {
  unsigned long long total, free, used;
};
struct MemoryV2 {
  unsigned int version;
  unsigned long long total, reserved, free, used;
};
struct Utilization {
  unsigned int gpu, memory;
};
struct ProcessInfo {
  unsigned int pid;
  unsigned long long used;
  unsigned int gpu_instance, compute_instance;
};

bool Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, "1") == 0;
}

int Index(void* device) {
  long i = reinterpret_cast<long>(device) - 1;
  return i >= 0 && i < static_cast<long>(kDevices) ? static_cast<int>(i) : -1;
}

int Copy(const char* s, char* out, unsigned length) {
  if (std::strlen(s) + 1 > length) return kInsufficientSize;
  std::strcpy(out, s);
  return kSuccess;
}

int initialized = 0;

}  // namespace

extern "C" {

int nvmlInit_v2() {
  if (Env("FAKE_NVML_INIT_FAIL")) return kDriverNotLoaded;
  ++initialized;
  return kSuccess;
}
int nvmlShutdown() {
  --initialized;
  return kSuccess;
}
const char* nvmlErrorString(int code) {
  switch (code) {
    case kSuccess:
      return "Success";
    case kNotSupported:
      return "Not Supported";
    case kDriverNotLoaded:
      return "Driver Not Loaded";
    default:
      return "Unknown Error";
  }
}
int nvmlSystemGetDriverVersion(char* out, unsigned length) {
  return Copy("550.54.15", out, length);
}
int nvmlDeviceGetCount_v2(unsigned* count) {
  *count = kDevices;
  return kSuccess;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned index, void** device) {
  if (index >= kDevices) return kInvalidArgument;
  *device = reinterpret_cast<void*>(static_cast<long>(index) + 1);
  return kSuccess;
}
int nvmlDeviceGetName(void* device, char* out, unsigned length) {
  if (Index(device) < 0) return kInvalidArgument;
  return Copy("NVIDIA H100 80GB HBM3", out, length);
}
int nvmlDeviceGetUUID(void* device, char* out, unsigned length) {
  int i = Index(device);
  if (i < 0) return kInvalidArgument;
  return Copy(i == 0 ? "GPU-00000000-1111-2222-3333-444444444444"
                     : "GPU-55555555-6666-7777-8888-999999999999",
              out, length);
}
int nvmlDeviceGetMemoryInfo(void* device, MemoryV1* m) {
  int i = Index(device);
  if (i < 0) return kInvalidArgument;
  m->total = 80 * kGiB;
  m->used = (10 + 20 * i) * kGiB;
  m->free = m->total - m->used;
  return kSuccess;
}
int nvmlDeviceGetMemoryInfo_v2(void* device, MemoryV2* m) {
  int i = Index(device);
  if (i < 0) return kInvalidArgument;
  if (Env("FAKE_NVML_NO_MEMORY_V2")) return kNotSupported;
  if (m->version != (sizeof(MemoryV2) | (2u << 24))) return kInvalidArgument;
  m->total = 80 * kGiB;
  m->reserved = kGiB / 2;
  m->used = (10 + 20 * i) * kGiB;
  m->free = m->total - m->used - m->reserved;
  return kSuccess;
}
int nvmlDeviceGetUtilizationRates(void* device, Utilization* u) {
  int i = Index(device);
  if (i < 0) return kInvalidArgument;
  u->gpu = 37 + i;
  u->memory = 12 + i;
  return kSuccess;
}
int nvmlDeviceGetTemperature(void* device, unsigned sensor, unsigned* t) {
  if (Index(device) < 0 || sensor != 0) return kInvalidArgument;
  if (Env("FAKE_NVML_TEMPERATURE_FAIL")) return kNotSupported;
  *t = 41 + Index(device);
  return kSuccess;
}
int nvmlDeviceGetPowerUsage(void* device, unsigned* milliwatts) {
  if (Index(device) < 0) return kInvalidArgument;
  *milliwatts = 123456;
  return kSuccess;
}
int nvmlDeviceGetEnforcedPowerLimit(void* device, unsigned* milliwatts) {
  if (Index(device) < 0) return kInvalidArgument;
  *milliwatts = 700000;
  return kSuccess;
}
// GPU 0 runs 20 compute processes (more than a first buffer of 16 holds),
// GPU 1 none; pid 4242 is also listed as a graphics process on GPU 0.
int nvmlDeviceGetComputeRunningProcesses_v3(void* device, unsigned* count,
                                            ProcessInfo* infos) {
  int i = Index(device);
  if (i < 0) return kInvalidArgument;
  unsigned have = i == 0 ? 20 : 0;
  if (*count < have) {
    *count = have;
    return kInsufficientSize;
  }
  for (unsigned p = 0; p < have; ++p) {
    infos[p] = {4242u + p, (p + 1) * (kGiB / 4), 0, 0};
  }
  *count = have;
  return kSuccess;
}
int nvmlDeviceGetGraphicsRunningProcesses_v3(void* device, unsigned* count,
                                             ProcessInfo* infos) {
  int i = Index(device);
  if (i < 0) return kInvalidArgument;
  unsigned have = i == 0 ? 1 : 0;
  if (*count < have) {
    *count = have;
    return kInsufficientSize;
  }
  if (have == 1) infos[0] = {4242u, ~0ull, 0, 0};
  *count = have;
  return kSuccess;
}
int fake_nvml_initialized() { return initialized; }

}  // extern "C"
