#include "telemetry/telemetry_collector.h"

#include <unistd.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "grpcpp/client_context.h"
#include "lorad/telemetry/host_stats.h"
#include "worker_link/wire.h"

namespace lorad::server {

TelemetryCollector::TelemetryCollector(Options options, JobStore* store,
                                       WorkerSupervisor* supervisor)
    : options_(std::move(options)),
      store_(store),
      supervisor_(supervisor),
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

  absl::StatusOr<WorkerHandle> worker =
      supervisor_->WaitReady(absl::ZeroDuration());
  if (!worker.ok()) {
    snapshot.set_worker_status(std::string(worker.status().message()));
  } else {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         absl::ToChronoMilliseconds(options_.worker_deadline));
    worker::v1::GetMemoryResponse memory;
    grpc::Status status = worker->stub->GetMemory(
        &context, worker::v1::GetMemoryRequest(), &memory);
    if (status.ok()) {
      snapshot.set_worker_status("ok");
      *snapshot.mutable_worker_memory() = ToPublic(memory.memory());
      if (worker_info != nullptr) {
        worker_info->up = true;
        worker_info->generation = worker->generation;
      }
    } else {
      snapshot.set_worker_status("worker GetMemory: " + status.error_message());
    }
    v1::ProcessMemory* process = snapshot.add_processes();
    process->set_role("worker");
    process->set_pid(worker->pid);
    process->set_rss_bytes(
        telemetry::ReadProcessRss(proc, worker->pid).value_or(0));
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
  return snapshot;
}

}  // namespace lorad::server
