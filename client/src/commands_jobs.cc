// loractl finetune, jobs, get, cancel.
#include <filesystem>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "commands.h"
#include "format.h"
#include "job_view.h"
#include "request_flags.h"

namespace lorad::client {
namespace {

bool IsExistingPath(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

// Checks a --train / --validation argument before any RPC.
absl::Status CheckDatasetArg(const std::string& arg) {
  switch (ClassifyDatasetArg(arg, IsExistingPath(arg))) {
    case DatasetArgKind::kFile:
      return CheckLocalFile(arg);
    case DatasetArgKind::kDatasetId:
      return absl::OkStatus();
    case DatasetArgKind::kMissingFile:
      return absl::NotFoundError(absl::StrCat(
          "no such file: ", arg, " (dataset ids start with \"ds-\")"));
  }
  return absl::OkStatus();
}

// The dataset id for `arg`, uploading it first when it is a file.
absl::StatusOr<std::string> ResolveDataset(const std::string& arg,
                                           CommandEnv& env) {
  if (ClassifyDatasetArg(arg, IsExistingPath(arg)) != DatasetArgKind::kFile) {
    return arg;
  }
  absl::StatusOr<lorad::v1::Dataset> dataset = UploadFile(arg, env);
  if (!dataset.ok()) return dataset.status();
  if (env.out.json()) {
    env.out.PrintJson(*dataset);
  } else {
    env.out.Print(absl::StrCat("uploaded ", arg, ": ", dataset->id(), " (",
                               dataset->format(), ", ", dataset->num_examples(),
                               " examples)\n"));
  }
  return dataset->id();
}

// Runs a unary FineTuning call on JOB and prints the job it returns.
template <typename Request, typename Call>
int JobCall(const ParsedArgs& args, CommandEnv& env, Call call, bool details) {
  absl::StatusOr<std::string> job_id = OnePositional(args, "JOB");
  if (!job_id.ok()) return env.out.UsageFail(job_id.status(), env.command);
  Request request;
  request.set_job_id(*job_id);
  lorad::v1::FineTuneJob job;
  auto context = env.connection.UnaryContext();
  grpc::Status status = call(context.get(), request, &job);
  if (!status.ok()) return env.out.Fail(env.connection.Check(status));
  if (env.out.json()) {
    env.out.PrintJson(job);
  } else if (details) {
    env.out.Print(RenderJobDetails(job));
  } else {
    env.out.Print(
        absl::StrCat("job ", job.id(), " ", JobStateName(job.state()), "\n"));
  }
  return kExitOk;
}

}  // namespace

int RunFineTune(const ParsedArgs& args, CommandEnv& env) {
  absl::StatusOr<FineTuneOptions> options = ParseFineTuneOptions(args);
  if (!options.ok()) return env.out.UsageFail(options.status(), env.command);
  for (const std::string& warning : options->warnings) {
    env.out.PrintErr(absl::StrCat("loractl: warning: ", warning, "\n"));
  }
  // Every local file is checked before the first upload.
  for (const std::string* arg : {&options->train, &options->validation}) {
    if (arg->empty()) continue;
    if (absl::Status s = CheckDatasetArg(*arg); !s.ok()) {
      return env.out.Fail(s);
    }
  }

  lorad::v1::CreateFineTuneJobRequest& request = options->request;
  absl::StatusOr<std::string> train = ResolveDataset(options->train, env);
  if (!train.ok()) return env.out.Fail(train.status());
  request.set_training_file(*train);
  if (!options->validation.empty()) {
    absl::StatusOr<std::string> validation =
        ResolveDataset(options->validation, env);
    if (!validation.ok()) return env.out.Fail(validation.status());
    request.set_validation_file(*validation);
  }

  lorad::v1::FineTuneJob job;
  auto context = env.connection.UnaryContext();
  grpc::Status status =
      env.connection.fine_tuning().CreateJob(context.get(), request, &job);
  if (!status.ok()) return env.out.Fail(env.connection.Check(status));
  if (env.out.json()) {
    env.out.PrintJson(job);
  } else {
    std::string line =
        absl::StrCat("created job ", job.id(), " (", JobStateName(job.state()));
    if (job.memory_estimate().total_bytes() > 0) {
      absl::StrAppend(&line, ", memory estimate ",
                      HumanBytes(job.memory_estimate().total_bytes()));
    }
    env.out.Print(absl::StrCat(line, ")\n"));
  }
  if (!options->follow) {
    if (!env.out.json()) {
      env.out.Print(
          absl::StrCat("follow it with: loractl watch ", job.id(), "\n"));
    }
    return kExitOk;
  }
  return FollowJob(job.id(), env, args.Switch("plot"));
}

int RunJobs(const ParsedArgs& args, CommandEnv& env) {
  if (!args.positional().empty()) {
    return env.out.UsageFail(
        absl::InvalidArgumentError(
            absl::StrCat("unexpected argument \"", args.positional()[0], "\"")),
        env.command);
  }
  absl::StatusOr<std::optional<int32_t>> limit =
      IntFlag(args, "limit", 1, std::numeric_limits<int32_t>::max());
  if (!limit.ok()) return env.out.UsageFail(limit.status(), env.command);
  lorad::v1::ListFineTuneJobsRequest request;
  if (limit->has_value()) request.set_limit(**limit);
  lorad::v1::ListFineTuneJobsResponse response;
  auto context = env.connection.UnaryContext();
  grpc::Status status =
      env.connection.fine_tuning().ListJobs(context.get(), request, &response);
  if (!status.ok()) return env.out.Fail(env.connection.Check(status));
  if (env.out.json()) {
    for (const auto& job : response.jobs()) env.out.PrintJson(job);
  } else {
    env.out.Print(RenderJobsTable(response));
  }
  return kExitOk;
}

int RunGet(const ParsedArgs& args, CommandEnv& env) {
  auto& stub = env.connection.fine_tuning();
  return JobCall<lorad::v1::GetFineTuneJobRequest>(
      args, env,
      [&stub](grpc::ClientContext* c, const auto& r, auto* job) {
        return stub.GetJob(c, r, job);
      },
      /*details=*/true);
}

int RunCancel(const ParsedArgs& args, CommandEnv& env) {
  auto& stub = env.connection.fine_tuning();
  return JobCall<lorad::v1::CancelFineTuneJobRequest>(
      args, env,
      [&stub](grpc::ClientContext* c, const auto& r, auto* job) {
        return stub.CancelJob(c, r, job);
      },
      /*details=*/false);
}

}  // namespace lorad::client
