// The loractl subcommands. Each returns the process exit code (see
// output.h) and never aborts on bad input.
#ifndef LORAD_CLIENT_COMMANDS_H_
#define LORAD_CLIENT_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "args.h"
#include "connection.h"
#include "lorad/v1/lorad.pb.h"
#include "output.h"

namespace lorad::client {

// What every command works with.
struct CommandEnv {
  std::string command;  // The subcommand's name, for usage messages.
  Output& out;
  Connection& connection;
};

int RunUpload(const ParsedArgs& args, CommandEnv& env);
int RunDatasets(const ParsedArgs& args, CommandEnv& env);
int RunFineTune(const ParsedArgs& args, CommandEnv& env);
int RunJobs(const ParsedArgs& args, CommandEnv& env);
int RunGet(const ParsedArgs& args, CommandEnv& env);
int RunCancel(const ParsedArgs& args, CommandEnv& env);
int RunWatch(const ParsedArgs& args, CommandEnv& env);
int RunGenerate(const ParsedArgs& args, CommandEnv& env);
int RunChat(const ParsedArgs& args, CommandEnv& env);
int RunInfer(const ParsedArgs& args, CommandEnv& env);
int RunAdapters(const ParsedArgs& args, CommandEnv& env);
int RunSmi(const ParsedArgs& args, CommandEnv& env);
int RunPlot(const ParsedArgs& args, CommandEnv& env);
int RunModels(const ParsedArgs& args, CommandEnv& env);

// The flags of chat, infer and adapters.
const std::vector<FlagSpec>& GenerateCommandFlags();
const std::vector<FlagSpec>& ChatFlags();
const std::vector<FlagSpec>& InferFlags();
const std::vector<FlagSpec>& AdaptersFlags();
const std::vector<FlagSpec>& SmiFlags();
const std::vector<FlagSpec>& PlotFlags();

// Checks that `path` is a readable regular file: NotFound or
// InvalidArgument otherwise. Makes no RPC.
absl::Status CheckLocalFile(const std::string& path);

// Streams the JSONL file at `path` to Datasets.Upload: a header, then 1 MiB
// chunks. Shows progress on stderr for large files when it is a terminal.
absl::StatusOr<lorad::v1::Dataset> UploadFile(const std::string& path,
                                              CommandEnv& env);

// Streams the events of `job_id` until it reaches a final state, then
// prints its summary. kExitOk when it succeeded, kExitFailure when it
// failed or was cancelled, kExitUnavailable when lorad could not be reached.
// With `plot`, the loss curve is drawn in the terminal once the stream ends.
int FollowJob(const std::string& job_id, CommandEnv& env, bool plot = false);

}  // namespace lorad::client

#endif  // LORAD_CLIENT_COMMANDS_H_
