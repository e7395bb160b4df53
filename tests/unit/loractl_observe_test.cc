// loractl smi's table, the PNG encoder and the charts of loractl plot/watch.
#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "chart.h"
#include "gtest/gtest.h"
#include "png.h"
#include "smi_format.h"

namespace lorad::client {
namespace {

uint32_t U32(const std::string& s, size_t at) {
  return (uint32_t{static_cast<uint8_t>(s[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(s[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(s[at + 2])} << 8) |
         uint32_t{static_cast<uint8_t>(s[at + 3])};
}

// Decodes what EncodePng writes (RGB, filter 0), checking every chunk's CRC.
std::vector<uint8_t> DecodePng(const std::string& png, int* width,
                               int* height) {
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  std::string idat;
  size_t at = 8;
  while (at + 12 <= png.size()) {
    const uint32_t length = U32(png, at);
    const std::string type = png.substr(at + 4, 4);
    const std::string data = png.substr(at + 8, length);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(png.data() + at + 4),
                length + 4);
    EXPECT_EQ(U32(png, at + 8 + length), crc) << type;
    if (type == "IHDR") {
      *width = static_cast<int>(U32(data, 0));
      *height = static_cast<int>(U32(data, 4));
      EXPECT_EQ(data[8], 8);  // bit depth
      EXPECT_EQ(data[9], 2);  // RGB
    } else if (type == "IDAT") {
      idat += data;
    }
    at += 12 + length;
  }
  EXPECT_EQ(at, png.size());
  std::vector<uint8_t> raw(static_cast<size_t>(*height) * (1 + *width * 3));
  uLongf raw_size = raw.size();
  EXPECT_EQ(
      uncompress(raw.data(), &raw_size,
                 reinterpret_cast<const Bytef*>(idat.data()), idat.size()),
      Z_OK);
  EXPECT_EQ(raw_size, raw.size());
  std::vector<uint8_t> rgb;
  for (int y = 0; y < *height; ++y) {
    const uint8_t* row = &raw[static_cast<size_t>(y) * (1 + *width * 3)];
    EXPECT_EQ(row[0], 0);
    rgb.insert(rgb.end(), row + 1, row + 1 + *width * 3);
  }
  return rgb;
}

TEST(PngTest, RoundTripsPixels) {
  std::vector<uint8_t> rgb;
  for (int i = 0; i < 7 * 5; ++i) {
    rgb.push_back(static_cast<uint8_t>(i * 7));
    rgb.push_back(static_cast<uint8_t>(255 - i));
    rgb.push_back(static_cast<uint8_t>(i % 3 * 100));
  }
  absl::StatusOr<std::string> png = EncodePng(7, 5, rgb);
  ASSERT_TRUE(png.ok()) << png.status();
  int width = 0, height = 0;
  EXPECT_EQ(DecodePng(*png, &width, &height), rgb);
  EXPECT_EQ(width, 7);
  EXPECT_EQ(height, 5);
  EXPECT_FALSE(EncodePng(7, 5, std::vector<uint8_t>(10)).ok());
  EXPECT_FALSE(EncodePng(0, 5, {}).ok());
}

int CountColor(const std::vector<uint8_t>& rgb, uint8_t r, uint8_t g,
               uint8_t b) {
  int n = 0;
  for (size_t i = 0; i + 2 < rgb.size(); i += 3) {
    n += rgb[i] == r && rgb[i + 1] == g && rgb[i + 2] == b;
  }
  return n;
}

TEST(ChartTest, PngDrawsEveryCurve) {
  std::vector<v1::JobEvent> events;
  for (int step = 1; step <= 50; ++step) {
    v1::JobEvent e;
    e.mutable_step()->set_step(step);
    e.mutable_step()->set_loss(3.0f / step);
    e.mutable_memory()->set_used_bytes(int64_t{100 + step} << 20);
    e.mutable_memory()->set_rss_bytes(int64_t{100 + step} << 20);
    events.push_back(e);
    if (step % 10 == 0) {
      v1::JobEvent eval;
      eval.mutable_eval()->set_step(step);
      eval.mutable_eval()->set_eval_loss(4.0f / step);
      events.push_back(eval);
    }
  }
  JobCurves curves = CurvesFromEvents(events);
  ASSERT_EQ(curves.loss.size(), 50u);
  ASSERT_EQ(curves.eval_loss.size(), 5u);
  ASSERT_EQ(curves.memory_mib.size(), 50u);
  EXPECT_DOUBLE_EQ(curves.memory_mib.back().second, 150.0);
  absl::StatusOr<std::string> png = RenderCurvesPng(curves, "job", 640, 480);
  ASSERT_TRUE(png.ok()) << png.status();
  int width = 0, height = 0;
  std::vector<uint8_t> rgb = DecodePng(*png, &width, &height);
  EXPECT_EQ(width, 640);
  EXPECT_EQ(height, 480);
  EXPECT_GT(CountColor(rgb, 31, 119, 180), 200);  // loss
  EXPECT_GT(CountColor(rgb, 214, 39, 40), 100);   // eval loss
  EXPECT_GT(CountColor(rgb, 44, 160, 44), 200);   // memory
  EXPECT_FALSE(RenderCurvesPng(JobCurves{}, "empty").ok());
}

TEST(ChartTest, TextChartFollowsTheCurve) {
  Curve loss;
  for (int step = 0; step < 20; ++step) loss.emplace_back(step, 20 - step);
  std::string chart = RenderTextChart(loss, 20, 10);
  std::vector<std::string> lines = absl::StrSplit(chart, '\n');
  ASSERT_GE(lines.size(), 12u);
  EXPECT_EQ(lines[0], "loss");
  // Falling loss: the first column's point is on the top row, the last
  // column's on the bottom row.
  EXPECT_EQ(lines[1].find('*'), lines[1].find('|') + 1);
  EXPECT_EQ(lines[10].rfind('*'), lines[10].size() - 1);
  EXPECT_NE(lines[1].find("20"), std::string::npos);
  EXPECT_EQ(RenderTextChart({}), "");
}

TEST(SmiFormatTest, GpuRowsProcessesAndBreakdown) {
  v1::TelemetrySnapshot s;
  s.set_time_unix_ms(1700000000000);
  s.mutable_devices()->set_device("cuda");
  s.mutable_devices()->set_driver_version("550.54.15");
  s.mutable_devices()->set_nvml_status("ok");
  v1::GpuDevice* gpu = s.mutable_devices()->add_gpus();
  gpu->set_index(0);
  gpu->set_name("NVIDIA H100 80GB HBM3");
  gpu->set_uuid("GPU-0123");
  gpu->set_memory_total_bytes(int64_t{81920} << 20);
  gpu->set_memory_used_bytes(int64_t{10240} << 20);
  gpu->set_utilization_gpu_percent(37);
  gpu->set_temperature_celsius(41);
  gpu->set_power_draw_watts(123.4);
  gpu->set_power_limit_watts(700);
  gpu->set_status("ok");
  v1::GpuProcess* p = gpu->add_processes();
  p->set_pid(4242);
  p->set_name("lorad-worker");
  p->set_used_bytes(int64_t{2048} << 20);
  s.set_worker_status("ok");
  s.mutable_worker_memory()->set_device("cuda:0");
  s.mutable_worker_memory()->set_allocator_allocated_bytes(int64_t{900} << 20);
  s.mutable_breakdown()->set_job_id("ftjob-1");
  s.mutable_breakdown()->set_base_bytes(int64_t{700} << 20);
  s.mutable_breakdown()->set_activation_bytes(int64_t{30} << 20);
  s.mutable_breakdown()->set_kv_cache_bytes(int64_t{2} << 20);
  const std::string out = FormatSmi(s, absl::UTCTimeZone());
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  EXPECT_EQ(lines[0], "Tue Nov 14 22:13:20 2023");
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].size(), 91u) << "line " << i << ": " << lines[i];
  }
  for (const char* want :
       {"Driver Version: 550.54.15", "NVIDIA H100 80GB HBM3",
        "10240MiB / 81920MiB", "37%", "41C", "123W / 700W", "4242",
        "lorad-worker", "2048MiB", "allocated 900MiB", "job ftjob-1",
        "base weights 700MiB", "activations/KV cache 32MiB"}) {
    EXPECT_NE(out.find(want), std::string::npos) << want << "\n" << out;
  }
}

TEST(SmiFormatTest, CpuShowsHostMemoryAndLoradProcesses) {
  v1::TelemetrySnapshot s;
  s.mutable_devices()->set_device("cpu");
  s.mutable_devices()->set_nvml_status("NVML not available: no driver");
  s.mutable_devices()->mutable_host()->set_total_bytes(int64_t{24000} << 20);
  s.mutable_devices()->mutable_host()->set_available_bytes(int64_t{20000}
                                                           << 20);
  v1::ProcessMemory* worker = s.add_processes();
  worker->set_role("worker");
  worker->set_pid(77);
  worker->set_rss_bytes(int64_t{380} << 20);
  s.set_worker_status("worker GetMemory: unavailable");
  const std::string out = FormatSmi(s, absl::UTCTimeZone());
  for (const char* want :
       {"cpu (host memory", "4000MiB / 24000MiB", "NVML not available",
        "lorad worker", "380MiB", "Host RSS", "worker: worker GetMemory",
        "no job running"}) {
    EXPECT_NE(out.find(want), std::string::npos) << want << "\n" << out;
  }
}

}  // namespace
}  // namespace lorad::client
