#include "api/adapters_service.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "api/grpc_status.h"
#include "api/upload_reactor.h"
#include "auth/call_gate.h"
#include "auth/ownership.h"
#include "lorad/common/env.h"
#include "lorad/common/status_macros.h"
#include "lorad/model/peft_adapter.h"

namespace lorad::server {
namespace {

namespace fs = std::filesystem;

constexpr size_t kChunkBytes = 1 << 20;

// Runs `body` on the work queue and finishes the call with its status.
template <typename Body>
grpc::ServerUnaryReactor* RunOnQueue(grpc::CallbackServerContext* context,
                                     WorkQueue& work, Body body) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  work.Run([reactor, body = std::move(body)]() mutable {
    reactor->Finish(ToGrpcStatus(body()));
  });
  return reactor;
}

// Writes the streamed files into a staging directory (through the
// registry's Env), then registers it. The staging directory is removed when
// the call ends, whatever its outcome, so a failed upload (a full disk, a
// bad adapter) leaves nothing behind.
class AdapterUploadReactor final
    : public UploadReactor<v1::UploadAdapterRequest, v1::Adapter> {
 public:
  AdapterUploadReactor(AdapterRegistry* registry, WorkQueue* work,
                       int64_t max_bytes, v1::Adapter* response,
                       auth::Ownership* owners, auth::Identity caller)
      : UploadReactor<v1::UploadAdapterRequest, v1::Adapter>(work, response),
        registry_(registry),
        max_bytes_(max_bytes),
        owners_(owners),
        caller_(std::move(caller)) {
    Begin();
  }

 private:
  absl::Status OnHeader() override {
    if (header().name().empty()) {
      return absl::InvalidArgumentError("header.name is required");
    }
    absl::Status name = ValidateAdapterName(header().name());
    if (!name.ok()) return name;
    if (owners_ != nullptr) {
      LORAD_RETURN_IF_ERROR(
          owners_->CheckAdapterName(caller_, header().name()));
    }
    absl::StatusOr<std::string> dir = registry_->NewStagingDir();
    if (!dir.ok()) return dir.status();
    staging_ = *dir;
    return absl::OkStatus();
  }

  absl::Status OnChunk(const v1::UploadAdapterRequest& request) override {
    const v1::AdapterFileChunk& chunk = request.chunk();
    const std::string& file = chunk.filename();
    if (file != model::kAdapterConfigFile &&
        file != model::kAdapterWeightsFile) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected file \"", file, "\" (an adapter upload has ",
          model::kAdapterConfigFile, " and ", model::kAdapterWeightsFile, ")"));
    }
    if (file != current_) {
      if (std::find(done_.begin(), done_.end(), file) != done_.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(file, ": its chunks must be consecutive"));
      }
      LORAD_RETURN_IF_ERROR(CloseCurrent());
      absl::StatusOr<std::unique_ptr<WritableFile>> out =
          registry_->env()->NewWritableFile(staging_ + "/" + file);
      if (!out.ok()) return out.status();
      out_ = *std::move(out);
      current_ = file;
    }
    received_ += static_cast<int64_t>(chunk.data().size());
    if (received_ > max_bytes_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the upload is over ", max_bytes_, " bytes (--max_upload_bytes)"));
    }
    return out_->Append(chunk.data());
  }

  absl::Status OnStreamEnd() override {
    LORAD_RETURN_IF_ERROR(CloseCurrent());
    for (const char* file :
         {model::kAdapterConfigFile, model::kAdapterWeightsFile}) {
      if (std::find(done_.begin(), done_.end(), file) == done_.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(file, ": missing from the upload"));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<v1::Adapter> Ingest() override {
    return auth::Claimed(
        owners_, caller_, auth::Kind::kAdapter,
        registry_->Register(header().name(), staging_, header().base_model(),
                            "", header().pinned()));
  }

  void Cleanup() override {
    out_.reset();
    if (!staging_.empty()) registry_->env()->RemoveTree(staging_).IgnoreError();
  }

  // Closes the file being written, if any, and records it as complete.
  absl::Status CloseCurrent() {
    if (out_ == nullptr) return absl::OkStatus();
    absl::Status closed = out_->Close();
    out_.reset();
    done_.push_back(current_);
    current_.clear();
    return closed;
  }

  AdapterRegistry* const registry_;
  const int64_t max_bytes_;
  auth::Ownership* const owners_;
  const auth::Identity caller_;
  std::string staging_;
  std::string current_;
  std::vector<std::string> done_;
  std::unique_ptr<WritableFile> out_;
  int64_t received_ = 0;
};

// Streams a list of files, one chunk at a time.
class DownloadReactor final : public grpc::ServerWriteReactor<v1::FileChunk> {
 public:
  explicit DownloadReactor(absl::StatusOr<std::vector<std::string>> files) {
    if (!files.ok()) {
      Finish(ToGrpcStatus(files.status()));
      return;
    }
    files_ = *std::move(files);
    Next();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "download cancelled"));
      return;
    }
    Next();
  }

  void OnDone() override { delete this; }

 private:
  void Next() {
    while (true) {
      if (!in_.is_open()) {
        if (index_ == files_.size()) {
          Finish(grpc::Status::OK);
          return;
        }
        path_ = files_[index_++];
        in_.open(path_, std::ios::binary);
        if (!in_) {
          Finish(ToGrpcStatus(
              absl::InternalError(absl::StrCat("cannot read ", path_))));
          return;
        }
        first_ = true;
      }
      std::string data(kChunkBytes, '\0');
      in_.read(data.data(), static_cast<std::streamsize>(data.size()));
      data.resize(static_cast<size_t>(in_.gcount()));
      const bool at_end = data.size() < kChunkBytes;
      if (data.empty() && !first_) {
        in_.close();
        continue;
      }
      chunk_.Clear();
      chunk_.set_filename(fs::path(path_).filename().string());
      if (first_) {
        std::error_code ec;
        chunk_.set_size_bytes(static_cast<int64_t>(fs::file_size(path_, ec)));
      }
      first_ = false;
      chunk_.set_data(std::move(data));
      if (at_end) in_.close();
      StartWrite(&chunk_);
      return;
    }
  }

  std::vector<std::string> files_;
  size_t index_ = 0;
  std::string path_;
  std::ifstream in_;
  bool first_ = false;
  v1::FileChunk chunk_;
};

