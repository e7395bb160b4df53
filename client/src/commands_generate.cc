// loractl generate: stream text from Inference.Generate.
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <iterator>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "commands.h"
#include "request_flags.h"

namespace lorad::client {
namespace {

// "prompt 5 tokens, completion 64 tokens, first token 0.123 s, 45.6 tokens/s,
// finish length"
std::string UsageLine(const lorad::v1::GenerateUsage& usage,
                      const std::string& finish_reason) {
  std::string line = absl::StrFormat(
      "prompt %d tokens, completion %d tokens, first token "
      "%.3f s",
      usage.prompt_tokens(), usage.completion_tokens(),
      usage.time_to_first_token_seconds());
  if (usage.total_seconds() > 0) {
    absl::StrAppendFormat(&line, ", %.1f tokens/s",
                          usage.completion_tokens() / usage.total_seconds());
  }
  if (!finish_reason.empty())
    absl::StrAppend(&line, ", finish ", finish_reason);
  return line;
}

}  // namespace

int RunGenerate(const ParsedArgs& args, CommandEnv& env) {
  if (args.positional().empty()) {
    return env.out.UsageFail(absl::InvalidArgumentError("PROMPT: required"),
                             env.command);
  }
  // Several words are one prompt; "-" reads it from standard input.
  std::string prompt = absl::StrJoin(args.positional(), " ");
  if (prompt == "-") {
    prompt.assign(std::istreambuf_iterator<char>(std::cin),
                  std::istreambuf_iterator<char>());
  }
  absl::StatusOr<lorad::v1::GenerateRequest> request =
      ParseGenerateRequest(args, std::move(prompt));
  if (!request.ok()) return env.out.UsageFail(request.status(), env.command);

  const auto start = std::chrono::steady_clock::now();
  std::optional<double> client_first_token;
  int32_t tokens_received = 0;
  bool printed = false;
  bool ends_in_newline = true;
  std::optional<lorad::v1::GenerateUsage> usage;
  std::string finish_reason;

  auto context = env.connection.StreamContext();
  auto reader = env.connection.inference().Generate(context.get(), *request);
  lorad::v1::GenerateResponse response;
  while (reader->Read(&response)) {
    if (!client_first_token.has_value() && !response.text().empty()) {
      client_first_token = std::chrono::duration<double>(
                               std::chrono::steady_clock::now() - start)
                               .count();
    }
    tokens_received += response.token_ids_size();
    if (response.has_usage()) usage = response.usage();
    if (!response.finish_reason().empty()) {
      finish_reason = response.finish_reason();
    }
    if (env.out.json()) {
      env.out.PrintJson(response);
    } else if (!response.text().empty()) {
      env.out.Print(response.text());
      printed = true;
      ends_in_newline = response.text().back() == '\n';
    }
  }
  grpc::Status status = reader->Finish();
  // Keep the shell prompt off the generated text on a terminal; a pipe gets
  // the text exactly as generated.
  if (printed && !ends_in_newline && isatty(STDOUT_FILENO)) env.out.Print("\n");
  if (!status.ok()) return env.out.Fail(env.connection.Check(status));
  if (env.out.json()) return kExitOk;

  if (!usage.has_value()) {
    // An older server without usage: report what the client measured.
    lorad::v1::GenerateUsage measured;
    measured.set_completion_tokens(tokens_received);
    measured.set_time_to_first_token_seconds(
        static_cast<float>(client_first_token.value_or(0)));
    measured.set_total_seconds(static_cast<float>(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count()));
    usage = measured;
  }
  env.out.PrintErr(absl::StrCat(UsageLine(*usage, finish_reason), "\n"));
  return kExitOk;
}

}  // namespace lorad::client
