// loractl chat: an interactive chat over Inference.Generate. Each line read
// from standard input is a user message; the whole conversation goes with
// every request and the answer streams back.
#include <unistd.h>

#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "commands.h"
#include "request_flags.h"

namespace lorad::client {

int RunChat(const ParsedArgs& args, CommandEnv& env) {
  if (!args.positional().empty()) {
    return env.out.UsageFail(
        absl::InvalidArgumentError("chat takes no arguments; type messages"),
        env.command);
  }
  absl::StatusOr<lorad::v1::GenerateRequest> base =
      ParseGenerateRequest(args, "");
  if (!base.ok()) return env.out.UsageFail(base.status(), env.command);
  base->clear_prompt();
  if (std::optional<std::string> system = args.Get("system")) {
    lorad::v1::ChatMessage* m = base->add_messages();
    m->set_role("system");
    m->set_content(*system);
  }
  const bool interactive = isatty(STDIN_FILENO) != 0 && !env.out.json();
  if (interactive) {
    env.out.PrintErr(
        "Type a message and press Enter; /reset starts over, Ctrl-D ends.\n");
  }
  lorad::v1::GenerateRequest conversation = *base;
  std::string line;
  while (true) {
    if (interactive) env.out.PrintErr("> ");
    if (!std::getline(std::cin, line)) break;
    std::string text(absl::StripAsciiWhitespace(line));
    if (text.empty()) continue;
    if (text == "/reset") {
      conversation = *base;
      continue;
    }
    lorad::v1::ChatMessage* user = conversation.add_messages();
    user->set_role("user");
    user->set_content(text);

    std::string answer;
    auto context = env.connection.StreamContext();
    auto reader =
        env.connection.inference().Generate(context.get(), conversation);
    lorad::v1::GenerateResponse response;
    while (reader->Read(&response)) {
      answer += response.text();
      if (env.out.json()) {
        env.out.PrintJson(response);
      } else {
        env.out.Print(response.text());
      }
    }
    grpc::Status status = reader->Finish();
    if (!env.out.json()) env.out.Print("\n");
    if (!status.ok()) return env.out.Fail(env.connection.Check(status));
    lorad::v1::ChatMessage* assistant = conversation.add_messages();
    assistant->set_role("assistant");
    assistant->set_content(answer);
  }
  if (interactive) env.out.PrintErr("\n");
  return kExitOk;
}

const std::vector<FlagSpec>& ChatFlags() {
  static const auto* flags = [] {
    auto* f = new std::vector<FlagSpec>(GenerateFlags());
    f->push_back({"system", true, false, "TEXT", "a system message first"});
    return f;
  }();
  return *flags;
}

}  // namespace lorad::client
