// Builds lorad.v1.TelemetrySnapshot: the machine's devices (NVML or host),
// the worker's memory (Worker.GetMemory), the lorad processes' RSS and the
// running job's memory breakdown.
#ifndef LORAD_SERVER_TELEMETRY_TELEMETRY_COLLECTOR_H_
#define LORAD_SERVER_TELEMETRY_TELEMETRY_COLLECTOR_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lorad/telemetry/device_status.h"
#include "lorad/v1/lorad.pb.h"
#include "store/job_store.h"
#include "telemetry/device_room.h"
#include "worker_link/worker_client.h"

namespace lorad::server {

// This class is thread-safe; Collect() blocks for at most about
// worker_deadline (the worker call) plus the reads of /proc and NVML.
class TelemetryCollector {
 public:
  struct Options {
    telemetry::DeviceStatusReader::Options devices;
    absl::Duration worker_deadline = absl::Seconds(2);
    // The --device the worker was started with (auto | cpu | cuda).
    std::string worker_device = "auto";
    // Room() reads the devices again when the latest Collect() is older.
    absl::Duration room_max_age = absl::Seconds(1);
  };

  // Neither pointer is owned; both must outlive the collector.
  TelemetryCollector(Options options, JobStore* store, WorkerClient* worker);

  // What the worker call found, for the metrics.
  struct WorkerInfo {
    bool up = false;
    int64_t generation = 0;  // of the worker that answered; 0 when none
  };
  // Never fails: what cannot be read is named in the snapshot's status
  // fields and left empty.
  v1::TelemetrySnapshot Collect(WorkerInfo* worker = nullptr);

  // The room on the worker's device for admission control, from the latest
  // Collect() when it is younger than room_max_age; otherwise the devices
  // are read now (NVML / host memory, no worker call) and what the worker
  // held comes from the latest Collect() (nothing before the first). Never
  // fails: an unreadable device gives a room that is not known().
  DeviceRoom Room();

  WorkerClient* worker() const { return worker_; }
  JobStore* store() const { return store_; }

 private:
  const Options options_;
  JobStore* const store_;
  WorkerClient* const worker_;
  telemetry::DeviceStatusReader devices_;
  absl::Mutex latest_mu_;
  v1::TelemetrySnapshot latest_ ABSL_GUARDED_BY(latest_mu_);
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_TELEMETRY_TELEMETRY_COLLECTOR_H_
