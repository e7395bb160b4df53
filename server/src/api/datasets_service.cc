#include "api/datasets_service.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "api/grpc_status.h"
#include "api/upload_reactor.h"
#include "auth/call_gate.h"
#include "auth/ownership.h"
#include "jobs/dataset_ingest.h"

namespace lorad::server {
namespace {

// Collects the upload; the parse and the write happen on the work queue.
class DatasetUploadReactor final
    : public BufferedUploadReactor<v1::UploadDatasetRequest, v1::Dataset> {
 public:
  DatasetUploadReactor(DatasetStore* store, Env* env, const DataLayout* layout,
                       WorkQueue* work, int64_t max_bytes,
                       v1::Dataset* response, auth::Ownership* owners,
                       auth::Identity caller)
      : BufferedUploadReactor(work, max_bytes, response),
        store_(store),
        env_(env),
        layout_(layout),
        owners_(owners),
        caller_(std::move(caller)) {
    Begin();
  }

 private:
  absl::StatusOr<v1::Dataset> Ingest() override {
    return auth::Claimed(owners_, caller_, auth::Kind::kDataset,
                         IngestDataset(*store_, env_, *layout_,
                                       header().filename(), contents()));
  }

  DatasetStore* const store_;
  Env* const env_;
  const DataLayout* const layout_;
  auth::Ownership* const owners_;
  const auth::Identity caller_;
};

}  // namespace

DatasetsService::DatasetsService(const DaemonOptions& options,
                                 DatasetStore* store, WorkQueue* work)
    : layout_(options.data_dir),
      max_upload_bytes_(options.max_upload_bytes),
      env_(options.env),
      store_(store),
      work_(work) {}

grpc::ServerReadReactor<v1::UploadDatasetRequest>* DatasetsService::Upload(
    grpc::CallbackServerContext* context, v1::Dataset* response) {
  if (auto* refused = auth::RefuseReader<v1::UploadDatasetRequest>(context))
    return refused;
  return new DatasetUploadReactor(store_, env_, &layout_, work_,
                                  max_upload_bytes_, response, owners_,
                                  auth::CallerOrAnonymous(context));
}

grpc::ServerUnaryReactor* DatasetsService::List(
    grpc::CallbackServerContext* context,
    const v1::ListDatasetsRequest* /*request*/,
    v1::ListDatasetsResponse* response) {
  if (auto* refused = auth::RefuseUnary(context)) return refused;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::vector<v1::Dataset>> datasets = store_->ListDatasets();
  if (datasets.ok()) {
    auth::KeepVisible(owners_, context, auth::Kind::kDataset, *datasets);
    for (v1::Dataset& d : *datasets) *response->add_datasets() = std::move(d);
  }
  reactor->Finish(ToGrpcStatus(datasets.status()));
  return reactor;
}

}  // namespace lorad::server
