// The server side of lorad's client-streaming uploads (datasets, adapters,
// batch inputs): the first message carries a header, every later one a
// chunk. UploadReactor owns the read loop and the rules every upload shares
// (exactly one header, first; a cancelled or header-less stream ends with a
// clear status); a subclass says what a header and a chunk mean and what
// the finished upload becomes. The final step (parsing, writing, SQLite)
// runs on the work queue, never on a gRPC callback thread.
//
// BufferedUploadReactor is the common case: the header announces
// size_bytes, the chunks are collected in memory up to that size (and
// --max_upload_bytes), and the subclass ingests the whole contents.
#ifndef LORAD_SERVER_API_UPLOAD_REACTOR_H_
#define LORAD_SERVER_API_UPLOAD_REACTOR_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "api/grpc_status.h"
#include "grpcpp/support/server_callback.h"
#include "lorad/common/work_queue.h"

namespace lorad::server {

// Request has a `header` message in a oneof with the chunk; Response is
// what the call returns.
template <typename Request, typename Response>
class UploadReactor : public grpc::ServerReadReactor<Request> {
 public:
  using Header = std::decay_t<decltype(std::declval<Request>().header())>;

  UploadReactor(WorkQueue* work, Response* response)
      : work_(work), response_(response) {}

  void OnReadDone(bool ok) override {
    if (!ok) {
      Complete();
      return;
    }
    absl::Status accepted = Accept();
    if (!accepted.ok()) {
      this->Finish(ToGrpcStatus(accepted));
      return;
    }
    this->StartRead(&request_);
  }

  void OnCancel() override { cancelled_ = true; }

  void OnDone() override {
    Cleanup();
    delete this;
  }

 protected:
  // The subclass constructor calls this once its own members are set.
  void Begin() { this->StartRead(&request_); }

  // The header arrived (it is in header()); an error ends the call.
  virtual absl::Status OnHeader() = 0;
  // A chunk message arrived after the header.
  virtual absl::Status OnChunk(const Request& request) = 0;
  // The stream ended with a header: anything still missing is an error
  // here, before the work queue is involved.
  virtual absl::Status OnStreamEnd() { return absl::OkStatus(); }
  // On the work queue: what the upload becomes.
  virtual absl::StatusOr<Response> Ingest() = 0;
  // After the call is done, whatever its outcome.
  virtual void Cleanup() {}

  const Header& header() const { return header_; }

 private:
  absl::Status Accept() {
    if (request_.has_header()) {
      if (have_header_) {
        return absl::InvalidArgumentError("the upload has a second header");
      }
      have_header_ = true;
      header_ = request_.header();
      return OnHeader();
    }
    if (!have_header_) {
      return absl::InvalidArgumentError(
          "the first upload message must be a header");
    }
    return OnChunk(request_);
  }

  void Complete() {
    if (cancelled_) {
      this->Finish(
          grpc::Status(grpc::StatusCode::CANCELLED, "upload cancelled"));
      return;
    }
    if (!have_header_) {
      this->Finish(
          ToGrpcStatus(absl::InvalidArgumentError("the upload had no header")));
      return;
    }
    absl::Status ended = OnStreamEnd();
    if (!ended.ok()) {
      this->Finish(ToGrpcStatus(ended));
      return;
    }
    work_->Run([this] {
      absl::StatusOr<Response> result = Ingest();
      if (result.ok()) *response_ = *std::move(result);
      this->Finish(ToGrpcStatus(result.status()));
    });
  }

  WorkQueue* const work_;
  Response* const response_;
  Request request_;
  Header header_;
  bool have_header_ = false;
  std::atomic<bool> cancelled_{false};
};

// Collects header().size_bytes() bytes of chunk messages (a `chunk` bytes
// field) in memory, refusing more than the header announced or
// `max_bytes`, and fewer at the end.
template <typename Request, typename Response>
class BufferedUploadReactor : public UploadReactor<Request, Response> {
 public:
  BufferedUploadReactor(WorkQueue* work, int64_t max_bytes, Response* response)
      : UploadReactor<Request, Response>(work, response),
        max_bytes_(max_bytes) {}

 protected:
  const std::string& contents() const { return contents_; }

 private:
  absl::Status OnHeader() override {
    const int64_t size = this->header().size_bytes();
    if (size < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("header.size_bytes must be >= 0, got ", size));
    }
    if (size > max_bytes_) return TooLarge(size);
    contents_.reserve(static_cast<size_t>(size));
    return absl::OkStatus();
  }

  absl::Status OnChunk(const Request& request) override {
    const std::string& chunk = request.chunk();
    const int64_t total = static_cast<int64_t>(contents_.size() + chunk.size());
    if (total > max_bytes_) return TooLarge(total);
    if (total > this->header().size_bytes()) {
      return absl::InvalidArgumentError(
          absl::StrCat("received more than the ", this->header().size_bytes(),
                       " bytes the header announced"));
    }
    contents_.append(chunk);
    return absl::OkStatus();
  }

  absl::Status OnStreamEnd() override {
    if (static_cast<int64_t>(contents_.size()) != this->header().size_bytes()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "received ", contents_.size(), " bytes but the header announced ",
          this->header().size_bytes()));
    }
    return absl::OkStatus();
  }

  absl::Status TooLarge(int64_t size) const {
    return absl::ResourceExhaustedError(
        absl::StrCat("the upload is ", size, " bytes; the limit is ",
                     max_bytes_, " bytes (--max_upload_bytes)"));
  }

  const int64_t max_bytes_;
  std::string contents_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_API_UPLOAD_REACTOR_H_
