// lorad.v1.Telemetry: device and memory snapshots, once or as a stream.
#ifndef LORAD_SERVER_API_TELEMETRY_SERVICE_H_
#define LORAD_SERVER_API_TELEMETRY_SERVICE_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "jobs/timer_queue.h"
#include "lorad/common/work_queue.h"
#include "lorad/v1/lorad.grpc.pb.h"
#include "telemetry/telemetry_collector.h"

namespace lorad::server {

// Snapshots are collected on the work queue (the collector calls the worker
// and reads /proc and NVML). A Stream has no thread of its own: the shared
// timer queue wakes it when the next snapshot is due, the work queue collects
// it, and the next interval starts when the write has completed.
class TelemetryService final : public v1::Telemetry::CallbackService {
 public:
  static constexpr int kDefaultIntervalMs = 1000;
  static constexpr int kMinIntervalMs = 100;

  // None is owned; all must outlive the service.
  TelemetryService(TelemetryCollector* collector, WorkQueue* work,
                   TimerQueue* timers);
  // Waits for the streams still running (the server has cancelled them).
  ~TelemetryService() override;

  grpc::ServerUnaryReactor* Snapshot(grpc::CallbackServerContext* context,
                                     const v1::GetTelemetryRequest* request,
                                     v1::TelemetrySnapshot* response) override;
  grpc::ServerWriteReactor<v1::TelemetrySnapshot>* Stream(
      grpc::CallbackServerContext* context,
      const v1::StreamTelemetryRequest* request) override;

  TelemetryCollector* collector() const { return collector_; }
  WorkQueue* work() const { return work_; }
  TimerQueue* timers() const { return timers_; }
  void StreamStarted();
  void StreamEnded();

 private:
  TelemetryCollector* const collector_;
  WorkQueue* const work_;
  TimerQueue* const timers_;
  absl::Mutex mu_;
  int streams_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_API_TELEMETRY_SERVICE_H_
