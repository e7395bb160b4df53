#include "lorad/worker/device_memory.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "c10/core/CachingDeviceAllocator.h"

namespace lorad::worker {
namespace {

int64_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

int64_t PeakRssBytes() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;
}

int64_t MemTotalBytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  std::string unit;
  while (meminfo >> key >> kb >> unit) {
    if (key == "MemTotal:") return kb * 1024;
  }
  return 0;
}

// The device allocator's numbers (LibTorch's CUDA caching allocator on
// CUDA); false when it cannot give them (not initialised, CPU).
bool FillAllocatorStats(const torch::Device& device,
                        lorad::worker::v1::MemoryUsage* m) {
  if (device.is_cpu()) return false;
  try {
    c10::DeviceAllocator* allocator = c10::getDeviceAllocator(device.type());
    if (allocator == nullptr || !allocator->initialized()) return false;
    const c10::DeviceIndex index = device.has_index() ? device.index() : 0;
    c10::CachingDeviceAllocator::DeviceStats stats =
        allocator->getDeviceStats(index);
    constexpr size_t kAll =
        static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    m->set_allocator_allocated_bytes(stats.allocated_bytes[kAll].current);
    m->set_allocator_peak_allocated_bytes(stats.allocated_bytes[kAll].peak);
    m->set_allocator_reserved_bytes(stats.reserved_bytes[kAll].current);
    m->set_allocator_peak_reserved_bytes(stats.reserved_bytes[kAll].peak);
    std::pair<size_t, size_t> free_total = allocator->getMemoryInfo(index);
    m->set_total_bytes(static_cast<int64_t>(free_total.second));
    return true;
  } catch (const c10::Error&) {
    return false;
  }
}

}  // namespace

lorad::worker::v1::MemoryUsage CurrentMemoryUsage(const torch::Device& device) {
  lorad::worker::v1::MemoryUsage m;
  m.set_device(device.str());
  m.set_rss_bytes(RssBytes());
  if (FillAllocatorStats(device, &m)) {
    m.set_used_bytes(m.allocator_allocated_bytes());
    m.set_peak_bytes(m.allocator_peak_allocated_bytes());
    return m;
  }
  m.set_used_bytes(m.rss_bytes());
  // The kernel updates its high-water mark lazily: the RSS just read can be
  // above it.
  m.set_peak_bytes(std::max(PeakRssBytes(), m.rss_bytes()));
  m.set_total_bytes(MemTotalBytes());
  return m;
}

void ReturnLargeHostBlocks() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, kReturnedHostBlockBytes);
  mallopt(M_TRIM_THRESHOLD, 4 * kReturnedHostBlockBytes);
#endif
}

int64_t PeakMemoryBytes(const torch::Device& device) {
  return CurrentMemoryUsage(device).peak_bytes();
}

}  // namespace lorad::worker
