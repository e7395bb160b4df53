// lorad.v1.Adapters: the adapter registry over gRPC.
#ifndef LORAD_SERVER_API_ADAPTERS_SERVICE_H_
#define LORAD_SERVER_API_ADAPTERS_SERVICE_H_

#include <cstdint>

#include "auth/ownership.h"
#include "lorad/common/work_queue.h"
#include "lorad/v1/lorad.grpc.pb.h"
#include "options.h"
#include "serving/adapter_registry.h"

namespace lorad::server {

// Calls that may wait on the worker or the disk run on a work queue of the
// service's own, never in a reactor callback.
class AdaptersService final : public v1::Adapters::CallbackService {
 public:
  // `registry` is not owned and must outlive the service.
  AdaptersService(const DaemonOptions& options, AdapterRegistry* registry);

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const v1::ListAdaptersRequest* request,
                                 v1::ListAdaptersResponse* response) override;
  grpc::ServerUnaryReactor* Load(grpc::CallbackServerContext* context,
                                 const v1::LoadAdapterRequest* request,
                                 v1::Adapter* response) override;
  // RESOURCE_EXHAUSTED past --max_upload_bytes; INVALID_ARGUMENT for a
  // malformed stream, a missing or unexpected file, or a bad adapter.
  grpc::ServerReadReactor<v1::UploadAdapterRequest>* Upload(
      grpc::CallbackServerContext* context, v1::Adapter* response) override;
  grpc::ServerUnaryReactor* Unload(grpc::CallbackServerContext* context,
                                   const v1::UnloadAdapterRequest* request,
                                   v1::Adapter* response) override;
  grpc::ServerUnaryReactor* Delete(
      grpc::CallbackServerContext* context,
      const v1::DeleteAdapterRequest* request,
      v1::DeleteAdapterResponse* response) override;
  // FAILED_PRECONDITION for merged=true before ExportMerged.
  grpc::ServerWriteReactor<v1::FileChunk>* Download(
      grpc::CallbackServerContext* context,
      const v1::DownloadAdapterRequest* request) override;
  grpc::ServerUnaryReactor* ExportMerged(
      grpc::CallbackServerContext* context,
      const v1::ExportMergedRequest* request,
      v1::ExportMergedResponse* response) override;

  // Who sees and changes what (auth/ownership.h); not owned, may be null.
  void set_ownership(auth::Ownership* owners) { owners_ = owners; }

 private:
  auth::Ownership* owners_ = nullptr;
  const int64_t max_upload_bytes_;
  AdapterRegistry* const registry_;
  WorkQueue work_{2};
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_API_ADAPTERS_SERVICE_H_
