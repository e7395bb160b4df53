// Builds lorad.v1.TelemetrySnapshot: the machine's devices (NVML or host),
// the worker's memory (Worker.GetMemory), the lorad processes' RSS and the
// running job's memory breakdown.
#ifndef LORAD_SERVER_TELEMETRY_TELEMETRY_COLLECTOR_H_
#define LORAD_SERVER_TELEMETRY_TELEMETRY_COLLECTOR_H_

#include <cstdint>
#include <memory>

#include "absl/time/time.h"
#include "lorad/telemetry/device_status.h"
#include "lorad/v1/lorad.pb.h"
#include "store/job_store.h"
#include "worker_link/worker_client.h"

namespace lorad::server {

// This class is thread-safe; Collect() blocks for at most about
// worker_deadline (the worker call) plus the reads of /proc and NVML.
class TelemetryCollector {
 public:
  struct Options {
    telemetry::DeviceStatusReader::Options devices;
    absl::Duration worker_deadline = absl::Seconds(2);
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

  WorkerClient* worker() const { return worker_; }
  JobStore* store() const { return store_; }

 private:
  const Options options_;
  JobStore* const store_;
  WorkerClient* const worker_;
  telemetry::DeviceStatusReader devices_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_TELEMETRY_TELEMETRY_COLLECTOR_H_
