// loractl infer FILE.jsonl -o OUT.jsonl: a batch inference job, followed
// with a progress bar, its results written in input order.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "commands.h"
#include "format.h"
#include "live_line.h"
#include "progress.h"
#include "request_flags.h"

namespace lorad::client {
namespace {

constexpr size_t kChunkBytes = 1 << 20;

absl::StatusOr<lorad::v1::BatchJob> Submit(
    const std::string& path, const lorad::v1::GenerateRequest& defaults,
    CommandEnv& env) {
  std::ifstream in(path, std::ios::binary);
  std::string contents((std::istreambuf_iterator<char>(in)),
                       std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    return absl::FailedPreconditionError(absl::StrCat("cannot read ", path));
  }
  lorad::v1::BatchJob job;
  auto context = env.connection.StreamContext();
  auto writer = env.connection.batch().CreateJob(context.get(), &job);
  lorad::v1::CreateBatchJobRequest header;
  header.mutable_header()->set_filename(
      path.substr(path.find_last_of('/') + 1));
  header.mutable_header()->set_size_bytes(
      static_cast<int64_t>(contents.size()));
  *header.mutable_header()->mutable_defaults() = defaults;
  bool ok = writer->Write(header);
  for (size_t at = 0; ok && at < contents.size(); at += kChunkBytes) {
    lorad::v1::CreateBatchJobRequest chunk;
    chunk.set_chunk(contents.substr(at, kChunkBytes));
    ok = writer->Write(chunk);
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (!status.ok()) return env.connection.Check(status);
  return job;
}

// "[#####-----] 120/400 requests  12.3 req/s  ETA 00:00:22  3 failed"
std::string ProgressLine(const lorad::v1::BatchProgress& p,
                         const StepRateEstimator& rate, int width) {
  std::string line = absl::StrCat(RenderBar(p.completed(), p.total(), 20), " ",
                                  p.completed(), "/", p.total(), " requests");
  if (std::optional<double> rps = rate.StepsPerSecond()) {
    absl::StrAppendFormat(&line, "  %.1f req/s", *rps);
  }
  absl::StrAppend(&line, "  ETA ",
                  FormatDuration(rate.EtaSeconds(p.total()).value_or(-1)));
  if (p.failed() > 0) absl::StrAppend(&line, "  ", p.failed(), " failed");
  return FitToWidth(line, width);
}

}  // namespace

int RunInfer(const ParsedArgs& args, CommandEnv& env) {
  absl::StatusOr<std::string> input = OnePositional(args, "FILE.jsonl");
  if (!input.ok()) return env.out.UsageFail(input.status(), env.command);
  absl::StatusOr<lorad::v1::GenerateRequest> defaults =
      ParseGenerateRequest(args, "");
  if (!defaults.ok()) return env.out.UsageFail(defaults.status(), env.command);
  const std::string output =
      args.Get("output").value_or(args.Get("o").value_or("-"));
  absl::Status readable = CheckLocalFile(*input);
  if (!readable.ok()) return env.out.Fail(readable);

  absl::StatusOr<lorad::v1::BatchJob> job = Submit(*input, *defaults, env);
  if (!job.ok()) return env.out.Fail(job.status());
  if (env.out.json()) {
    env.out.PrintJson(*job);
  } else {
    env.out.PrintErr(absl::StrCat("batch job ", job->id(), ": ",
                                  job->num_requests(), " requests\n"));
  }

  // Follow: the bar goes to stderr so that results can go to stdout.
  LiveLine live(stderr, env.out.live_stderr());
  StepRateEstimator rate;
  const auto start = std::chrono::steady_clock::now();
  lorad::v1::WatchBatchJobRequest watch;
  watch.set_job_id(job->id());
  {
    auto context = env.connection.StreamContext();
    auto reader = env.connection.batch().WatchJob(context.get(), watch);
    lorad::v1::JobEvent event;
    while (reader->Read(&event)) {
      if (env.out.json()) {
        env.out.PrintJson(event);
        continue;
      }
      if (event.has_batch()) {
        rate.Add(event.batch().completed(),
                 std::chrono::duration<double>(
                     std::chrono::steady_clock::now() - start)
                     .count());
        live.Update(ProgressLine(event.batch(), rate, TerminalWidth(stderr)));
      } else if (event.has_state()) {
        live.PrintAbove(absl::StrCat(JobStateName(event.state().state()), ": ",
                                     event.state().message()));
      }
    }
    grpc::Status status = reader->Finish();
    live.Clear();
    if (!status.ok()) return env.out.Fail(env.connection.Check(status));
  }

  lorad::v1::GetBatchJobRequest get;
  get.set_job_id(job->id());
  auto context = env.connection.UnaryContext();
  grpc::Status status =
      env.connection.batch().GetJob(context.get(), get, &*job);
  if (!status.ok()) return env.out.Fail(env.connection.Check(status));

  // The results, in input order.
  std::ofstream file;
  if (output != "-") {
    file.open(output, std::ios::binary | std::ios::trunc);
    if (!file) {
      return env.out.Fail(
          absl::FailedPreconditionError(absl::StrCat("cannot write ", output)));
    }
  }
  lorad::v1::GetBatchResultsRequest results;
  results.set_job_id(job->id());
  auto results_context = env.connection.StreamContext();
  auto reader =
      env.connection.batch().GetResults(results_context.get(), results);
  lorad::v1::BatchResultsChunk chunk;
  while (reader->Read(&chunk)) {
    if (file.is_open()) {
      file.write(chunk.data().data(),
                 static_cast<std::streamsize>(chunk.data().size()));
    } else {
      env.out.Print(chunk.data());
    }
  }
  status = reader->Finish();
  file.close();
  if (!status.ok()) return env.out.Fail(env.connection.Check(status));

  if (env.out.json()) {
    env.out.PrintJson(*job);
  } else {
    env.out.PrintErr(absl::StrCat(
        "batch job ", job->id(), " ", JobStateName(job->state()), ": ",
        job->completed() - job->failed(), " answered, ", job->failed(),
        " failed", output != "-" ? absl::StrCat("; results in ", output) : "",
        "\n"));
  }
  return job->state() == lorad::v1::SUCCEEDED ? kExitOk : kExitFailure;
}

const std::vector<FlagSpec>& InferFlags() {
  static const auto* flags = [] {
    auto* f = new std::vector<FlagSpec>(GenerateFlags());
    f->push_back({"output", true, false, "FILE",
                  "where the results go (default: standard output)"});
    f->push_back({"o", true, false, "FILE", "same as --output"});
    return f;
  }();
  return *flags;
}

}  // namespace lorad::client
