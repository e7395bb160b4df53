#include "telemetry/telemetry_collector.h"

#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "lorad/telemetry/host_stats.h"
#include "worker_link/wire.h"

namespace lorad::server {

TelemetryCollector::TelemetryCollector(Options options, JobStore* store,
                                       WorkerClient* worker)
    : options_(std::move(options)),
      store_(store),
      worker_(worker),
      devices_(options_.devices) {}

v1::TelemetrySnapshot TelemetryCollector::Collect(WorkerInfo* worker_info) {
  v1::TelemetrySnapshot snapshot;
  snapshot.set_time_unix_ms(absl::ToUnixMillis(absl::Now()));
  *snapshot.mutable_devices() = devices_.Read();
  const std::string& proc = options_.devices.proc_dir;

  v1::ProcessMemory* daemon = snapshot.add_processes();
  daemon->set_role("daemon");
  daemon->set_pid(getpid());
  daemon->set_rss_bytes(telemetry::ReadProcessRss(proc, getpid()).value_or(0));

  CallOptions call;
  call.ready_wait = absl::ZeroDuration();
  call.deadline = options_.worker_deadline;
  WorkerHandle worker;
  call.worker = &worker;
  absl::StatusOr<worker::v1::GetMemoryResponse> memory =
      worker_->GetMemory(call);
  if (memory.ok()) {
    snapshot.set_worker_status("ok");
    *snapshot.mutable_worker_memory() = ToPublic(memory->memory());
    if (worker_info != nullptr) {
      worker_info->up = true;
      worker_info->generation = worker.generation;
    }
  } else if (worker.pid > 0) {
    snapshot.set_worker_status(
        absl::StrCat("worker GetMemory: ", memory.status().message()));
  } else {
    snapshot.set_worker_status(std::string(memory.status().message()));
  }
  if (worker.pid > 0) {
    v1::ProcessMemory* process = snapshot.add_processes();
    process->set_role("worker");
    process->set_pid(worker.pid);
    process->set_rss_bytes(
        telemetry::ReadProcessRss(proc, worker.pid).value_or(0));
  }

  v1::MemoryBreakdown* breakdown = snapshot.mutable_breakdown();
  absl::StatusOr<std::vector<v1::FineTuneJob>> running =
      store_->JobsInStates({v1::RUNNING});
  if (running.ok() && !running->empty()) {
    const v1::FineTuneJob& job = running->front();
    const v1::MemoryEstimate& estimate = job.memory_estimate();
    breakdown->set_job_id(job.id());
    breakdown->set_base_bytes(estimate.base_bytes());
    breakdown->set_adapter_bytes(estimate.adapter_bytes());
    breakdown->set_optimizer_bytes(estimate.optimizer_bytes());
    breakdown->set_gradient_bytes(estimate.gradient_bytes());
    breakdown->set_activation_bytes(estimate.activation_bytes());
  }
  breakdown->set_allocator_allocated_bytes(
      snapshot.worker_memory().allocator_allocated_bytes());
  breakdown->set_allocator_reserved_bytes(
      snapshot.worker_memory().allocator_reserved_bytes());
  absl::MutexLock lock(&latest_mu_);
  latest_ = snapshot;
  return snapshot;
}

DeviceRoom TelemetryCollector::Room() {
  v1::TelemetrySnapshot now;
  {
    absl::MutexLock lock(&latest_mu_);
    now = latest_;
  }
  if (absl::Now() - absl::FromUnixMillis(now.time_unix_ms()) >
      options_.room_max_age) {
    *now.mutable_devices() = devices_.Read();
  }
  return DeviceRoomOf(now, options_.worker_device);
}

}  // namespace lorad::server
