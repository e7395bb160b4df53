// A small command-line parser for loractl's "subcommand, then flags" shape.
//
// Flags are `--name value`, `--name=value`, or a bare `--name` for switches
// (which also take `--name=true|false`). `--` ends the flags; everything
// after it is positional. Parsing never aborts: every mistake comes back as
// an InvalidArgument status whose message names the flag.
#ifndef LORAD_CLIENT_ARGS_H_
#define LORAD_CLIENT_ARGS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace lorad::client {

struct FlagSpec {
  std::string name;         // Without the leading dashes.
  bool takes_value = true;  // False: a switch.
  bool repeated = false;    // May be given more than once.
  std::string value_name;   // For usage text, e.g. "N".
  std::string help;
};

// The flags and positional arguments of one invocation.
class ParsedArgs {
 public:
  // Whether the user gave the flag (a switch set to false counts as given).
  bool Has(std::string_view name) const;
  // The last value given for a flag, or nullopt when absent.
  std::optional<std::string> Get(std::string_view name) const;
  // Every value given for a repeated flag, in order.
  std::vector<std::string> GetAll(std::string_view name) const;
  // A switch's value; false when absent.
  bool Switch(std::string_view name) const;

  const std::vector<std::string>& positional() const { return positional_; }

  void Add(const std::string& name, std::string value);
  void AddPositional(std::string value);

 private:
  std::map<std::string, std::vector<std::string>, std::less<>> values_;
  std::vector<std::string> positional_;
};

// Parses `args` (without the program and subcommand names) against `specs`.
absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     const std::vector<FlagSpec>& specs);

// Typed readers for a flag's value. Each returns nullopt when the flag was
// not given, and InvalidArgument naming the flag when its value is not a
// number or lies outside [min, max].
absl::StatusOr<std::optional<int32_t>> IntFlag(const ParsedArgs& args,
                                               std::string_view name,
                                               int32_t min, int32_t max);
absl::StatusOr<std::optional<uint64_t>> Uint64Flag(const ParsedArgs& args,
                                                   std::string_view name);
absl::StatusOr<std::optional<float>> FloatFlag(const ParsedArgs& args,
                                               std::string_view name,
                                               double min, double max);

// The one positional argument, called `what` in messages (e.g. "JOB"):
// InvalidArgument when there is none or more than one.
absl::StatusOr<std::string> OnePositional(const ParsedArgs& args,
                                          std::string_view what);

// Usage lines for `specs`, one flag per line, indented by two spaces.
std::string FlagsHelp(const std::vector<FlagSpec>& specs);

}  // namespace lorad::client

#endif  // LORAD_CLIENT_ARGS_H_
