// The machine's devices as one message: GPUs through NVML when a driver is
// there, host memory always.
#ifndef LORAD_TELEMETRY_DEVICE_STATUS_H_
#define LORAD_TELEMETRY_DEVICE_STATUS_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "lorad/telemetry/host_stats.h"
#include "lorad/telemetry/nvml_library.h"
#include "lorad/v1/lorad.pb.h"

namespace lorad::telemetry {

// Opens NVML once, at construction; when that fails the reason is kept and
// every Read() reports it in nvml_status with device "cpu". Errors never
// escape as crashes or exceptions. This class is thread-safe.
class DeviceStatusReader {
 public:
  struct Options {
    // dlopen()ed as given (a soname searches the usual library path).
    std::string nvml_library = kDefaultNvmlLibrary;
    // Where /proc is (tests point it at a fake tree).
    std::string proc_dir = "/proc";
  };

  explicit DeviceStatusReader(Options options);
  DeviceStatusReader(const DeviceStatusReader&) = delete;
  DeviceStatusReader& operator=(const DeviceStatusReader&) = delete;

  // device "cuda" with one entry per GPU when NVML reads them, else "cpu";
  // host memory and CPU utilisation (since the previous Read) in both cases.
  v1::DeviceStatus Read();

  // Why NVML is not in use, OK when it is.
  absl::Status nvml_status() const { return nvml_open_status_; }
  const Options& options() const { return options_; }

 private:
  const Options options_;
  std::unique_ptr<NvmlLibrary> nvml_;
  absl::Status nvml_open_status_;
  absl::Mutex mu_;
  CpuTimes last_cpu_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lorad::telemetry

#endif  // LORAD_TELEMETRY_DEVICE_STATUS_H_
