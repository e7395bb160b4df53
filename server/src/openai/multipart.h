// multipart/form-data bodies (RFC 7578), as POST /v1/files receives them.
#ifndef LORAD_SERVER_OPENAI_MULTIPART_H_
#define LORAD_SERVER_OPENAI_MULTIPART_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lorad::server::openai {

struct FormPart {
  std::string name;      // from Content-Disposition
  std::string filename;  // "" when not a file
  std::string content_type;
  absl::string_view data;  // points into the body
};

// The parts of `body` given its Content-Type header; InvalidArgument saying
// what is malformed (no boundary, a part without headers or a name, no
// closing delimiter).
absl::StatusOr<std::vector<FormPart>> ParseMultipart(
    absl::string_view content_type, absl::string_view body);

}  // namespace lorad::server::openai

#endif  // LORAD_SERVER_OPENAI_MULTIPART_H_
