#include "args.h"

#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace lorad::client {
namespace {

const FlagSpec* FindSpec(const std::vector<FlagSpec>& specs,
                         std::string_view name) {
  for (const FlagSpec& spec : specs) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

absl::Status BadValue(std::string_view name, std::string_view what,
                      std::string_view value) {
  return absl::InvalidArgumentError(
      absl::StrFormat("--%s: expected %s, got \"%s\"", name, what, value));
}

}  // namespace

bool ParsedArgs::Has(std::string_view name) const {
  return values_.find(name) != values_.end();
}

std::optional<std::string> ParsedArgs::Get(std::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> ParsedArgs::GetAll(std::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return {};
  return it->second;
}

bool ParsedArgs::Switch(std::string_view name) const {
  std::optional<std::string> value = Get(name);
  return value.has_value() && *value == "true";
}

void ParsedArgs::Add(const std::string& name, std::string value) {
  values_[name].push_back(std::move(value));
}

void ParsedArgs::AddPositional(std::string value) {
  positional_.push_back(std::move(value));
}

absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     const std::vector<FlagSpec>& specs) {
  ParsedArgs parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      for (++i; i < args.size(); ++i) parsed.AddPositional(args[i]);
      break;
    }
    // A lone "-" is a positional (conventionally: standard input).
    if (arg.size() < 2 || arg[0] != '-') {
      parsed.AddPositional(arg);
      continue;
    }
    std::string_view body = arg;
    body.remove_prefix(body.starts_with("--") ? 2 : 1);
    std::string name(body);
    std::optional<std::string> inline_value;
    if (size_t eq = body.find('='); eq != std::string_view::npos) {
      name = std::string(body.substr(0, eq));
      inline_value = std::string(body.substr(eq + 1));
    }
    const FlagSpec* spec = FindSpec(specs, name);
    if (spec == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag: ", arg));
    }
    if (!spec->repeated && parsed.Has(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, ": given more than once"));
    }
    if (!spec->takes_value) {
      std::string value = inline_value.value_or("true");
      if (value != "true" && value != "false") {
        return BadValue(name, "true or false", value);
      }
      parsed.Add(name, value);
      continue;
    }
    if (inline_value.has_value()) {
      parsed.Add(name, *inline_value);
    } else if (i + 1 < args.size()) {
      parsed.Add(name, args[++i]);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, ": missing value"));
    }
  }
  return parsed;
}

absl::StatusOr<std::optional<int32_t>> IntFlag(const ParsedArgs& args,
                                               std::string_view name,
                                               int32_t min, int32_t max) {
  std::optional<std::string> value = args.Get(name);
  if (!value.has_value()) return std::optional<int32_t>();
  int32_t number = 0;
  if (!absl::SimpleAtoi(*value, &number)) {
    return BadValue(name, "an integer", *value);
  }
  if (number < min || number > max) {
    return absl::InvalidArgumentError(
        max == std::numeric_limits<int32_t>::max()
            ? absl::StrFormat("--%s: must be at least %d, got %d", name, min,
                              number)
            : absl::StrFormat("--%s: must be between %d and %d, got %d", name,
                              min, max, number));
  }
  return std::optional<int32_t>(number);
}

absl::StatusOr<std::optional<uint64_t>> Uint64Flag(const ParsedArgs& args,
                                                   std::string_view name) {
  std::optional<std::string> value = args.Get(name);
  if (!value.has_value()) return std::optional<uint64_t>();
  uint64_t number = 0;
  if (value->starts_with('-') || !absl::SimpleAtoi(*value, &number)) {
    return BadValue(name, "a non-negative integer", *value);
  }
  return std::optional<uint64_t>(number);
}

absl::StatusOr<std::optional<float>> FloatFlag(const ParsedArgs& args,
                                               std::string_view name,
                                               double min, double max) {
  std::optional<std::string> value = args.Get(name);
  if (!value.has_value()) return std::optional<float>();
  double number = 0;
  if (!absl::SimpleAtod(*value, &number) || !std::isfinite(number)) {
    return BadValue(name, "a number", *value);
  }
  if (number < min || number > max) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--%s: must be between %g and %g, got %s", name, min, max, *value));
  }
  return std::optional<float>(static_cast<float>(number));
}

absl::StatusOr<std::string> OnePositional(const ParsedArgs& args,
                                          std::string_view what) {
  if (args.positional().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(what), ": required"));
  }
  if (args.positional().size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument \"", args.positional()[1], "\""));
  }
  return args.positional()[0];
}

std::string FlagsHelp(const std::vector<FlagSpec>& specs) {
  std::string out;
  for (const FlagSpec& spec : specs) {
    std::string left = absl::StrCat("--", spec.name);
    if (spec.takes_value) {
      absl::StrAppend(&left, " ",
                      spec.value_name.empty() ? "VALUE" : spec.value_name);
    }
    absl::StrAppendFormat(&out, "  %-28s %s\n", left, spec.help);
  }
  return out;
}

}  // namespace lorad::client
