#include "lorad/telemetry/device_status.h"

#include <utility>
#include <vector>

#include "lorad/telemetry/host_stats.h"

namespace lorad::telemetry {

DeviceStatusReader::DeviceStatusReader(Options options)
    : options_(std::move(options)) {
  absl::StatusOr<std::unique_ptr<NvmlLibrary>> nvml =
      NvmlLibrary::Open(options_.nvml_library);
  if (nvml.ok()) {
    nvml_ = *std::move(nvml);
  } else {
    nvml_open_status_ = nvml.status();
  }
}

v1::DeviceStatus DeviceStatusReader::Read() {
  v1::DeviceStatus status;
  status.set_device("cpu");
  absl::StatusOr<v1::HostMemory> host = ReadHostMemory(options_.proc_dir);
  if (host.ok()) *status.mutable_host() = *host;
  absl::StatusOr<CpuTimes> cpu = ReadCpuTimes(options_.proc_dir);
  if (cpu.ok()) {
    absl::MutexLock lock(&mu_);
    const int64_t total = cpu->total - last_cpu_.total;
    if (last_cpu_.total > 0 && total > 0) {
      status.mutable_host()->set_cpu_utilization_percent(
          static_cast<int32_t>(100 * (cpu->busy - last_cpu_.busy) / total));
    }
    last_cpu_ = *cpu;
  }
  if (nvml_ == nullptr) {
    status.set_nvml_status(std::string(nvml_open_status_.message()));
    return status;
  }
  status.set_driver_version(nvml_->DriverVersion());
  absl::StatusOr<std::vector<v1::GpuDevice>> gpus =
      nvml_->ReadDevices(options_.proc_dir);
  if (!gpus.ok()) {
    status.set_nvml_status(std::string(gpus.status().message()));
    return status;
  }
  status.set_nvml_status(gpus->empty() ? "NVML sees no GPU" : "ok");
  if (!gpus->empty()) status.set_device("cuda");
  for (v1::GpuDevice& gpu : *gpus) *status.add_gpus() = std::move(gpu);
  return status;
}

}  // namespace lorad::telemetry
