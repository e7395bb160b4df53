#include "telemetry/device_room.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"

namespace lorad::server {
namespace {

std::string DeviceOf(const v1::TelemetrySnapshot& snapshot,
                     const std::string& worker_device) {
  const std::string& reported = snapshot.worker_memory().device();
  if (!reported.empty()) return reported == "cuda" ? "cuda:0" : reported;
  if (worker_device == "cpu" || snapshot.devices().gpus().empty()) {
    return "cpu";
  }
  return "cuda:0";
}

}  // namespace

DeviceRoom DeviceRoomOf(const v1::TelemetrySnapshot& snapshot,
                        const std::string& worker_device) {
  DeviceRoom room;
  room.device = DeviceOf(snapshot, worker_device);
  const v1::MemoryUsage& worker = snapshot.worker_memory();
  const bool reported_here = worker.device() == room.device ||
                             (worker.device() == "cuda" && room.is_cuda());
  if (room.is_cuda()) {
    int index = 0;
    absl::string_view suffix = room.device;
    if (absl::ConsumePrefix(&suffix, "cuda:") &&
        !absl::SimpleAtoi(suffix, &index)) {
      index = 0;
    }
    if (reported_here) room.worker_bytes = worker.allocator_reserved_bytes();
    for (const v1::GpuDevice& gpu : snapshot.devices().gpus()) {
      if (gpu.index() != index) continue;
      room.total_bytes = gpu.memory_total_bytes();
      room.free_bytes = gpu.memory_free_bytes();
      return room;
    }
    if (reported_here) {
      room.total_bytes = worker.total_bytes();
      room.free_bytes =
          std::max<int64_t>(0, worker.total_bytes() - room.worker_bytes);
    }
    return room;
  }
  room.total_bytes = snapshot.devices().host().total_bytes();
  room.free_bytes = snapshot.devices().host().available_bytes();
  if (reported_here) {
    room.worker_bytes = worker.rss_bytes();
  } else {
    for (const v1::ProcessMemory& p : snapshot.processes()) {
      if (p.role() == "worker") room.worker_bytes = p.rss_bytes();
    }
  }
  return room;
}

}  // namespace lorad::server
