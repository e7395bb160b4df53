#include "api/batch_service.h"

#include <algorithm>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "api/grpc_status.h"
#include "api/upload_reactor.h"
#include "api/watch_job_reactor.h"
#include "auth/call_gate.h"
#include "auth/ownership.h"
#include "jobs/job_validation.h"
#include "lorad/common/status_macros.h"

namespace lorad::server {
namespace {

constexpr int kResultsPage = 1000;

std::string NewBatchId() {
  std::random_device random;
  uint64_t bits = (uint64_t{random()} << 32) | random();
  return absl::StrFormat("batch-%012x", bits & ((uint64_t{1} << 48) - 1));
}

// Collects the upload; parsing and storing happen on the work queue.
class CreateReactor final
    : public BufferedUploadReactor<v1::CreateBatchJobRequest, v1::BatchJob> {
 public:
  CreateReactor(BatchService* service, WorkQueue* work, int64_t max_bytes,
                v1::BatchJob* response, auth::Ownership* owners,
                auth::Identity caller)
      : BufferedUploadReactor(work, max_bytes, response),
        service_(service),
        owners_(owners),
        caller_(std::move(caller)) {
    Begin();
  }

 private:
  absl::StatusOr<v1::BatchJob> Ingest() override {
    return auth::Claimed(owners_, caller_, auth::Kind::kBatchJob,
                         service_->Create(header(), contents()));
  }

  BatchService* const service_;
  auth::Ownership* const owners_;
  const auth::Identity caller_;
};

// Streams the stored results in input order, a page at a time.
class ResultsReactor final
    : public grpc::ServerWriteReactor<v1::BatchResultsChunk> {
 public:
  ResultsReactor(BatchJobStore* store, std::string job_id)
      : store_(store), job_id_(std::move(job_id)) {
    absl::StatusOr<v1::BatchJob> job = store_->GetBatchJob(job_id_);
    if (!job.ok()) {
      Finish(ToGrpcStatus(job.status()));
      return;
    }
    Next();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
      return;
    }
    Next();
  }

  void OnDone() override { delete this; }

 private:
  void Next() {
    absl::StatusOr<std::vector<std::pair<int64_t, std::string>>> page =
        store_->BatchResults(job_id_, after_, kResultsPage);
    if (!page.ok()) {
      Finish(ToGrpcStatus(page.status()));
      return;
    }
    if (page->empty()) {
      Finish(grpc::Status::OK);
      return;
    }
    chunk_.Clear();
    std::string* data = chunk_.mutable_data();
    for (const auto& [index, json] : *page) {
      absl::StrAppend(data, json, "\n");
      after_ = index;
    }
    StartWrite(&chunk_);
  }

  BatchJobStore* const store_;
  const std::string job_id_;
  int64_t after_ = -1;
  v1::BatchResultsChunk chunk_;
};

}  // namespace

BatchService::BatchService(const DaemonOptions& options, BatchJobStore* store,
                           BatchJournal* journal, EventHub* hub,
                           BatchRunner* runner, InferenceService* inference)
    : layout_(options.data_dir),
      max_upload_bytes_(options.max_upload_bytes),
      env_(options.env),
      store_(store),
      journal_(journal),
      hub_(hub),
      runner_(runner),
      inference_(inference) {}

absl::StatusOr<v1::BatchJob> BatchService::Create(
    const v1::BatchJobHeader& header, const std::string& contents) {
  LORAD_RETURN_IF_ERROR(ValidateFilename("header.filename", header.filename()));
  const std::string name =
      header.filename().empty() ? "batch" : header.filename();
  absl::StatusOr<std::vector<BatchLine>> lines =
      ParseBatchInput(contents, header.defaults());
  if (!lines.ok()) {
    return absl::Status(lines.status().code(),
                        absl::StrCat(name, ": ", lines.status().message()));
  }
  // Every adapter the batch names must be servable now, and the largest
  // requests must fit the device batch_concurrency at a time.
  absl::flat_hash_map<std::string, Admission::BatchBase> base_of_adapter;
  for (const BatchLine& line : *lines) {
    if (base_of_adapter.contains(line.request.adapter())) continue;
    absl::StatusOr<worker::v1::GenerateRequest> resolved =
        inference_->Resolve(line.request);
    if (!resolved.ok()) {
      return absl::Status(
          resolved.status().code(),
          absl::StrCat(name, ": line ", line.line,
                       ": field \"adapter\": ", resolved.status().message()));
    }
    base_of_adapter[line.request.adapter()] = {resolved->model(),
                                               resolved->quantization()};
  }
  if (const Admission* admission = inference_->admission();
      admission != nullptr) {
    absl::Status fits = admission->CheckBatch(*lines, base_of_adapter);
    if (!fits.ok()) {
      return absl::Status(fits.code(),
                          absl::StrCat(name, ": ", fits.message()));
    }
  }
  v1::BatchJob job;
  job.set_id(NewBatchId());
  job.set_filename(header.filename());
  job.set_num_requests(static_cast<int64_t>(lines->size()));
  job.set_created_at_unix(absl::ToUnixSeconds(env_->Now()));
  *job.mutable_defaults() = header.defaults();
  job.mutable_defaults()->clear_prompt();
  job.mutable_defaults()->clear_messages();
  const std::string path = BatchInputPath(layout_, job.id());
  const std::string dir = path.substr(0, path.rfind('/'));
  LORAD_RETURN_IF_ERROR(env_->CreateDirs(dir));
  if (absl::Status written = env_->WriteFileAtomic(path, contents);
      !written.ok()) {
    env_->RemoveTree(dir).IgnoreError();
    return written;
  }
  job.set_state(v1::VALIDATING);
  LORAD_RETURN_IF_ERROR(journal_->Create(
      job, absl::StrCat("validated ", job.num_requests(), " requests")));
  LORAD_ASSIGN_OR_RETURN(
      job, journal_->Update(job.id(), [](v1::BatchJob& job,
                                         std::vector<v1::JobEvent>& events) {
        TransitionBatchTo(job, v1::QUEUED, "queued", events);
        return absl::OkStatus();
      }));
  runner_->Notify();
  return job;
}

