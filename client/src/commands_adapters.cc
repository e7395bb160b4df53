// loractl adapters ls|load|unload|rm|pull|export: the Adapters API.
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "commands.h"
#include "format.h"
#include "table.h"

namespace lorad::client {
namespace {

namespace fs = std::filesystem;

constexpr size_t kChunkBytes = 1 << 20;
constexpr const char* kAdapterFiles[] = {"adapter_config.json",
                                         "adapter_model.safetensors"};

int PrintAdapter(const lorad::v1::Adapter& adapter, CommandEnv& env,
                 const std::string& verb) {
  if (env.out.json()) {
    env.out.PrintJson(adapter);
  } else {
    env.out.Print(absl::StrCat(
        verb, " ", adapter.name(), " version ", adapter.version(), " (rank ",
        adapter.rank(), ", ", HumanBytes(adapter.size_bytes()),
        adapter.quantization() == "int8" ? ", on the int8 base" : "", ")\n"));
  }
  return kExitOk;
}

int List(CommandEnv& env) {
  auto context = env.connection.UnaryContext();
  lorad::v1::ListAdaptersResponse response;
  grpc::Status status = env.connection.adapters().List(
      context.get(), lorad::v1::ListAdaptersRequest(), &response);
  if (!status.ok()) return env.out.Fail(env.connection.Check(status));
  if (env.out.json()) {
    for (const auto& a : response.adapters()) env.out.PrintJson(a);
    return kExitOk;
  }
  Table table({"NAME", "VERSION", "RANK", "TARGETS", "SIZE", "RESIDENT",
               "SOURCE", "CREATED"});
  for (const auto& a : response.adapters()) {
    table.AddRow({a.name() + (a.pinned() ? " (pinned)" : "") +
                      (a.quantization() == "int8" ? " (int8)" : ""),
                  absl::StrCat(a.version()), absl::StrCat(a.rank()),
                  absl::StrJoin(a.target_modules(), ","),
                  HumanBytes(a.size_bytes()), a.residency(),
                  a.source_job().empty() ? "upload" : a.source_job(),
                  FormatUnixTime(a.created_at_unix())});
  }
  env.out.Print(table.Render());
  return kExitOk;
}

// Streams a PEFT directory's two files to Adapters.Upload.
int Upload(const std::string& name, const std::string& dir, bool pinned,
           CommandEnv& env) {
  for (const char* file : kAdapterFiles) {
    absl::Status ok = CheckLocalFile(absl::StrCat(dir, "/", file));
    if (!ok.ok()) return env.out.Fail(ok);
  }
  lorad::v1::Adapter adapter;
  auto context = env.connection.StreamContext();
  auto writer = env.connection.adapters().Upload(context.get(), &adapter);
  lorad::v1::UploadAdapterRequest header;
  header.mutable_header()->set_name(name);
  header.mutable_header()->set_pinned(pinned);
  bool ok = writer->Write(header);
  for (const char* file : kAdapterFiles) {
    std::ifstream in(absl::StrCat(dir, "/", file), std::ios::binary);
    std::string data(kChunkBytes, '\0');
    bool first = true;
    while (ok && in) {
      in.read(data.data(), static_cast<std::streamsize>(data.size()));
      const size_t got = static_cast<size_t>(in.gcount());
      if (got == 0 && !first) break;
      first = false;
      lorad::v1::UploadAdapterRequest chunk;
      chunk.mutable_chunk()->set_filename(file);
      chunk.mutable_chunk()->set_data(data.substr(0, got));
      ok = writer->Write(chunk);
    }
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (!status.ok()) return env.out.Fail(env.connection.Check(status));
  return PrintAdapter(adapter, env, "loaded");
}

int Load(const ParsedArgs& args, CommandEnv& env) {
  const std::vector<std::string>& pos = args.positional();
  const bool pinned = args.Switch("pin");
  std::optional<std::string> job = args.Get("job");
  if (!job.has_value() && pos.size() == 3)
    return Upload(pos[1], pos[2], pinned, env);
  if (pos.size() > 2 || (!job.has_value() && pos.size() != 2)) {
    return env.out.UsageFail(
        absl::InvalidArgumentError(
            "usage: adapters load NAME DIR | adapters load --job JOB [NAME] "
            "| adapters load NAME"),
        env.command);
  }
  lorad::v1::LoadAdapterRequest request;
  if (pos.size() == 2) request.set_name(pos[1]);
  if (job.has_value()) request.set_job_id(*job);
  request.set_pinned(pinned);
  lorad::v1::Adapter adapter;
  auto context = env.connection.StreamContext();
  grpc::Status status =
      env.connection.adapters().Load(context.get(), request, &adapter);
  if (!status.ok()) return env.out.Fail(env.connection.Check(status));
  return PrintAdapter(adapter, env, "loaded");
}

// Writes the downloaded files of `name` into `dir`.
int Pull(const std::string& name, const std::string& dir, bool merged,
         CommandEnv& env) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return env.out.Fail(absl::FailedPreconditionError(
        absl::StrCat("cannot create ", dir, ": ", ec.message())));
  }
  lorad::v1::DownloadAdapterRequest request;
  request.set_name(name);
  request.set_merged(merged);
  auto context = env.connection.StreamContext();
  auto reader = env.connection.adapters().Download(context.get(), request);
  lorad::v1::FileChunk chunk;
  std::map<std::string, int64_t> written;
  std::ofstream out;
  std::string current;
  while (reader->Read(&chunk)) {
    const std::string file = fs::path(chunk.filename()).filename().string();
    if (file.empty() || file == "." || file == "..") continue;
    if (file != current) {
      out.close();
      current = file;
      out.open(fs::path(dir) / file, std::ios::binary | std::ios::trunc);
    }
    out.write(chunk.data().data(),
              static_cast<std::streamsize>(chunk.data().size()));
    written[file] += static_cast<int64_t>(chunk.data().size());
  }
  out.close();
  grpc::Status status = reader->Finish();
  if (!status.ok()) return env.out.Fail(env.connection.Check(status));
  for (const auto& [file, bytes] : written) {
    const std::string path = (fs::path(dir) / file).string();
    if (env.out.json()) {
      env.out.PrintJson(nlohmann::json{{"file", path}, {"size_bytes", bytes}});
    } else {
      env.out.Print(absl::StrCat(path, "  ", HumanBytes(bytes), "\n"));
    }
  }
  return kExitOk;
}

}  // namespace

