// Percent-decoding of URL paths and query strings.
#ifndef LORAD_SERVER_HTTP_URL_H_
#define LORAD_SERVER_HTTP_URL_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace lorad::server::http {

// Decodes %XX escapes (and '+' as a space when `plus_is_space`); false for
// a truncated or non-hex escape or a decoded NUL byte.
bool PercentDecode(absl::string_view in, std::string* out,
                   bool plus_is_space = false);

// "a=1&b=x%20y" into its decoded pairs (a key without '=' gets "");
// false when any part fails to decode.
bool ParseQuery(absl::string_view query,
                std::vector<std::pair<std::string, std::string>>* out);

}  // namespace lorad::server::http

#endif  // LORAD_SERVER_HTTP_URL_H_
