// loractl models inspect DIR: what lorad will do with a model directory,
// read here without loading its weights (model/inspect.h). It runs on the
// machine that holds the directory and makes no RPC.
#include "absl/strings/str_cat.h"
#include "commands.h"
#include "lorad/model/inspect.h"

namespace lorad::client {

int RunModels(const ParsedArgs& args, CommandEnv& env) {
  const std::vector<std::string>& pos = args.positional();
  if (pos.size() != 2 || pos[0] != "inspect") {
    return env.out.UsageFail(
        absl::InvalidArgumentError("usage: loractl models inspect DIR"),
        env.command);
  }
  const nlohmann::ordered_json report = model::InspectModelDir(pos[1]);
  if (env.out.json()) {
    env.out.PrintJson(nlohmann::json::parse(report.dump()));
  } else {
    env.out.Print(model::FormatInspection(report));
  }
  // Exit 1 (the command's failure) when lorad could not run the model.
  return report["ready"].get<bool>() ? kExitOk : kExitFailure;
}

}  // namespace lorad::client
