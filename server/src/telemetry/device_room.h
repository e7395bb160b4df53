// The memory room on the device the worker runs on, as admission control
// sees it: what the device has, what is free, and what the worker already
// holds there (which a new job can reuse: the worker runs one job at a time
// and keeps the base model it would load anyway).
#ifndef LORAD_SERVER_TELEMETRY_DEVICE_ROOM_H_
#define LORAD_SERVER_TELEMETRY_DEVICE_ROOM_H_

#include <cstdint>
#include <string>

#include "lorad/v1/lorad.pb.h"

namespace lorad::server {

struct DeviceRoom {
  std::string device;        // "cpu" or "cuda:N"
  int64_t total_bytes = 0;   // 0: unknown (nothing could be read)
  int64_t free_bytes = 0;    // free on the GPU; MemAvailable on the host
  int64_t worker_bytes = 0;  // held by the worker there

  bool known() const { return total_bytes > 0; }
  bool is_cuda() const { return device.rfind("cuda", 0) == 0; }
  // What a job may use: free plus what the worker holds.
  int64_t room_bytes() const { return free_bytes + worker_bytes; }
  // Held by other processes (and, on a GPU, the worker's CUDA context).
  int64_t used_by_others_bytes() const {
    return total_bytes - free_bytes - worker_bytes;
  }
};

// The room in `snapshot` for a worker started with --device=`worker_device`
// (auto | cpu | cuda). The device is the one the worker reported
// (worker_memory.device); before it has, "cpu" when so asked, else the first
// GPU NVML sees, else "cpu". On a GPU the worker holds its allocator's
// reserved bytes (NVML gives total and free; without NVML the worker's own
// total is used, with nothing counted as held by others); on the host it
// holds its RSS (the worker's own report, else its process entry).
DeviceRoom DeviceRoomOf(const v1::TelemetrySnapshot& snapshot,
                        const std::string& worker_device);

}  // namespace lorad::server

#endif  // LORAD_SERVER_TELEMETRY_DEVICE_ROOM_H_
