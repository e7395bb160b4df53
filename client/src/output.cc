#include "output.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace lorad::client {

int ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnavailable;
    default:
      return kExitFailure;
  }
}

std::string ErrorLine(const absl::Status& status) {
  return absl::StrCat("loractl: ", absl::StatusCodeToString(status.code()),
                      ": ", status.message());
}

nlohmann::json ErrorJson(const absl::Status& status) {
  return {{"error",
           {{"code", absl::StatusCodeToString(status.code())},
            {"message", std::string(status.message())}}}};
}

std::string MessageToJsonLine(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options)
           .ok()) {
    // Only invalid UTF-8 in a string field gets here; say so rather than
    // print a broken line.
    return ErrorJson(absl::InternalError(absl::StrCat(
                         "cannot render ", message.GetTypeName(), " as JSON")))
        .dump();
  }
  return out;
}

Output::Output(bool json, bool stdout_is_tty, bool stderr_is_tty)
    : json_(json),
      stdout_is_tty_(stdout_is_tty),
      stderr_is_tty_(stderr_is_tty) {}

void Output::PrintJson(const google::protobuf::Message& message) {
  Print(absl::StrCat(MessageToJsonLine(message), "\n"));
}

void Output::PrintJson(const nlohmann::json& value) {
  // Replace rather than throw on invalid UTF-8 from the server.
  Print(absl::StrCat(
      value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
      "\n"));
}

void Output::Print(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

void Output::PrintErr(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

int Output::Fail(const absl::Status& status) {
  if (json_) PrintJson(ErrorJson(status));
  PrintErr(absl::StrCat(ErrorLine(status), "\n"));
  return ExitCodeFor(status);
}

int Output::UsageFail(const absl::Status& status, std::string_view command) {
  if (json_) PrintJson(ErrorJson(status));
  PrintErr(absl::StrCat("loractl: ", status.message(), "\nRun 'loractl ",
                        std::string(command), command.empty() ? "" : " ",
                        "--help' for usage.\n"));
  return kExitUsage;
}

}  // namespace lorad::client
