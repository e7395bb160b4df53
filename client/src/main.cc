// loractl: the remote CLI of lorad. `loractl COMMAND [flags] [args]`.
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "args.h"
#include "commands.h"
#include "connection.h"
#include "output.h"
#include "request_flags.h"

namespace lorad::client {
namespace {

struct Command {
  std::string name;
  std::string operands;  // e.g. "JOB"
  std::string summary;
  std::vector<FlagSpec> flags;
  int (*run)(const ParsedArgs&, CommandEnv&);
};

const std::vector<Command>& Commands() {
  static const auto* commands = new std::vector<Command>{
      {"upload",
       "FILE",
       "upload a JSONL dataset; prints its id",
       {},
       RunUpload},
      {"datasets", "", "list the uploaded datasets", {}, RunDatasets},
      {"finetune", "--train FILE|ID",
       "start a QLoRA fine-tune job and follow it", FineTuneFlags(),
       RunFineTune},
      {"jobs",
       "",
       "list fine-tune jobs",
       {{"limit", true, false, "N", "show at most N jobs"}},
       RunJobs},
      {"get", "JOB", "show a job, its memory estimate and peak", {}, RunGet},
      {"watch",
       "JOB",
       "follow a job's progress until it ends",
       {{"plot", false, false, "", "draw the loss curve when the job ends"}},
       RunWatch},
      {"cancel", "JOB", "cancel a job", {}, RunCancel},
      {"generate", "PROMPT", "generate text, optionally with an adapter",
       GenerateCommandFlags(), RunGenerate},
      {"chat", "", "chat interactively (messages from standard input)",
       ChatFlags(), RunChat},
      {"infer", "FILE.jsonl [-o OUT.jsonl]",
       "run a batch inference job and write its results in input order",
       InferFlags(), RunInfer},
      {"adapters", "ls|load|unload|rm|pull|export [NAME] [DIR]",
       "list and manage the served LoRA adapters", AdaptersFlags(),
       RunAdapters},
      {"smi", "", "GPU and memory status, laid out like nvidia-smi", SmiFlags(),
       RunSmi},
      {"plot", "JOB -o FILE.png",
       "write a PNG of a job's loss, eval loss and memory over steps",
       PlotFlags(), RunPlot},
      {"models",
       "inspect DIR",
       "what lorad will do with a model directory (read locally)",
       {},
       RunModels},
  };
  return *commands;
}

const Command* FindCommand(const std::string& name) {
  for (const Command& command : Commands()) {
    if (command.name == name) return &command;
  }
  return nullptr;
}

std::string MainUsage() {
  std::string out =
      "usage: loractl COMMAND [flags] [args]\n\n"
      "Talks to the lorad daemon over gRPC.\n\ncommands:\n";
  for (const Command& command : Commands()) {
    absl::StrAppendFormat(&out, "  %-10s %s\n", command.name, command.summary);
  }
  absl::StrAppend(&out, "\nglobal flags:\n", FlagsHelp(GlobalFlags()),
                  "\nRun 'loractl COMMAND --help' for a command's flags.\n"
                  "Exit codes: 0 ok, 1 server error or failed job, 2 usage, "
                  "3 lorad unreachable.\n");
  return out;
}

std::string CommandUsage(const Command& command) {
  std::string out = absl::StrCat(
      "usage: loractl ", command.name, command.flags.empty() ? "" : " [flags]",
      command.operands.empty() ? "" : " ", command.operands, "\n\n",
      command.summary, "\n");
  if (!command.flags.empty()) {
    absl::StrAppend(&out, "\nflags:\n", FlagsHelp(command.flags));
  }
  absl::StrAppend(&out, "\nglobal flags:\n", FlagsHelp(GlobalFlags()));
  return out;
}

bool IsHelp(const std::string& arg) { return arg == "-h" || arg == "--help"; }

bool GlobalFlagTakesValue(const std::string& arg) {
  for (const FlagSpec& spec : GlobalFlags()) {
    if (arg == absl::StrCat("--", spec.name)) return spec.takes_value;
  }
  return false;
}

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  bool json = false;
  for (const std::string& arg : args) json = json || arg == "--json";
  Output out(json, isatty(STDOUT_FILENO) != 0, isatty(STDERR_FILENO) != 0);

  // Global flags may also come before the command.
  std::vector<std::string> rest;
  size_t i = 0;
  while (i < args.size() && args[i].starts_with("-")) {
    if (IsHelp(args[i])) {
      out.Print(MainUsage());
      return kExitOk;
    }
    rest.push_back(args[i]);
    if (GlobalFlagTakesValue(args[i]) && i + 1 < args.size()) {
      rest.push_back(args[++i]);
    }
    ++i;
  }
  if (i == args.size()) {
    out.PrintErr(MainUsage());
    return kExitUsage;
  }
  const std::string name = args[i++];
  if (name == "help") {
    const Command* command = i < args.size() ? FindCommand(args[i]) : nullptr;
    out.Print(command != nullptr ? CommandUsage(*command) : MainUsage());
    return kExitOk;
  }
  const Command* command = FindCommand(name);
  if (command == nullptr) {
    return out.UsageFail(absl::InvalidArgumentError(
                             absl::StrCat("unknown command \"", name, "\"")),
                         "");
  }
  for (; i < args.size(); ++i) {
    if (args[i] == "--") {
      rest.insert(rest.end(), args.begin() + i, args.end());
      break;
    }
    if (IsHelp(args[i])) {
      out.Print(CommandUsage(*command));
      return kExitOk;
    }
    rest.push_back(args[i]);
  }

  std::vector<FlagSpec> specs = command->flags;
  specs.insert(specs.end(), GlobalFlags().begin(), GlobalFlags().end());
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(rest, specs);
  if (!parsed.ok()) return out.UsageFail(parsed.status(), name);
  absl::StatusOr<GlobalOptions> global =
      ParseGlobalOptions(*parsed, std::getenv("LORAD_ADDRESS"));
  if (!global.ok()) return out.UsageFail(global.status(), name);
  absl::StatusOr<std::string> token = ResolveToken(
      *parsed, std::getenv("LORAD_TOKEN"),
      DefaultConfigPath(std::getenv("XDG_CONFIG_HOME"), std::getenv("HOME")));
  if (!token.ok()) return out.UsageFail(token.status(), name);
  global->token = *std::move(token);
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      ChannelCredentials(global->tls);
  if (!credentials.ok()) return out.UsageFail(credentials.status(), name);
  global->credentials = *std::move(credentials);

  Connection connection(*global);
  CommandEnv env{name, out, connection};
  return command->run(*parsed, env);
}

}  // namespace
}  // namespace lorad::client

int main(int argc, char** argv) { return lorad::client::Main(argc, argv); }
