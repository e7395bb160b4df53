// loractl smi (device and memory status like nvidia-smi) and loractl plot
// (a PNG of a job's curves).
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "chart.h"
#include "commands.h"
#include "smi_format.h"

namespace lorad::client {

const std::vector<FlagSpec>& SmiFlags() {
  static const auto* flags = new std::vector<FlagSpec>{
      {"l", true, false, "SECONDS",
       "refresh every SECONDS until interrupted, like nvidia-smi -l"},
      {"count", true, false, "N", "with -l: stop after N refreshes"},
  };
  return *flags;
}

const std::vector<FlagSpec>& PlotFlags() {
  static const auto* flags = new std::vector<FlagSpec>{
      {"o", true, false, "FILE.png", "where to write the PNG (required)"},
      {"width", true, false, "PIXELS", "image width (default 960)"},
      {"height", true, false, "PIXELS", "image height (default 640)"},
  };
  return *flags;
}

int RunSmi(const ParsedArgs& args, CommandEnv& env) {
  if (!args.positional().empty()) {
    return env.out.UsageFail(
        absl::InvalidArgumentError("smi takes no arguments"), env.command);
  }
  absl::StatusOr<std::optional<int32_t>> seconds = IntFlag(args, "l", 1, 3600);
  if (!seconds.ok()) return env.out.UsageFail(seconds.status(), env.command);
  absl::StatusOr<std::optional<int32_t>> count =
      IntFlag(args, "count", 1, 1 << 30);
  if (!count.ok()) return env.out.UsageFail(count.status(), env.command);
  const bool loop = seconds->has_value();
  const int rounds = loop ? count->value_or(0) : 1;  // 0: until interrupted
  for (int round = 0; rounds == 0 || round < rounds; ++round) {
    if (round > 0) std::this_thread::sleep_for(std::chrono::seconds(**seconds));
    lorad::v1::TelemetrySnapshot snapshot;
    auto context = env.connection.UnaryContext();
    grpc::Status status = env.connection.telemetry().Snapshot(
        context.get(), lorad::v1::GetTelemetryRequest(), &snapshot);
    if (!status.ok()) return env.out.Fail(env.connection.Check(status));
    if (env.out.json()) {
      env.out.PrintJson(snapshot);
      continue;
    }
    // Like nvidia-smi -l: each table below the previous one; on a terminal
    // the screen is cleared first so the table stays in place.
    if (loop && env.out.live_stdout()) env.out.Print("\033[H\033[2J");
    env.out.Print(FormatSmi(snapshot));
    if (loop && !env.out.live_stdout()) env.out.Print("\n");
  }
  return kExitOk;
}

int RunPlot(const ParsedArgs& args, CommandEnv& env) {
  absl::StatusOr<std::string> job_id = OnePositional(args, "JOB");
  if (!job_id.ok()) return env.out.UsageFail(job_id.status(), env.command);
  std::optional<std::string> path = args.Get("o");
  if (!path.has_value() || path->empty()) {
    return env.out.UsageFail(
        absl::InvalidArgumentError("-o FILE.png is required"), env.command);
  }
  absl::StatusOr<std::optional<int32_t>> width =
      IntFlag(args, "width", 200, 8192);
  if (!width.ok()) return env.out.UsageFail(width.status(), env.command);
  absl::StatusOr<std::optional<int32_t>> height =
      IntFlag(args, "height", 160, 8192);
  if (!height.ok()) return env.out.UsageFail(height.status(), env.command);

  lorad::v1::GetFineTuneJobRequest get;
  get.set_job_id(*job_id);
  lorad::v1::FineTuneJob job;
  {
    auto context = env.connection.UnaryContext();
    grpc::Status status =
        env.connection.fine_tuning().GetJob(context.get(), get, &job);
    if (!status.ok()) return env.out.Fail(env.connection.Check(status));
  }
  // The stored events; a job still running keeps its stream open, so the
  // history is read for a short while and the rest left for later.
  lorad::v1::WatchFineTuneJobRequest watch;
  watch.set_job_id(*job_id);
  std::vector<lorad::v1::JobEvent> events;
  auto context = env.connection.StreamContext();
  const bool final = job.state() == lorad::v1::SUCCEEDED ||
                     job.state() == lorad::v1::FAILED ||
                     job.state() == lorad::v1::CANCELLED;
  if (!final) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(3));
  }
  auto reader = env.connection.fine_tuning().WatchJob(context.get(), watch);
  lorad::v1::JobEvent event;
  while (reader->Read(&event)) events.push_back(event);
  grpc::Status status = reader->Finish();
  if (!status.ok() &&
      !(status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && !final)) {
    return env.out.Fail(env.connection.Check(status));
  }
  JobCurves curves = CurvesFromEvents(events);
  absl::StatusOr<std::string> png =
      RenderCurvesPng(curves, absl::StrCat("lorad ", *job_id),
                      width->value_or(960), height->value_or(640));
  if (!png.ok()) return env.out.Fail(png.status());
  std::ofstream file(*path, std::ios::binary | std::ios::trunc);
  file.write(png->data(), static_cast<std::streamsize>(png->size()));
  file.close();
  if (!file) {
    return env.out.Fail(
        absl::UnavailableError(absl::StrCat("cannot write ", *path)));
  }
  if (env.out.json()) {
    env.out.PrintJson(nlohmann::json{{"job_id", *job_id},
                                     {"path", *path},
                                     {"steps", curves.loss.size()},
                                     {"eval_points", curves.eval_loss.size()},
                                     {"bytes", png->size()}});
  } else {
    env.out.Print(absl::StrCat("wrote ", *path, " (", curves.loss.size(),
                               " steps, ", curves.eval_loss.size(),
                               " eval points)\n"));
  }
  return kExitOk;
}

}  // namespace lorad::client
