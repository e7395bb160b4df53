// JSON from outside (uploads, batch lines, model directories) is checked
// against limits before anything is built from it: its size, how deep its
// arrays and objects nest, and how many values it holds. With the depth
// bounded, nlohmann::json's recursive operations (dump, copy, compare,
// destroy) cannot run the stack out on hostile input.
//
// One scan, no allocation; it does not validate JSON (the parser does).
// Pure functions, thread-safe.
#ifndef LORAD_COMMON_BOUNDED_JSON_H_
#define LORAD_COMMON_BOUNDED_JSON_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace lorad {

struct JsonLimits {
  size_t max_bytes = size_t{1} << 20;
  // Arrays and objects open at once: `[[1]]` is 2 deep.
  int max_depth = 32;
  // Values (scalars, arrays and objects) at most, counted as the separators
  // and openings the text has (an upper bound on what the parser builds).
  int64_t max_values = int64_t{1} << 20;
};

// Small documents a client sends or a model directory holds beside the
// weights (a batch line, a dataset line, adapter_config.json, config.json).
inline constexpr JsonLimits kSmallJsonLimits{size_t{1} << 20, 32,
                                             int64_t{1} << 20};

// InvalidArgument saying which limit `text` breaks and where, e.g.
// "nested deeper than 32 levels (at byte 117)"; OK when it keeps them all.
absl::Status CheckJsonShape(std::string_view text, const JsonLimits& limits);

// CheckJsonShape, then parse. InvalidArgument "not valid JSON" when the
// parser refuses the text.
template <typename Json = nlohmann::json>
absl::StatusOr<Json> ParseBoundedJson(std::string_view text,
                                      const JsonLimits& limits) {
  if (absl::Status shape = CheckJsonShape(text, limits); !shape.ok()) {
    return shape;
  }
  Json j = Json::parse(text.begin(), text.end(), nullptr,
                       /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  return j;
}

}  // namespace lorad

#endif  // LORAD_COMMON_BOUNDED_JSON_H_
