#include "api/telemetry_service.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "auth/call_gate.h"

namespace lorad::server {
namespace {

class TelemetryStreamReactor final
    : public grpc::ServerWriteReactor<v1::TelemetrySnapshot> {
 public:
  TelemetryStreamReactor(TelemetryService* service, absl::Duration interval,
                         int count)
      : service_(service), interval_(interval), count_(count) {
    service_->StreamStarted();
    service_->work()->Run([this] { Collect(); });
  }

  void OnWriteDone(bool ok) override {
    ++sent_;
    bool finish = false;
    grpc::Status status = grpc::Status::OK;
    {
      absl::MutexLock lock(&mu_);
      if (!ok || cancelled_) {
        finish = true;
        status = grpc::Status::CANCELLED;
      } else if (count_ > 0 && sent_ >= count_) {
        finish = true;
      } else {
        tick_ = service_->timers()->Schedule(absl::Now() + interval_,
                                             [this] { Tick(); });
      }
    }
    if (finish) Finish(status);
  }

  void OnCancel() override {
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      // A tick that has not started never will; one that has finishes.
      if (tick_ != 0 && service_->timers()->Cancel(tick_)) {
        tick_ = 0;
        finish = true;
      }
    }
    if (finish) Finish(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    service_->StreamEnded();
    delete this;
  }

 private:
  // On the timer's thread: hands the collection to the work queue.
  void Tick() {
    {
      absl::MutexLock lock(&mu_);
      tick_ = 0;
      if (!cancelled_) {
        service_->work()->Run([this] { Collect(); });
        return;
      }
    }
    Finish(grpc::Status::CANCELLED);
  }

  // On the work queue.
  void Collect() {
    snapshot_ = service_->collector()->Collect();
    bool cancelled;
    {
      absl::MutexLock lock(&mu_);
      cancelled = cancelled_;
    }
    // Not under mu_: OnWriteDone may run inside StartWrite. A cancel that
    // comes meanwhile fails the write, and OnWriteDone finishes.
    if (cancelled) {
      Finish(grpc::Status::CANCELLED);
    } else {
      StartWrite(&snapshot_);
    }
  }

  TelemetryService* const service_;
  const absl::Duration interval_;
  const int count_;
  int sent_ = 0;  // only in OnWriteDone
  v1::TelemetrySnapshot snapshot_;
  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  // The scheduled tick, 0 when none is pending.
  TimerQueue::Id tick_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

TelemetryService::TelemetryService(TelemetryCollector* collector,
                                   WorkQueue* work, TimerQueue* timers)
    : collector_(collector), work_(work), timers_(timers) {}

TelemetryService::~TelemetryService() {
  absl::MutexLock lock(&mu_);
  auto idle = [this]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return streams_ == 0; };
  mu_.Await(absl::Condition(&idle));
}

grpc::ServerUnaryReactor* TelemetryService::Snapshot(
    grpc::CallbackServerContext* context,
    const v1::GetTelemetryRequest* /*request*/,
    v1::TelemetrySnapshot* response) {
  if (auto* refused = auth::RefuseUnary(context)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  work_->Run([this, reactor, response] {
    *response = collector_->Collect();
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerWriteReactor<v1::TelemetrySnapshot>* TelemetryService::Stream(
    grpc::CallbackServerContext* context,
    const v1::StreamTelemetryRequest* request) {
  if (auto* refused = auth::RefuseWriter<v1::TelemetrySnapshot>(context))
    return refused;
  if (request->interval_ms() < 0 || request->count() < 0) {
    class Refused final
        : public grpc::ServerWriteReactor<v1::TelemetrySnapshot> {
     public:
      explicit Refused(const std::string& why) {
        Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, why));
      }
      void OnDone() override { delete this; }
    };
    return new Refused(
        absl::StrCat("interval_ms and count must not be negative (got ",
                     request->interval_ms(), " and ", request->count(), ")"));
  }
  int interval_ms =
      request->interval_ms() == 0 ? kDefaultIntervalMs : request->interval_ms();
  interval_ms = std::max(interval_ms, kMinIntervalMs);
  return new TelemetryStreamReactor(this, absl::Milliseconds(interval_ms),
                                    request->count());
}

void TelemetryService::StreamStarted() {
  absl::MutexLock lock(&mu_);
  ++streams_;
}

void TelemetryService::StreamEnded() {
  absl::MutexLock lock(&mu_);
  --streams_;
}

}  // namespace lorad::server
