#include "smi_format.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace lorad::client {
namespace {

constexpr int kInner = 89;  // between the outer bars
constexpr int kCol1 = 41, kCol2 = 24, kCol3 = 22;

std::string Fit(const std::string& text, int width, bool right = false) {
  if (static_cast<int>(text.size()) >= width) return text.substr(0, width);
  std::string pad(width - text.size(), ' ');
  return right ? pad + text : text + pad;
}

std::string Rule(char fill, char join) {
  return absl::StrCat("|", std::string(kCol1, fill), std::string(1, join),
                      std::string(kCol2, fill), std::string(1, join),
                      std::string(kCol3, fill), "|\n");
}

std::string Border() {
  return absl::StrCat("+", std::string(kInner, '-'), "+\n");
}

std::string Line(const std::string& text) {
  return absl::StrCat("| ", Fit(text, kInner - 2), " |\n");
}

std::string Row(const std::string& a, const std::string& b,
                const std::string& c) {
  return absl::StrCat("| ", Fit(a, kCol1 - 2), " | ", Fit(b, kCol2 - 2, true),
                      " | ", Fit(c, kCol3 - 2, true), " |\n");
}

std::string Percent(int percent) { return absl::StrCat(percent, "%"); }

}  // namespace

std::string Mib(int64_t bytes) {
  return absl::StrCat(bytes / (int64_t{1} << 20), "MiB");
}

