// lorad.v1.Datasets: streamed JSONL uploads and the list of datasets.
#ifndef LORAD_SERVER_API_DATASETS_SERVICE_H_
#define LORAD_SERVER_API_DATASETS_SERVICE_H_

#include <cstdint>

#include "auth/ownership.h"
#include "lorad/common/work_queue.h"
#include "lorad/v1/lorad.grpc.pb.h"
#include "options.h"
#include "store/dataset_store.h"

namespace lorad::server {

class DatasetsService final : public v1::Datasets::CallbackService {
 public:
  // Neither pointer is owned; both must outlive the service. Files are
  // written through options.env.
  DatasetsService(const DaemonOptions& options, DatasetStore* store,
                  WorkQueue* work);

  // Header first, then chunks. RESOURCE_EXHAUSTED past --max_upload_bytes,
  // INVALID_ARGUMENT for a malformed stream, a size that does not match the
  // header, or a dataset that does not parse.
  grpc::ServerReadReactor<v1::UploadDatasetRequest>* Upload(
      grpc::CallbackServerContext* context, v1::Dataset* response) override;

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const v1::ListDatasetsRequest* request,
                                 v1::ListDatasetsResponse* response) override;

  // Who sees and changes what (auth/ownership.h); not owned, may be null.
  void set_ownership(auth::Ownership* owners) { owners_ = owners; }

 private:
  auth::Ownership* owners_ = nullptr;
  const DataLayout layout_;
  const int64_t max_upload_bytes_;
  Env* const env_;
  DatasetStore* const store_;
  WorkQueue* const work_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_API_DATASETS_SERVICE_H_
