#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "lorad/telemetry/device_status.h"
#include "lorad/telemetry/host_stats.h"
#include "lorad/telemetry/nvml_library.h"

namespace lorad::telemetry {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

// A fake /proc with meminfo and the comm of one process.
class FakeProc {
 public:
  explicit FakeProc(bool with_available = true) {
    dir_ = std::filesystem::temp_directory_path() /
           ("telemetry_test_proc." + std::to_string(getpid()) + "." +
            std::to_string(counter_++));
    std::filesystem::create_directories(dir_ / "4242");
    std::ofstream(dir_ / "meminfo")
        << "MemTotal:       16384000 kB\nMemFree:         1000 kB\n"
        << (with_available ? "MemAvailable:    8192000 kB\n" : "")
        << "Buffers:           12 kB\n";
    std::ofstream(dir_ / "4242" / "comm") << "lorad-worker\n";
    SetCpu(100, 1000);
  }
  // user=busy, idle=idle (the other fields zero).
  void SetCpu(int busy, int idle) {
    std::ofstream(dir_ / "stat")
        << "cpu  " << busy << " 0 0 " << idle << " 0 0 0 0 0 0\ncpu0 1 2 3 4\n";
  }
  ~FakeProc() { std::filesystem::remove_all(dir_); }
  std::string path() const { return dir_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path dir_;
};

class ScopedEnv {
 public:
  explicit ScopedEnv(const char* name) : name_(name) { setenv(name, "1", 1); }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

DeviceStatusReader::Options FakeOptions(const FakeProc& proc) {
  DeviceStatusReader::Options options;
  options.nvml_library = LORAD_FAKE_NVML;
  options.proc_dir = proc.path();
  return options;
}

TEST(TelemetryTest, ReadsEveryGpuFieldThroughDlopen) {
  FakeProc proc;
  DeviceStatusReader reader(FakeOptions(proc));
  ASSERT_TRUE(reader.nvml_status().ok()) << reader.nvml_status();
  v1::DeviceStatus status = reader.Read();
  EXPECT_EQ(status.device(), "cuda");
  EXPECT_EQ(status.nvml_status(), "ok");
  EXPECT_EQ(status.driver_version(), "550.54.15");
  ASSERT_EQ(status.gpus_size(), 2);
  const v1::GpuDevice& g0 = status.gpus(0);
  EXPECT_EQ(g0.index(), 0);
  EXPECT_EQ(g0.name(), "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(g0.uuid(), "GPU-00000000-1111-2222-3333-444444444444");
  EXPECT_EQ(g0.memory_total_bytes(), 80 * kGiB);
  EXPECT_EQ(g0.memory_used_bytes(), 10 * kGiB);
  EXPECT_EQ(g0.memory_reserved_bytes(), kGiB / 2);
  EXPECT_EQ(g0.memory_free_bytes(), 80 * kGiB - 10 * kGiB - kGiB / 2);
  EXPECT_EQ(g0.utilization_gpu_percent(), 37);
  EXPECT_EQ(g0.utilization_memory_percent(), 12);
  EXPECT_EQ(g0.temperature_celsius(), 41);
  EXPECT_DOUBLE_EQ(g0.power_draw_watts(), 123.456);
  EXPECT_DOUBLE_EQ(g0.power_limit_watts(), 700.0);
  EXPECT_EQ(g0.status(), "ok");
  // 20 compute processes (more than the first buffer holds); the graphics
  // entry for the same pid is not listed twice.
  ASSERT_EQ(g0.processes_size(), 20);
  EXPECT_EQ(g0.processes(0).pid(), 4242);
  EXPECT_EQ(g0.processes(0).name(), "lorad-worker");
  EXPECT_EQ(g0.processes(0).used_bytes(), kGiB / 4);
  EXPECT_EQ(g0.processes(19).used_bytes(), 20 * (kGiB / 4));
  EXPECT_EQ(g0.processes(1).name(), "");
  const v1::GpuDevice& g1 = status.gpus(1);
  EXPECT_EQ(g1.index(), 1);
  EXPECT_EQ(g1.uuid(), "GPU-55555555-6666-7777-8888-999999999999");
  EXPECT_EQ(g1.memory_used_bytes(), 30 * kGiB);
  EXPECT_EQ(g1.temperature_celsius(), 42);
  EXPECT_EQ(g1.processes_size(), 0);
  EXPECT_EQ(status.host().total_bytes(), int64_t{16384000} * 1024);
  EXPECT_EQ(status.host().available_bytes(), int64_t{8192000} * 1024);
}

TEST(TelemetryTest, MissingLibraryReportsHostMemoryAsCpu) {
  FakeProc proc;
  DeviceStatusReader::Options options = FakeOptions(proc);
  options.nvml_library = "/nonexistent/libnvidia-ml.so.1";
  DeviceStatusReader reader(options);
  EXPECT_TRUE(absl::IsUnavailable(reader.nvml_status()));
  v1::DeviceStatus status = reader.Read();
  EXPECT_EQ(status.device(), "cpu");
  EXPECT_EQ(status.gpus_size(), 0);
  EXPECT_NE(status.nvml_status().find("/nonexistent/libnvidia-ml.so.1"),
            std::string::npos)
      << status.nvml_status();
  EXPECT_EQ(status.host().total_bytes(), int64_t{16384000} * 1024);
}

TEST(TelemetryTest, InitFailureBecomesAStatus) {
  FakeProc proc;
  ScopedEnv env("FAKE_NVML_INIT_FAIL");
  DeviceStatusReader reader(FakeOptions(proc));
  v1::DeviceStatus status = reader.Read();
  EXPECT_EQ(status.device(), "cpu");
  EXPECT_NE(status.nvml_status().find("Driver Not Loaded"), std::string::npos)
      << status.nvml_status();
}

TEST(TelemetryTest, LibraryWithoutNvmlSymbolsIsRefused) {
  absl::StatusOr<std::unique_ptr<NvmlLibrary>> nvml =
      NvmlLibrary::Open("libm.so.6");
  ASSERT_FALSE(nvml.ok());
  EXPECT_TRUE(absl::IsUnavailable(nvml.status()));
  EXPECT_NE(nvml.status().message().find("nvmlInit_v2"), std::string::npos)
      << nvml.status();
}

TEST(TelemetryTest, FieldErrorIsNamedAndOthersStillRead) {
  FakeProc proc;
  DeviceStatusReader reader(FakeOptions(proc));
  ScopedEnv env("FAKE_NVML_TEMPERATURE_FAIL");
  v1::DeviceStatus status = reader.Read();
  ASSERT_EQ(status.gpus_size(), 2);
  EXPECT_EQ(status.gpus(0).status(), "temperature: Not Supported");
  EXPECT_EQ(status.gpus(0).temperature_celsius(), 0);
  EXPECT_EQ(status.gpus(0).memory_total_bytes(), 80 * kGiB);
  EXPECT_EQ(status.gpus(0).utilization_gpu_percent(), 37);
}

TEST(TelemetryTest, FallsBackToVersionOneMemoryInfo) {
  FakeProc proc;
  DeviceStatusReader reader(FakeOptions(proc));
  ScopedEnv env("FAKE_NVML_NO_MEMORY_V2");
  v1::DeviceStatus status = reader.Read();
  ASSERT_EQ(status.gpus_size(), 2);
  EXPECT_EQ(status.gpus(0).memory_reserved_bytes(), 0);
  EXPECT_EQ(status.gpus(0).memory_used_bytes(), 10 * kGiB);
  EXPECT_EQ(status.gpus(0).memory_free_bytes(), 70 * kGiB);
  EXPECT_EQ(status.gpus(0).status(), "ok");
}

TEST(TelemetryTest, CpuUtilisationIsTheBusyShareBetweenReads) {
  FakeProc proc;
  DeviceStatusReader reader(FakeOptions(proc));
  EXPECT_EQ(reader.Read().host().cpu_utilization_percent(), 0);
  proc.SetCpu(100 + 30, 1000 + 70);
  EXPECT_EQ(reader.Read().host().cpu_utilization_percent(), 30);
  proc.SetCpu(130 + 90, 1070 + 10);
  EXPECT_EQ(reader.Read().host().cpu_utilization_percent(), 90);
}

TEST(TelemetryTest, HostReaders) {
  FakeProc bad(/*with_available=*/false);
  EXPECT_TRUE(absl::IsDataLoss(ReadHostMemory(bad.path()).status()));
  EXPECT_TRUE(absl::IsNotFound(ReadHostMemory("/nonexistent").status()));
  absl::StatusOr<v1::HostMemory> real = ReadHostMemory("/proc");
  ASSERT_TRUE(real.ok()) << real.status();
  EXPECT_GT(real->total_bytes(), real->available_bytes());
  absl::StatusOr<int64_t> rss = ReadProcessRss("/proc", getpid());
  ASSERT_TRUE(rss.ok()) << rss.status();
  EXPECT_GT(*rss, 1 << 20);
  EXPECT_TRUE(absl::IsNotFound(ReadProcessRss(bad.path(), 99999).status()));
}

// On a GPU host: the real driver's numbers agree with nvidia-smi's.
TEST(TelemetryTest, AgreesWithNvidiaSmiOnAGpuHost) {
  DeviceStatusReader reader(DeviceStatusReader::Options{});
  if (!reader.nvml_status().ok()) {
    GTEST_SKIP() << "no NVML here: " << reader.nvml_status();
  }
  FILE* smi = popen(
      "nvidia-smi --query-gpu=index,uuid,name,memory.total,power.limit "
      "--format=csv,noheader,nounits 2>/dev/null",
      "r");
  if (smi == nullptr) GTEST_SKIP() << "no nvidia-smi";
  std::string out;
  char buffer[512];
  while (fgets(buffer, sizeof(buffer), smi) != nullptr) out += buffer;
  pclose(smi);
  if (out.empty()) GTEST_SKIP() << "nvidia-smi printed nothing";
  v1::DeviceStatus status = reader.Read();
  int row = 0;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    std::vector<std::string> cols = absl::StrSplit(line, ", ");
    ASSERT_EQ(cols.size(), 5u) << line;
    ASSERT_LT(row, status.gpus_size());
    const v1::GpuDevice& gpu = status.gpus(row++);
    EXPECT_EQ(std::to_string(gpu.index()), cols[0]);
    EXPECT_EQ(gpu.uuid(), cols[1]);
    EXPECT_EQ(gpu.name(), cols[2]);
    int64_t total_mib = 0;
    ASSERT_TRUE(absl::SimpleAtoi(cols[3], &total_mib)) << cols[3];
    EXPECT_EQ(gpu.memory_total_bytes() / (1 << 20), total_mib);
    double limit = 0;
    if (absl::SimpleAtod(cols[4], &limit)) {
      EXPECT_NEAR(gpu.power_limit_watts(), limit, 1.0);
    }
  }
  EXPECT_EQ(row, status.gpus_size());
}

}  // namespace
}  // namespace lorad::telemetry
