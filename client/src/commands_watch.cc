// loractl watch: follow a fine-tune job's event stream.
#include <chrono>

#include "absl/strings/str_cat.h"
#include "chart.h"
#include "commands.h"
#include "format.h"
#include "job_view.h"
#include "live_line.h"
#include "progress.h"

namespace lorad::client {
namespace {

constexpr int kBarWidth = 10;

// Renders the events of one job: a live progress line on a terminal, one
// plain line per event otherwise, one JSON object per event with --json.
class EventPrinter {
 public:
  explicit EventPrinter(Output& out)
      : out_(out), live_(stdout, out.live_stdout()) {}

  void Print(const lorad::v1::JobEvent& event) {
    if (out_.json()) {
      out_.PrintJson(event);
      return;
    }
    switch (event.kind_case()) {
      case lorad::v1::JobEvent::kStep:
        PrintStep(event);
        break;
      case lorad::v1::JobEvent::kEval:
        Line(RenderEvalLine(event.eval()));
        break;
      case lorad::v1::JobEvent::kState:
        Line(RenderStateChange(event.state()));
        break;
      case lorad::v1::JobEvent::kLog:
        Line(event.log());
        break;
      case lorad::v1::JobEvent::KIND_NOT_SET:
        break;
    }
  }

  // Removes the live line before the summary.
  void Finish() { live_.Clear(); }

 private:
  void PrintStep(const lorad::v1::JobEvent& event) {
    const lorad::v1::TrainStep& step = event.step();
    double now = event.time_unix_ms() > 0
                     ? static_cast<double>(event.time_unix_ms()) / 1000.0
                     : std::chrono::duration<double>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    rate_.Add(step.step(), now);
    std::string text = RenderTrainLine(
        step, rate_.EtaSeconds(step.total_steps()),
        DisplayedMemoryBytes(event.memory()), live_.enabled() ? kBarWidth : 0);
    if (live_.enabled()) {
      live_.Update(text);
    } else {
      out_.Print(absl::StrCat(text, "\n"));
    }
  }

  // A line of its own, above the live line when there is one.
  void Line(const std::string& text) {
    if (live_.enabled()) {
      live_.PrintAbove(text);
    } else {
      out_.Print(absl::StrCat(text, "\n"));
    }
  }

  Output& out_;
  LiveLine live_;
  StepRateEstimator rate_;
};

}  // namespace

int FollowJob(const std::string& job_id, CommandEnv& env, bool plot) {
  lorad::v1::WatchFineTuneJobRequest request;
  request.set_job_id(job_id);
  EventPrinter printer(env.out);
  {
    auto context = env.connection.StreamContext();
    auto reader = env.connection.fine_tuning().WatchJob(context.get(), request);
    lorad::v1::JobEvent event;
    Curve loss;
    while (reader->Read(&event)) {
      printer.Print(event);
      if (event.has_step())
        loss.emplace_back(event.step().step(), event.step().loss());
    }
    grpc::Status status = reader->Finish();
    printer.Finish();
    if (plot && !env.out.json()) env.out.Print(RenderTextChart(loss));
    if (!status.ok()) return env.out.Fail(env.connection.Check(status));
  }

  lorad::v1::GetFineTuneJobRequest get;
  get.set_job_id(job_id);
  lorad::v1::FineTuneJob job;
  auto context = env.connection.UnaryContext();
  grpc::Status status =
      env.connection.fine_tuning().GetJob(context.get(), get, &job);
  if (!status.ok()) return env.out.Fail(env.connection.Check(status));
  if (env.out.json()) {
    env.out.PrintJson(job);
  } else {
    env.out.Print(RenderJobSummary(job));
  }
  if (job.state() == lorad::v1::SUCCEEDED) return kExitOk;
  if (!IsFinalState(job.state()) && !env.out.json()) {
    env.out.PrintErr(absl::StrCat("loractl: the event stream ended while job ",
                                  job_id, " is ", JobStateName(job.state()),
                                  "\n"));
  }
  return kExitFailure;
}

int RunWatch(const ParsedArgs& args, CommandEnv& env) {
  absl::StatusOr<std::string> job_id = OnePositional(args, "JOB");
  if (!job_id.ok()) return env.out.UsageFail(job_id.status(), env.command);
  return FollowJob(*job_id, env, args.Switch("plot"));
}

}  // namespace lorad::client
