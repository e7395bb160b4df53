// /v1/files: fine-tuning data as the API uploads it (multipart, purpose
// "fine-tune"), stored as lorad datasets (Datasets.Upload, validated line
// by line); listing and lookup through Datasets.List.
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "openai/api.h"
#include "openai/multipart.h"

namespace lorad::server::openai {
namespace {

using nlohmann::json;

json FileObject(const v1::Dataset& d) {
  return {{"id", d.id()},
          {"object", "file"},
          {"bytes", d.size_bytes()},
          {"created_at", d.created_at_unix()},
          {"filename", d.filename()},
          {"purpose", "fine-tune"},
          {"status", "processed"},
          {"status_details", nullptr}};
}

// Streams one file to Datasets.Upload in pieces, one write at a time.
class UploadCall final
    : public grpc::ClientWriteReactor<v1::UploadDatasetRequest> {
 public:
  // Sends request.body[offset, offset + size), taking the body over.
  UploadCall(ApiContext& api, http::Request request,
             std::shared_ptr<http::Reply> reply, std::string filename,
             size_t offset, size_t size)
      : api_(api),
        reply_(std::move(reply)),
        body_(std::move(request.body)),
        offset_(offset),
        end_(offset + size) {
    ApiContext::Authorize(request, &context_);
    message_.mutable_header()->set_filename(std::move(filename));
    message_.mutable_header()->set_size_bytes(static_cast<int64_t>(size));
  }

  void Start() {
    api_.CallStarted();
    api_.datasets().async()->Upload(&context_, &dataset_, this);
    StartWrite(&message_);
    StartCall();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return;  // OnDone says why
    if (offset_ >= end_) {
      StartWritesDone();
      return;
    }
    constexpr size_t kPiece = 1 << 20;
    const size_t n = std::min(kPiece, end_ - offset_);
    message_.set_chunk(body_.substr(offset_, n));
    offset_ += n;
    StartWrite(&message_);
  }

  void OnDone(const grpc::Status& status) override {
    if (status.ok()) {
      reply_->Send(Json(200, FileObject(dataset_).dump()));
    } else if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      // The request was well formed; the file's content is what is wrong.
      reply_->Send(Error(422, status.error_message(), "file", "invalid_file"));
    } else {
      reply_->Send(FromGrpc(status, &context_));
    }
    ApiContext& api = api_;
    delete this;
    api.CallEnded();
  }

 private:
  ApiContext& api_;
  std::shared_ptr<http::Reply> reply_;
  grpc::ClientContext context_;
  const std::string body_;
  size_t offset_;
  const size_t end_;
  v1::UploadDatasetRequest message_;
  v1::Dataset dataset_;
};

void Upload(ApiContext& api, http::Request request,
            std::shared_ptr<http::Reply> reply) {
  auto parts = ParseMultipart(request.Header("Content-Type"), request.body);
  if (!parts.ok()) {
    reply->Send(Error(400, parts.status().message()));
    return;
  }
  const FormPart* file = nullptr;
  std::string purpose;
  for (const FormPart& p : *parts) {
    if (p.name == "file") file = &p;
    if (p.name == "purpose") purpose = std::string(p.data);
  }
  if (purpose != "fine-tune") {
    reply->Send(Error(
        400,
        absl::StrCat("'purpose' must be \"fine-tune\", got \"", purpose, "\""),
        "purpose"));
    return;
  }
  if (file == nullptr) {
    reply->Send(Error(400, "the form has no 'file' part", "file"));
    return;
  }
  std::string filename =
      file->filename.empty() ? "upload.jsonl" : file->filename;
  const size_t offset =
      static_cast<size_t>(file->data.data() - request.body.data());
  const size_t size = file->data.size();
  (new UploadCall(api, std::move(request), std::move(reply),
                  std::move(filename), offset, size))
      ->Start();
}

}  // namespace

void HandleFiles(ApiContext& api, http::Request request,
                 std::shared_ptr<http::Reply> reply) {
  if (request.path == "/v1/files" && request.method == "POST") {
    return Upload(api, std::move(request), std::move(reply));
  }
  if (request.method != "GET") {
    reply->Send(Error(405, "use GET or POST for " + request.path));
    return;
  }
  std::string wanted;
  if (request.path.size() > std::string("/v1/files/").size()) {
    wanted = request.path.substr(std::string("/v1/files/").size());
  }
  UnaryCall<v1::ListDatasetsRequest, v1::ListDatasetsResponse>(
      api, request, {},
      [&api](grpc::ClientContext* c, const v1::ListDatasetsRequest* rq,
             v1::ListDatasetsResponse* rs,
             std::function<void(grpc::Status)> f) {
        api.datasets().async()->List(c, rq, rs, std::move(f));
      },
      [reply, wanted](const grpc::Status& status,
                      v1::ListDatasetsResponse& list,
                      grpc::ClientContext& context) {
        if (!status.ok()) return reply->Send(FromGrpc(status, &context));
        json data = json::array();
        for (const v1::Dataset& d : list.datasets()) {
          if (!wanted.empty() && d.id() == wanted) {
            return reply->Send(Json(200, FileObject(d).dump()));
          }
          data.push_back(FileObject(d));
        }
        if (!wanted.empty()) {
          return reply->Send(
              Error(404, "No such File object: " + wanted, "id"));
        }
        reply->Send(Json(
            200, json{{"object", "list"}, {"data", data}, {"has_more", false}}
                     .dump()));
      });
}

}  // namespace lorad::server::openai
