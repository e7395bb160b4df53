// lorad's Prometheus metrics: names, units, bounded labels, series removal.
#include "telemetry/metrics.h"

#include <string>

#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace lorad::server {
namespace {

std::string Text(Metrics& metrics) {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(metrics.registry()->Collect());
}

bool Has(const std::string& text, const std::string& line) {
  return text.find(line) != std::string::npos;
}

TEST(MetricsTest, GenerateRequestsCapAdapterLabels) {
  Metrics metrics;
  metrics.RecordGenerate("", "ok", 0.02, 0.5, 10);
  for (int i = 0; i < Metrics::kMaxAdapterLabels + 5; ++i) {
    metrics.RecordGenerate("a" + std::to_string(i), "ok", 0.01, 0.1, 2);
  }
  metrics.RecordGenerate("a0", "not_found", -1, 0.001, 0);
  const std::string text = Text(metrics);
  EXPECT_TRUE(Has(
      text, "lorad_generate_requests_total{adapter=\"base\",result=\"ok\"} 1"));
  EXPECT_TRUE(Has(text, "lorad_generated_tokens_total{adapter=\"base\"} 10"));
  EXPECT_TRUE(Has(
      text, "lorad_generate_requests_total{adapter=\"a19\",result=\"ok\"} 1"));
  EXPECT_FALSE(Has(text, "adapter=\"a20\""));
  EXPECT_TRUE(
      Has(text,
          "lorad_generate_requests_total{adapter=\"other\",result=\"ok\"} 5"));
  EXPECT_TRUE(Has(text, "lorad_generated_tokens_total{adapter=\"other\"} 10"));
  EXPECT_TRUE(Has(
      text,
      "lorad_generate_requests_total{adapter=\"a0\",result=\"not_found\"} 1"));
  // 27 requests timed; 26 had a first token.
  EXPECT_TRUE(Has(text, "lorad_generate_request_duration_seconds_count 27"));
  EXPECT_TRUE(Has(text, "lorad_generate_time_to_first_token_seconds_count 26"));
}

TEST(MetricsTest, RunningJobSeriesGoAwayWhenTheJobStops) {
  Metrics metrics;
  Metrics::RunningJob job;
  job.id = "ftjob-7";
  job.step = 12;
  job.total_steps = 100;
  job.loss = 1.5;
  job.tokens_per_second = 2048;
  metrics.SetRunningJobs({{job.id, job}});
  std::string text = Text(metrics);
  EXPECT_TRUE(Has(text, "lorad_job_step{job_id=\"ftjob-7\"} 12"));
  EXPECT_TRUE(Has(text, "lorad_job_loss{job_id=\"ftjob-7\"} 1.5"));
  EXPECT_TRUE(
      Has(text, "lorad_job_tokens_per_second{job_id=\"ftjob-7\"} 2048"));
  EXPECT_TRUE(Has(text, "lorad_job_eval_loss{job_id=\"ftjob-7\"} Nan"));
  metrics.SetRunningJobs({});
  text = Text(metrics);
  EXPECT_FALSE(Has(text, "ftjob-7"));
}

TEST(MetricsTest, DpoJobsHaveRewardSeriesAndSftJobsDoNot) {
  Metrics metrics;
  Metrics::RunningJob dpo;
  dpo.id = "ftjob-dpo";
  dpo.dpo = true;
  Metrics::RunningJob sft;
  sft.id = "ftjob-sft";
  metrics.SetRunningJobs({{dpo.id, dpo}, {sft.id, sft}});
  std::string text = Text(metrics);
  // Before the first step: a gap, not a zero.
  EXPECT_TRUE(
      Has(text, "lorad_job_dpo_reward_margin{job_id=\"ftjob-dpo\"} Nan"));
  EXPECT_FALSE(Has(text, "lorad_job_dpo_reward_margin{job_id=\"ftjob-sft\"}"));
  EXPECT_FALSE(
      Has(text, "lorad_job_dpo_reward_accuracy_ratio{job_id=\"ftjob-sft\"}"));

  dpo.dpo_reward_margin = 0.25;
  dpo.dpo_reward_accuracy = 0.75;
  metrics.SetRunningJobs({{dpo.id, dpo}, {sft.id, sft}});
  text = Text(metrics);
  EXPECT_TRUE(
      Has(text, "lorad_job_dpo_reward_margin{job_id=\"ftjob-dpo\"} 0.25"));
  EXPECT_TRUE(Has(
      text, "lorad_job_dpo_reward_accuracy_ratio{job_id=\"ftjob-dpo\"} 0.75"));
  EXPECT_TRUE(Has(text, "lorad_job_loss{job_id=\"ftjob-sft\"}"));

  // The DPO job stops; the SFT one goes on.
  metrics.SetRunningJobs({{sft.id, sft}});
  text = Text(metrics);
  EXPECT_FALSE(Has(text, "ftjob-dpo"));
  EXPECT_TRUE(Has(text, "lorad_job_loss{job_id=\"ftjob-sft\"}"));
}

TEST(MetricsTest, JobsWorkerAndDevices) {
  Metrics metrics;
  std::string text = Text(metrics);
  EXPECT_TRUE(Has(text, "lorad_jobs{state=\"failed\"} 0"));
  EXPECT_TRUE(Has(text, "lorad_adapters_resident{where=\"device\"} 0"));
  metrics.SetJobsByState({{v1::QUEUED, 3}, {v1::FAILED, 1}});
  metrics.SetWorker(true, 2);
  metrics.SetWorker(true, 2);  // seen already: not counted again
  metrics.SetAdaptersResident(4, 1);
  v1::TelemetrySnapshot snapshot;
  v1::GpuDevice* gpu = snapshot.mutable_devices()->add_gpus();
  gpu->set_index(1);
  gpu->set_memory_total_bytes(80);
  gpu->set_memory_used_bytes(60);
  gpu->set_utilization_gpu_percent(50);
  v1::GpuProcess* worker_on_gpu = gpu->add_processes();
  worker_on_gpu->set_pid(4242);
  worker_on_gpu->set_used_bytes(7000);
  gpu->add_processes()->set_pid(1);  // not lorad's
  v1::ProcessMemory* worker = snapshot.add_processes();
  worker->set_role("worker");
  worker->set_pid(4242);
  worker->set_rss_bytes(900);
  snapshot.set_worker_status("ok");
  snapshot.mutable_worker_memory()->set_device("cuda:1");
  snapshot.mutable_worker_memory()->set_allocator_reserved_bytes(33);
  metrics.UpdateFromSnapshot(snapshot);
  text = Text(metrics);
  EXPECT_TRUE(Has(text, "lorad_jobs{state=\"queued\"} 3"));
  EXPECT_TRUE(Has(text, "lorad_queue_depth{queue=\"jobs\"} 3"));
  EXPECT_TRUE(Has(text, "lorad_jobs{state=\"failed\"} 1"));
  EXPECT_TRUE(Has(text, "lorad_worker_restarts_total 2"));
  EXPECT_TRUE(Has(text, "lorad_worker_up 1"));
  EXPECT_TRUE(Has(text, "lorad_adapters_resident{where=\"device\"} 4"));
  EXPECT_TRUE(
      Has(text, "lorad_device_memory_used_bytes{device=\"cuda:1\"} 60"));
  EXPECT_TRUE(
      Has(text, "lorad_device_utilization_ratio{device=\"cuda:1\"} 0.5"));
  EXPECT_TRUE(
      Has(text, "lorad_allocator_reserved_bytes{device=\"cuda:1\"} 33"));
  EXPECT_TRUE(
      Has(text, "lorad_process_resident_memory_bytes{process=\"worker\"} 900"));
  EXPECT_TRUE(Has(text,
                  "lorad_process_device_memory_used_bytes{device=\"cuda:1\","
                  "process=\"worker\"} 7000"));
}

}  // namespace
}  // namespace lorad::server
