#include "lorad/telemetry/host_stats.h"

#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace lorad::telemetry {

absl::StatusOr<v1::HostMemory> ReadHostMemory(const std::string& proc_dir) {
  const std::string path = proc_dir + "/meminfo";
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  v1::HostMemory host;
  bool have_total = false, have_available = false;
  std::string key, unit;
  int64_t kib = 0;
  while (in >> key >> kib) {
    std::getline(in, unit);
    if (key == "MemTotal:") {
      host.set_total_bytes(kib * 1024);
      have_total = true;
    } else if (key == "MemAvailable:") {
      host.set_available_bytes(kib * 1024);
      have_available = true;
    }
  }
  if (!have_total || !have_available) {
    return absl::DataLossError(
        absl::StrCat(path, " lacks MemTotal or MemAvailable"));
  }
  return host;
}

absl::StatusOr<CpuTimes> ReadCpuTimes(const std::string& proc_dir) {
  const std::string path = proc_dir + "/stat";
  std::ifstream in(path);
  std::string label;
  if (!(in >> label) || label != "cpu") {
    return absl::NotFoundError(absl::StrCat("cannot read ", path));
  }
  CpuTimes times;
  int64_t value = 0;
  // user nice system idle iowait irq softirq steal (guest time is already
  // counted in user).
  for (int field = 0; field < 8 && (in >> value); ++field) {
    times.total += value;
    if (field != 3 && field != 4) times.busy += value;
  }
  return times;
}

absl::StatusOr<int64_t> ReadProcessRss(const std::string& proc_dir, pid_t pid) {
  const std::string path = absl::StrCat(proc_dir, "/", pid, "/statm");
  std::ifstream in(path);
  int64_t size = 0, resident = 0;
  if (!(in >> size >> resident)) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path));
  }
  return resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

std::string ReadProcessName(const std::string& proc_dir, pid_t pid) {
  std::ifstream in(absl::StrCat(proc_dir, "/", pid, "/comm"));
  std::string name;
  std::getline(in, name);
  return name;
}

}  // namespace lorad::telemetry
