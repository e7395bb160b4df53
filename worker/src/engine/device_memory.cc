#include "lorad/worker/device_memory.h"

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <string>

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

}  // namespace

lorad::v1::MemoryUsage CurrentMemoryUsage(const torch::Device& device) {
  lorad::v1::MemoryUsage m;
  m.set_device(device.str());
  m.set_rss_bytes(RssBytes());
  m.set_used_bytes(m.rss_bytes());
  m.set_peak_bytes(PeakRssBytes());
  m.set_total_bytes(MemTotalBytes());
  return m;
}

int64_t PeakMemoryBytes(const torch::Device& device) {
  return CurrentMemoryUsage(device).peak_bytes();
}

}  // namespace lorad::worker