std::string FormatSmi(const v1::TelemetrySnapshot& snapshot,
                      absl::TimeZone zone) {
  const v1::DeviceStatus& devices = snapshot.devices();
  std::string out = absl::StrCat(
      absl::FormatTime("%a %b %e %H:%M:%S %Y",
                       absl::FromUnixMillis(snapshot.time_unix_ms()), zone),
      "\n");
  absl::StrAppend(&out, Border());
  absl::StrAppend(&out, Line(absl::StrCat("lorad-smi   Driver Version: ",
                                          devices.driver_version().empty()
                                              ? "N/A"
                                              : devices.driver_version())));
  absl::StrAppend(&out,
                  Line(absl::StrCat("NVML: ", devices.nvml_status().empty()
                                                  ? "N/A"
                                                  : devices.nvml_status())));
  absl::StrAppend(&out, Rule('-', '+'));
  absl::StrAppend(&out, Row("GPU  Name", "Memory-Usage", "GPU-Util  Mem-Util"));
  absl::StrAppend(&out, Row("Temp                 Pwr:Usage/Cap",
                            "Reserved / Free", "Status"));
  absl::StrAppend(&out, Rule('=', '+'));
  if (devices.gpus_size() == 0) {
    const v1::HostMemory& host = devices.host();
    absl::StrAppend(
        &out,
        Row("  -  cpu (host memory, no GPU)",
            absl::StrCat(Mib(host.total_bytes() - host.available_bytes()),
                         " / ", Mib(host.total_bytes())),
            absl::StrFormat("%8s %9s", Percent(host.cpu_utilization_percent()),
                            "N/A")));
    absl::StrAppend(
        &out,
        Row("N/A                            N/A",
            absl::StrCat("available ", Mib(host.available_bytes())), "host"));
    absl::StrAppend(&out, Rule('-', '+'));
  }
  for (const v1::GpuDevice& gpu : devices.gpus()) {
    absl::StrAppend(
        &out,
        Row(absl::StrFormat("%3d  %s", gpu.index(), gpu.name()),
            absl::StrCat(Mib(gpu.memory_used_bytes()), " / ",
                         Mib(gpu.memory_total_bytes())),
            absl::StrFormat("%8s %9s", Percent(gpu.utilization_gpu_percent()),
                            Percent(gpu.utilization_memory_percent()))));
    absl::StrAppend(
        &out, Row(absl::StrFormat(
                      "%3dC %26s", gpu.temperature_celsius(),
                      absl::StrFormat("%.0fW / %.0fW", gpu.power_draw_watts(),
                                      gpu.power_limit_watts())),
                  absl::StrCat(Mib(gpu.memory_reserved_bytes()), " / ",
                               Mib(gpu.memory_free_bytes())),
                  gpu.status()));
    absl::StrAppend(&out, Row(absl::StrCat("     ", gpu.uuid()), "", ""));
    absl::StrAppend(&out, Rule('-', '+'));
  }
  absl::StrAppend(&out, "\n", Border());
  const bool gpu = devices.gpus_size() > 0;
  absl::StrAppend(&out, Line("Processes:"));
  absl::StrAppend(&out, Line(absl::StrFormat("%4s %10s   %-50s %17s", "GPU",
                                             "PID", "Process name",
                                             gpu ? "GPU Memory" : "Host RSS")));
  absl::StrAppend(&out, "|", std::string(kInner, '='), "|\n");
  int rows = 0;
  for (const v1::GpuDevice& device : devices.gpus()) {
    for (const v1::GpuProcess& p : device.processes()) {
      absl::StrAppend(&out,
                      Line(absl::StrFormat(
                          "%4d %10d   %-50s %17s", device.index(), p.pid(),
                          p.name().empty() ? "?" : p.name(),
                          p.used_bytes() > 0 ? Mib(p.used_bytes()) : "N/A")));
      ++rows;
    }
  }
  if (!gpu) {
    for (const v1::ProcessMemory& p : snapshot.processes()) {
      absl::StrAppend(
          &out, Line(absl::StrFormat("%4s %10d   %-50s %17s", "-", p.pid(),
                                     absl::StrCat("lorad ", p.role()),
                                     Mib(p.rss_bytes()))));
      ++rows;
    }
  }
  if (rows == 0) absl::StrAppend(&out, Line(" No running processes found"));
  absl::StrAppend(&out, Border());

  absl::StrAppend(&out, "\n", Border());
  const v1::MemoryUsage& worker = snapshot.worker_memory();
  absl::StrAppend(&out, Line("lorad memory:"));
  absl::StrAppend(&out, "|", std::string(kInner, '='), "|\n");
  if (snapshot.worker_status() == "ok") {
    absl::StrAppend(&out,
                    Line(absl::StrFormat(
                        " worker (%s)   in use %s   peak %s   RSS %s",
                        worker.device(), Mib(worker.used_bytes()),
                        Mib(worker.peak_bytes()), Mib(worker.rss_bytes()))));
    absl::StrAppend(&out,
                    Line(absl::StrFormat(
                        " allocator     allocated %s   reserved %s   peak %s",
                        Mib(worker.allocator_allocated_bytes()),
                        Mib(worker.allocator_reserved_bytes()),
                        Mib(worker.allocator_peak_allocated_bytes()))));
  } else {
    absl::StrAppend(&out,
                    Line(absl::StrCat(" worker: ", snapshot.worker_status())));
  }
  const v1::MemoryBreakdown& b = snapshot.breakdown();
  if (b.job_id().empty()) {
    absl::StrAppend(&out,
                    Line(" no job running (breakdown is per running job)"));
  } else {
    absl::StrAppend(&out,
                    Line(absl::StrCat(" job ", b.job_id(), " (estimate):")));
    absl::StrAppend(&out,
                    Line(absl::StrFormat(
                        "   base weights %-10s adapters %-10s optimizer %-10s",
                        Mib(b.base_bytes()), Mib(b.adapter_bytes()),
                        Mib(b.optimizer_bytes()))));
    absl::StrAppend(&out, Line(absl::StrFormat(
                              "   gradients    %-10s activations/KV cache %s",
                              Mib(b.gradient_bytes()),
                              Mib(b.activation_bytes() + b.kv_cache_bytes()))));
  }
  absl::StrAppend(&out, Border());
  return out;
}

}  // namespace lorad::client