grpc::ServerReadReactor<v1::CreateBatchJobRequest>* BatchService::CreateJob(
    grpc::CallbackServerContext* context, v1::BatchJob* response) {
  if (auto* refused = auth::RefuseReader<v1::CreateBatchJobRequest>(context))
    return refused;
  return new CreateReactor(this, &work_, max_upload_bytes_, response, owners_,
                           auth::CallerOrAnonymous(context));
}

grpc::ServerUnaryReactor* BatchService::GetJob(
    grpc::CallbackServerContext* context, const v1::GetBatchJobRequest* request,
    v1::BatchJob* response) {
  if (auto* refused = auth::RefuseUnary(context)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (FinishIfError(reactor, ValidateName("job_id", request->job_id()))) {
    return reactor;
  }
  absl::StatusOr<v1::BatchJob> job =
      auth::Visible(owners_, context, auth::Kind::kBatchJob,
                    store_->GetBatchJob(request->job_id()));
  if (job.ok()) *response = *std::move(job);
  reactor->Finish(ToGrpcStatus(job.status()));
  return reactor;
}

grpc::ServerUnaryReactor* BatchService::ListJobs(
    grpc::CallbackServerContext* context,
    const v1::ListBatchJobsRequest* request,
    v1::ListBatchJobsResponse* response) {
  if (auto* refused = auth::RefuseUnary(context)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (request->limit() < 0) {
    reactor->Finish(ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("limit must be >= 0, got ", request->limit()))));
    return reactor;
  }
  absl::StatusOr<std::vector<v1::BatchJob>> jobs = store_->ListBatchJobs(
      std::min(request->limit(), 10000),
      auth::ListFilter(owners_, context, auth::Kind::kBatchJob));
  if (jobs.ok()) {
    for (v1::BatchJob& job : *jobs) *response->add_jobs() = std::move(job);
  }
  reactor->Finish(ToGrpcStatus(jobs.status()));
  return reactor;
}

grpc::ServerUnaryReactor* BatchService::CancelJob(
    grpc::CallbackServerContext* context,
    const v1::CancelBatchJobRequest* request, v1::BatchJob* response) {
  if (auto* refused = auth::RefuseUnary(context)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (FinishIfError(reactor, ValidateName("job_id", request->job_id()))) {
    return reactor;
  }
  absl::Status seen = auth::CheckVisible(
      owners_, context, auth::Kind::kBatchJob, request->job_id());
  absl::StatusOr<v1::BatchJob> job = seen.ok()
                                         ? runner_->Cancel(request->job_id())
                                         : absl::StatusOr<v1::BatchJob>(seen);
  if (job.ok()) *response = *std::move(job);
  reactor->Finish(ToGrpcStatus(job.status()));
  return reactor;
}

grpc::ServerWriteReactor<v1::JobEvent>* BatchService::WatchJob(
    grpc::CallbackServerContext* context,
    const v1::WatchBatchJobRequest* request) {
  if (auto* refused = auth::RefuseWriter<v1::JobEvent>(context)) return refused;
  if (auto* hidden = auth::HiddenWriter<v1::JobEvent>(
          owners_, context, auth::Kind::kBatchJob, request->job_id()))
    return hidden;
  BatchJournal* journal = journal_;
  const std::string job_id = request->job_id();
  const int64_t after_seq = request->after_seq();
  return new WatchJobReactor(hub_, after_seq, [&](EventHub::Callback callback) {
    return journal->Watch(job_id, after_seq, std::move(callback));
  });
}

grpc::ServerWriteReactor<v1::BatchResultsChunk>* BatchService::GetResults(
    grpc::CallbackServerContext* context,
    const v1::GetBatchResultsRequest* request) {
  if (auto* refused = auth::RefuseWriter<v1::BatchResultsChunk>(context))
    return refused;
  if (auto* hidden = auth::HiddenWriter<v1::BatchResultsChunk>(
          owners_, context, auth::Kind::kBatchJob, request->job_id()))
    return hidden;
  return new ResultsReactor(store_, request->job_id());
}

}  // namespace lorad::server