absl::StatusOr<std::vector<std::string>> FilesToDownload(
    AdapterRegistry& registry, const v1::DownloadAdapterRequest& request) {
  absl::StatusOr<v1::Adapter> adapter = registry.Get(request.name());
  if (!adapter.ok()) return adapter.status();
  std::vector<std::string> files;
  if (!request.merged()) {
    for (const char* f :
         {model::kAdapterConfigFile, model::kAdapterWeightsFile}) {
      files.push_back(absl::StrCat(adapter->path(), "/", f));
    }
    return files;
  }
  std::error_code ec;
  if (adapter->merged_path().empty() ||
      !fs::is_directory(adapter->merged_path(), ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "adapter ", request.name(), " version ", adapter->version(),
        " has no merged checkpoint; run ExportMerged first"));
  }
  for (const fs::directory_entry& e :
       fs::directory_iterator(adapter->merged_path(), ec)) {
    if (e.is_regular_file()) files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

AdaptersService::AdaptersService(const DaemonOptions& options,
                                 AdapterRegistry* registry)
    : max_upload_bytes_(options.max_upload_bytes), registry_(registry) {}

grpc::ServerUnaryReactor* AdaptersService::List(
    grpc::CallbackServerContext* context,
    const v1::ListAdaptersRequest* /*request*/,
    v1::ListAdaptersResponse* response) {
  if (auto* refused = auth::RefuseUnary(context)) return refused;
  return RunOnQueue(context, work_, [this, context, response] {
    absl::StatusOr<std::vector<v1::Adapter>> adapters = registry_->List();
    if (!adapters.ok()) return adapters.status();
    auth::KeepVisible(owners_, context, auth::Kind::kAdapter, *adapters);
    for (v1::Adapter& a : *adapters) *response->add_adapters() = std::move(a);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdaptersService::Load(
    grpc::CallbackServerContext* context, const v1::LoadAdapterRequest* request,
    v1::Adapter* response) {
  if (auto* refused = auth::RefuseUnary(context)) return refused;
  return RunOnQueue(context, work_, [this, context, request, response] {
    absl::StatusOr<v1::Adapter> adapter;
    LORAD_RETURN_IF_ERROR(
        auth::CheckAdapterName(owners_, context, request->name()));
    if (!request->job_id().empty()) {
      LORAD_RETURN_IF_ERROR(auth::CheckVisible(
          owners_, context, auth::Kind::kJob, request->job_id()));
      adapter = registry_->RegisterJob(request->job_id(), request->name(),
                                       request->pinned());
    } else if (request->name().empty()) {
      return absl::InvalidArgumentError("give name or job_id");
    } else {
      LORAD_RETURN_IF_ERROR(auth::CheckVisible(
          owners_, context, auth::Kind::kAdapter, request->name()));
      adapter = registry_->Reload(request->name(), request->pinned());
    }
    adapter = auth::Claimed(owners_, auth::CallerOrAnonymous(context),
                            auth::Kind::kAdapter, std::move(adapter));
    if (adapter.ok()) *response = *std::move(adapter);
    return adapter.status();
  });
}

grpc::ServerReadReactor<v1::UploadAdapterRequest>* AdaptersService::Upload(
    grpc::CallbackServerContext* context, v1::Adapter* response) {
  if (auto* refused = auth::RefuseReader<v1::UploadAdapterRequest>(context))
    return refused;
  return new AdapterUploadReactor(registry_, &work_, max_upload_bytes_,
                                  response, owners_,
                                  auth::CallerOrAnonymous(context));
}

grpc::ServerUnaryReactor* AdaptersService::Unload(
    grpc::CallbackServerContext* context,
    const v1::UnloadAdapterRequest* request, v1::Adapter* response) {
  if (auto* refused = auth::RefuseUnary(context)) return refused;
  return RunOnQueue(context, work_, [this, context, request, response] {
    LORAD_RETURN_IF_ERROR(auth::CheckVisible(
        owners_, context, auth::Kind::kAdapter, request->name()));
    absl::StatusOr<v1::Adapter> adapter = registry_->Unload(request->name());
    if (adapter.ok()) *response = *std::move(adapter);
    return adapter.status();
  });
}

grpc::ServerUnaryReactor* AdaptersService::Delete(
    grpc::CallbackServerContext* context,
    const v1::DeleteAdapterRequest* request,
    v1::DeleteAdapterResponse* /*response*/) {
  if (auto* refused = auth::RefuseUnary(context)) return refused;
  return RunOnQueue(context, work_, [this, context, request] {
    LORAD_RETURN_IF_ERROR(auth::CheckVisible(
        owners_, context, auth::Kind::kAdapter, request->name()));
    return registry_->Delete(request->name());
  });
}

grpc::ServerWriteReactor<v1::FileChunk>* AdaptersService::Download(
    grpc::CallbackServerContext* context,
    const v1::DownloadAdapterRequest* request) {
  if (auto* refused = auth::RefuseWriter<v1::FileChunk>(context))
    return refused;
  if (auto* hidden = auth::HiddenWriter<v1::FileChunk>(
          owners_, context, auth::Kind::kAdapter, request->name()))
    return hidden;
  return new DownloadReactor(FilesToDownload(*registry_, *request));
}

grpc::ServerUnaryReactor* AdaptersService::ExportMerged(
    grpc::CallbackServerContext* context,
    const v1::ExportMergedRequest* request,
    v1::ExportMergedResponse* response) {
  if (auto* refused = auth::RefuseUnary(context)) return refused;
  return RunOnQueue(context, work_, [this, context, request, response] {
    LORAD_RETURN_IF_ERROR(auth::CheckVisible(
        owners_, context, auth::Kind::kAdapter, request->name()));
    absl::StatusOr<v1::ExportMergedResponse> out =
        registry_->ExportMerged(request->name(), request->dtype());
    if (out.ok()) *response = *std::move(out);
    return out.status();
  });
}

}  // namespace lorad::server
