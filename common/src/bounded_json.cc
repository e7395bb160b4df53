#include "lorad/common/bounded_json.h"

#include "absl/strings/str_cat.h"

namespace lorad {

absl::Status CheckJsonShape(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        text.size(), " bytes, more than the ", limits.max_bytes, " allowed"));
  }
  int depth = 0;
  int64_t values = 1;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > limits.max_depth) {
          return absl::InvalidArgumentError(
              absl::StrCat("nested deeper than ", limits.max_depth,
                           " levels (at byte ", i, ")"));
        }
        ++values;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      case ',':
        ++values;
        break;
      default:
        continue;
    }
    if (values > limits.max_values) {
      return absl::InvalidArgumentError(absl::StrCat(
          "more than ", limits.max_values, " values (at byte ", i, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace lorad
