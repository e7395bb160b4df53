#include "lorad/server/datasets_service.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lorad/server/dataset_ingest.h"
#include "lorad/server/grpc_status.h"

namespace lorad::server {
namespace {

// Collects the upload; the parse and the write happen on the work queue.
class UploadReactor final
    : public grpc::ServerReadReactor<v1::UploadDatasetRequest> {
 public:
  UploadReactor(JobStore* store, const DataLayout* layout, WorkQueue* work,
                int64_t max_bytes, v1::Dataset* response)
      : store_(store),
        layout_(layout),
        work_(work),
        max_bytes_(max_bytes),
        response_(response) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Complete();
      return;
    }
    absl::Status accepted = Accept();
    if (!accepted.ok()) {
      Finish(ToGrpcStatus(accepted));
      return;
    }
    StartRead(&request_);
  }

  void OnCancel() override { cancelled_ = true; }
  void OnDone() override { delete this; }

 private:
  absl::Status Accept() {
    if (request_.has_header()) {
      if (have_header_) {
        return absl::InvalidArgumentError("the upload has a second header");
      }
      have_header_ = true;
      header_ = request_.header();
      if (header_.size_bytes() < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "header.size_bytes must be >= 0, got ", header_.size_bytes()));
      }
      if (header_.size_bytes() > max_bytes_) {
        return TooLarge(header_.size_bytes());
      }
      contents_.reserve(static_cast<size_t>(header_.size_bytes()));
      return absl::OkStatus();
    }
    if (!have_header_) {
      return absl::InvalidArgumentError(
          "the first upload message must be a header");
    }
    const std::string& chunk = request_.chunk();
    const int64_t total = static_cast<int64_t>(contents_.size() + chunk.size());
    if (total > max_bytes_) return TooLarge(total);
    if (total > header_.size_bytes()) {
      return absl::InvalidArgumentError(
          absl::StrCat("received more than the ", header_.size_bytes(),
                       " bytes the header announced"));
    }
    contents_.append(chunk);
    return absl::OkStatus();
  }

  absl::Status TooLarge(int64_t size) const {
    return absl::ResourceExhaustedError(
        absl::StrCat("the dataset is ", size, " bytes; the limit is ",
                     max_bytes_, " bytes (--max_upload_bytes)"));
  }

  void Complete() {
    if (cancelled_) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "upload cancelled"));
      return;
    }
    if (!have_header_) {
      Finish(
          ToGrpcStatus(absl::InvalidArgumentError("the upload had no header")));
      return;
    }
    if (static_cast<int64_t>(contents_.size()) != header_.size_bytes()) {
      Finish(ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat(
          "received ", contents_.size(), " bytes but the header announced ",
          header_.size_bytes()))));
      return;
    }
    work_->Run([this] {
      absl::StatusOr<v1::Dataset> dataset =
          IngestDataset(*store_, *layout_, header_.filename(), contents_);
      if (dataset.ok()) *response_ = *std::move(dataset);
      Finish(ToGrpcStatus(dataset.status()));
    });
  }

  JobStore* const store_;
  const DataLayout* const layout_;
  WorkQueue* const work_;
  const int64_t max_bytes_;
  v1::Dataset* const response_;
  v1::UploadDatasetRequest request_;
  v1::DatasetHeader header_;
  bool have_header_ = false;
  std::string contents_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace

DatasetsService::DatasetsService(const DaemonOptions& options, JobStore* store,
                                 WorkQueue* work)
    : layout_(options.data_dir),
      max_upload_bytes_(options.max_upload_bytes),
      store_(store),
      work_(work) {}

grpc::ServerReadReactor<v1::UploadDatasetRequest>* DatasetsService::Upload(
    grpc::CallbackServerContext* /*context*/, v1::Dataset* response) {
  return new UploadReactor(store_, &layout_, work_, max_upload_bytes_,
                           response);
}

grpc::ServerUnaryReactor* DatasetsService::List(
    grpc::CallbackServerContext* context,
    const v1::ListDatasetsRequest* /*request*/,
    v1::ListDatasetsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::vector<v1::Dataset>> datasets = store_->ListDatasets();
  if (datasets.ok()) {
    for (v1::Dataset& d : *datasets) *response->add_datasets() = std::move(d);
  }
  reactor->Finish(ToGrpcStatus(datasets.status()));
  return reactor;
}

}  // namespace lorad::server
