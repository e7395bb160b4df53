// NVML (libnvidia-ml), loaded at run time with dlopen so that lorad runs on
// machines without an NVIDIA driver. Only the C symbols listed in
// nvml_library.cc are used; the ones added in newer drivers are optional.
#ifndef LORAD_TELEMETRY_NVML_LIBRARY_H_
#define LORAD_TELEMETRY_NVML_LIBRARY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "lorad/v1/lorad.pb.h"

namespace lorad::telemetry {

// The soname the driver installs.
inline constexpr char kDefaultNvmlLibrary[] = "libnvidia-ml.so.1";

// This class is thread-safe.
class NvmlLibrary {
 public:
  // dlopens `path`, resolves the symbols and calls nvmlInit. Unavailable
  // naming the library when it cannot be opened (no driver), a required
  // symbol is missing, or nvmlInit fails (its NVML error string is in the
  // message). Nothing here aborts.
  static absl::StatusOr<std::unique_ptr<NvmlLibrary>> Open(
      const std::string& path);

  // Calls nvmlShutdown and dlcloses the library.
  ~NvmlLibrary();
  NvmlLibrary(const NvmlLibrary&) = delete;
  NvmlLibrary& operator=(const NvmlLibrary&) = delete;

  // The driver version string, or "" when NVML cannot say.
  std::string DriverVersion();

  // Every GPU NVML sees. A failure reading one field of one GPU leaves that
  // field zero and is named in the GPU's status; only a failure to count or
  // enumerate the GPUs is an error (Unavailable). Process names are read from
  // `proc_dir`/PID/comm.
  absl::StatusOr<std::vector<v1::GpuDevice>> ReadDevices(
      const std::string& proc_dir);

 private:
  struct Api;
  NvmlLibrary(void* handle, std::unique_ptr<Api> api);
  std::string ErrorString(int code) const;

  void* const handle_;
  const std::unique_ptr<Api> api_;
  absl::Mutex mu_;  // NVML itself is thread-safe; this keeps reads whole.
};

}  // namespace lorad::telemetry

#endif  // LORAD_TELEMETRY_NVML_LIBRARY_H_
