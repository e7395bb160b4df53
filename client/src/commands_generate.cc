// loractl generate: stream text from Inference.Generate.
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "commands.h"
#include "request_flags.h"
#include "table.h"

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

// The flags only `generate` has: logprobs and response_format.
absl::Status ApplyGenerateExtras(const ParsedArgs& args,
                                 lorad::v1::GenerateRequest& req) {
  absl::StatusOr<std::optional<int32_t>> top = IntFlag(args, "logprobs", 0, 20);
  if (!top.ok()) return top.status();
  if (top->has_value()) {
    req.set_logprobs(true);
    req.set_top_logprobs(**top);
  }
  const std::optional<std::string> schema_file = args.Get("json-schema");
  if (args.Switch("json-object") && schema_file.has_value()) {
    return absl::InvalidArgumentError(
        "--json-object and --json-schema: give one of them");
  }
  if (args.Switch("json-object"))
    req.mutable_response_format()->set_type("json_object");
  if (schema_file.has_value()) {
    std::ifstream in(*schema_file, std::ios::binary);
    std::string schema((std::istreambuf_iterator<char>(in)),
                       std::istreambuf_iterator<char>());
    if (!in.is_open() || in.bad()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--json-schema: cannot read ", *schema_file));
    }
    req.mutable_response_format()->set_type("json_schema");
    req.mutable_response_format()->set_json_schema(std::move(schema));
  }
  return absl::OkStatus();
}

// One row per generated token: its text (escaped), id, logprob and the
// top alternatives as "text(logprob)".
std::string LogprobTable(const std::vector<lorad::v1::TokenLogprob>& logprobs) {
  Table table({"TOKEN", "ID", "LOGPROB", "TOP"});
  for (const lorad::v1::TokenLogprob& lp : logprobs) {
    std::vector<std::string> top;
    for (const lorad::v1::TopLogprob& t : lp.top_logprobs()) {
      top.push_back(absl::StrFormat("\"%s\"(%.4f)", absl::CHexEscape(t.token()),
                                    t.logprob()));
    }
    table.AddRow({absl::StrCat("\"", absl::CHexEscape(lp.token()), "\""),
                  absl::StrCat(lp.token_id()),
                  absl::StrFormat("%.4f", lp.logprob()),
                  absl::StrJoin(top, " ")});
  }
  return table.Render();
}

}  // namespace

const std::vector<FlagSpec>& GenerateCommandFlags() {
  static const auto* flags = [] {
    auto* f = new std::vector<FlagSpec>(GenerateFlags());
    f->push_back({"logprobs", true, false, "N",
                  "print each token's logprob and the N (0..20) most likely "
                  "tokens after the text"});
    f->push_back({"json-object", false, false, "",
                  "constrain the output to a JSON object"});
    f->push_back({"json-schema", true, false, "FILE",
                  "constrain the output to JSON matching the schema in FILE"});
    return f;
  }();
  return *flags;
}

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
  if (absl::Status extras = ApplyGenerateExtras(args, *request); !extras.ok()) {
    return env.out.UsageFail(extras, env.command);
  }
  std::vector<lorad::v1::TokenLogprob> logprobs;

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
    logprobs.insert(logprobs.end(), response.logprobs().begin(),
                    response.logprobs().end());
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
  if (request->logprobs()) {
    // The text's own line ended above on a terminal.
    const bool open_line =
        printed && !ends_in_newline && !isatty(STDOUT_FILENO);
    env.out.Print(
        absl::StrCat(open_line ? "\n" : "", "\n", LogprobTable(logprobs)));
  }

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
