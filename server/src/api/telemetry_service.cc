#include "api/telemetry_service.h"

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace lorad::server {
namespace {

class TelemetryStreamReactor final
    : public grpc::ServerWriteReactor<v1::TelemetrySnapshot> {
 public:
  TelemetryStreamReactor(TelemetryService* service, absl::Duration interval,
                         int count)
      : service_(service), interval_(interval), count_(count) {
    service_->StreamStarted();
    std::thread([this] { Run(); }).detach();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) cancelled_ = true;
  }
  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }
  void OnDone() override { delete this; }

 private:
  void Run() {
    TelemetryService* service = service_;
    grpc::Status status = Pump();
    // Finish may lead to OnDone and `delete this`.
    Finish(status);
    service->StreamEnded();
  }

  grpc::Status Pump() {
    for (int sent = 0; count_ == 0 || sent < count_; ++sent) {
      if (sent > 0) {
        absl::MutexLock lock(&mu_);
        auto cancelled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return cancelled_;
        };
        mu_.AwaitWithTimeout(absl::Condition(&cancelled), interval_);
        if (cancelled_) return grpc::Status::CANCELLED;
      }
      snapshot_ = service_->collector()->Collect();
      {
        absl::MutexLock lock(&mu_);
        if (cancelled_) return grpc::Status::CANCELLED;
        writing_ = true;
      }
      StartWrite(&snapshot_);
      absl::MutexLock lock(&mu_);
      auto written = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !writing_;
      };
      mu_.Await(absl::Condition(&written));
      if (cancelled_) return grpc::Status::CANCELLED;
    }
    return grpc::Status::OK;
  }

  TelemetryService* const service_;
  const absl::Duration interval_;
  const int count_;
  v1::TelemetrySnapshot snapshot_;
  absl::Mutex mu_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

TelemetryService::TelemetryService(TelemetryCollector* collector,
                                   WorkQueue* work)
    : collector_(collector), work_(work) {}

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
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  work_->Run([this, reactor, response] {
    *response = collector_->Collect();
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerWriteReactor<v1::TelemetrySnapshot>* TelemetryService::Stream(
    grpc::CallbackServerContext* /*context*/,
    const v1::StreamTelemetryRequest* request) {
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
