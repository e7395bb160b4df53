// loractl upload, loractl datasets.
#include <chrono>
#include <filesystem>
#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "commands.h"
#include "format.h"
#include "job_view.h"
#include "live_line.h"
#include "progress.h"

namespace lorad::client {
namespace {

constexpr size_t kChunkBytes = 1 << 20;
// Smaller uploads finish too fast for a progress bar to help.
constexpr int64_t kProgressMinBytes = 4 << 20;

// "uploading f.jsonl [####------] 12.0 MiB/40.0 MiB 30% 15.2 MiB/s"
std::string UploadLine(const std::string& name, int64_t sent, int64_t total,
                       double seconds) {
  std::string line =
      absl::StrCat("uploading ", name, " ", RenderBar(sent, total, 20), " ",
                   HumanBytes(sent), "/", HumanBytes(total));
  if (total > 0) absl::StrAppendFormat(&line, " %d%%", sent * 100 / total);
  if (seconds > 0) {
    absl::StrAppend(&line, " ",
                    HumanBytes(static_cast<int64_t>(sent / seconds)), "/s");
  }
  return line;
}

}  // namespace

absl::Status CheckLocalFile(const std::string& path) {
  std::error_code ec;
  std::filesystem::file_status st = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(st)) {
    return absl::NotFoundError(absl::StrCat("no such file: ", path));
  }
  if (!std::filesystem::is_regular_file(st)) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a regular file: ", path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::PermissionDeniedError(absl::StrCat("cannot read: ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<lorad::v1::Dataset> UploadFile(const std::string& path,
                                              CommandEnv& env) {
  if (absl::Status s = CheckLocalFile(path); !s.ok()) return s;
  std::error_code ec;
  const int64_t size =
      static_cast<int64_t>(std::filesystem::file_size(path, ec));
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot stat ", path, ": ", ec.message()));
  }
  std::ifstream in(path, std::ios::binary);
  const std::string name = std::filesystem::path(path).filename().string();

  auto context = env.connection.StreamContext();
  lorad::v1::Dataset dataset;
  auto writer = env.connection.datasets().Upload(context.get(), &dataset);

  lorad::v1::UploadDatasetRequest request;
  request.mutable_header()->set_filename(name);
  request.mutable_header()->set_size_bytes(size);
  bool stream_ok = writer->Write(request);

  LiveLine progress(stderr, env.out.live_stderr() && size >= kProgressMinBytes);
  const auto start = std::chrono::steady_clock::now();
  std::string buffer(kChunkBytes, '\0');
  int64_t sent = 0;
  while (stream_ok) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    std::streamsize n = in.gcount();
    if (n <= 0) break;
    request.set_chunk(buffer.data(), static_cast<size_t>(n));
    stream_ok = writer->Write(request);
    sent += n;
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    progress.Update(UploadLine(name, sent, size, seconds));
  }
  if (in.bad()) {
    // Do not let the server store a truncated file.
    context->TryCancel();
    writer->Finish();
    return absl::DataLossError(absl::StrCat("error reading ", path));
  }
  if (stream_ok) {
    progress.Update(absl::StrCat("validating ", name, " ..."));
    writer->WritesDone();
  }
  grpc::Status status = writer->Finish();
  progress.Clear();
  if (!status.ok()) return env.connection.Check(status);
  return dataset;
}

int RunUpload(const ParsedArgs& args, CommandEnv& env) {
  absl::StatusOr<std::string> path = OnePositional(args, "FILE");
  if (!path.ok()) return env.out.UsageFail(path.status(), env.command);
  absl::StatusOr<lorad::v1::Dataset> dataset = UploadFile(*path, env);
  if (!dataset.ok()) return env.out.Fail(dataset.status());
  if (env.out.json()) {
    env.out.PrintJson(*dataset);
  } else {
    env.out.Print(RenderDataset(*dataset));
  }
  return kExitOk;
}

int RunDatasets(const ParsedArgs& args, CommandEnv& env) {
  if (!args.positional().empty()) {
    return env.out.UsageFail(
        absl::InvalidArgumentError(
            absl::StrCat("unexpected argument \"", args.positional()[0], "\"")),
        env.command);
  }
  auto context = env.connection.UnaryContext();
  lorad::v1::ListDatasetsResponse response;
  grpc::Status status = env.connection.datasets().List(
      context.get(), lorad::v1::ListDatasetsRequest(), &response);
  if (!status.ok()) return env.out.Fail(env.connection.Check(status));
  if (env.out.json()) {
    for (const auto& dataset : response.datasets()) env.out.PrintJson(dataset);
  } else {
    env.out.Print(RenderDatasetsTable(response));
  }
  return kExitOk;
}

}  // namespace lorad::client