int RunAdapters(const ParsedArgs& args, CommandEnv& env) {
  const std::vector<std::string>& pos = args.positional();
  if (pos.empty()) {
    return env.out.UsageFail(
        absl::InvalidArgumentError(
            "SUBCOMMAND: one of ls, load, unload, rm, pull, export"),
        env.command);
  }
  const std::string& sub = pos[0];
  if (sub == "ls" || sub == "list") return List(env);
  if (sub == "load") return Load(args, env);
  if (pos.size() != 2) {
    return env.out.UsageFail(
        absl::InvalidArgumentError(absl::StrCat("adapters ", sub, " NAME")),
        env.command);
  }
  const std::string& name = pos[1];
  if (sub == "unload") {
    lorad::v1::UnloadAdapterRequest request;
    request.set_name(name);
    lorad::v1::Adapter adapter;
    auto context = env.connection.UnaryContext();
    grpc::Status status =
        env.connection.adapters().Unload(context.get(), request, &adapter);
    if (!status.ok()) return env.out.Fail(env.connection.Check(status));
    return PrintAdapter(adapter, env, "unloaded");
  }
  if (sub == "rm") {
    lorad::v1::DeleteAdapterRequest request;
    request.set_name(name);
    lorad::v1::DeleteAdapterResponse response;
    auto context = env.connection.UnaryContext();
    grpc::Status status =
        env.connection.adapters().Delete(context.get(), request, &response);
    if (!status.ok()) return env.out.Fail(env.connection.Check(status));
    if (env.out.json()) {
      env.out.PrintJson(nlohmann::json{{"deleted", name}});
    } else {
      env.out.Print(absl::StrCat("deleted ", name, "\n"));
    }
    return kExitOk;
  }
  const std::string dir =
      args.Get("output").value_or(args.Get("o").value_or(name));
  if (sub == "pull") return Pull(name, dir, args.Switch("merged"), env);
  if (sub == "export") {
    lorad::v1::ExportMergedRequest request;
    request.set_name(name);
    request.set_dtype(args.Get("dtype").value_or(""));
    lorad::v1::ExportMergedResponse response;
    auto context = env.connection.StreamContext();
    grpc::Status status = env.connection.adapters().ExportMerged(
        context.get(), request, &response);
    if (!status.ok()) return env.out.Fail(env.connection.Check(status));
    if (env.out.json()) {
      env.out.PrintJson(response);
    } else {
      env.out.Print(absl::StrCat("merged checkpoint of ", name, " at ",
                                 response.path(), " (",
                                 HumanBytes(response.size_bytes()), ")\n"));
    }
    if (args.Has("output") || args.Has("o")) {
      return Pull(name, dir, /*merged=*/true, env);
    }
    return kExitOk;
  }
  return env.out.UsageFail(
      absl::InvalidArgumentError(absl::StrCat("unknown subcommand \"", sub,
                                              "\" (ls, load, unload, rm, "
                                              "pull, export)")),
      env.command);
}

const std::vector<FlagSpec>& AdaptersFlags() {
  static const auto* flags = new std::vector<FlagSpec>{
      {"job", true, false, "JOB",
       "load: register this fine-tune job's adapter"},
      {"pin", false, false, "", "load: keep it resident on the device"},
      {"output", true, false, "DIR", "pull/export: where to write the files"},
      {"o", true, false, "DIR", "same as --output"},
      {"merged", false, false, "", "pull: the merged checkpoint"},
      {"dtype", true, false, "T", "export: bfloat16 (default) or float16"},
  };
  return *flags;
}

}  // namespace lorad::client
