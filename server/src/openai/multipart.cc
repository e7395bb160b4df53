#include "openai/multipart.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lorad::server::openai {
namespace {

// The value of `key` in a header's ";"-separated parameters, unquoted.
std::string Param(absl::string_view header, absl::string_view key) {
  for (absl::string_view item : absl::StrSplit(header, ';')) {
    item = absl::StripAsciiWhitespace(item);
    const size_t eq = item.find('=');
    if (eq == absl::string_view::npos) continue;
    if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(item.substr(0, eq)),
                                key)) {
      continue;
    }
    absl::string_view v = absl::StripAsciiWhitespace(item.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
      v = v.substr(1, v.size() - 2);
    }
    return std::string(v);
  }
  return "";
}

}  // namespace

absl::StatusOr<std::vector<FormPart>> ParseMultipart(
    absl::string_view content_type, absl::string_view body) {
  if (!absl::StartsWithIgnoreCase(content_type, "multipart/form-data")) {
    return absl::InvalidArgumentError(
        "the body must be multipart/form-data (with 'file' and 'purpose')");
  }
  const std::string boundary = Param(content_type, "boundary");
  if (boundary.empty() || boundary.size() > 200) {
    return absl::InvalidArgumentError(
        "multipart/form-data without a boundary parameter");
  }
  const std::string delimiter = absl::StrCat("--", boundary);
  size_t at = body.find(delimiter);
  if (at == absl::string_view::npos) {
    return absl::InvalidArgumentError("multipart body: no boundary found");
  }
  std::vector<FormPart> parts;
  for (;;) {
    at += delimiter.size();
    if (body.substr(at, 2) == "--") return parts;  // closing delimiter
    if (body.substr(at, 2) != "\r\n") {
      return absl::InvalidArgumentError(
          absl::StrCat("multipart body: malformed boundary line at byte ", at));
    }
    at += 2;
    const size_t headers_end = body.find("\r\n\r\n", at);
    if (headers_end == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "multipart part ", parts.size() + 1, ": its headers never end"));
    }
    FormPart part;
    for (absl::string_view line : absl::StrSplit(
             body.substr(at, headers_end - at), "\r\n", absl::SkipEmpty())) {
      const size_t colon = line.find(':');
      if (colon == absl::string_view::npos) continue;
      absl::string_view name =
          absl::StripAsciiWhitespace(line.substr(0, colon));
      absl::string_view value =
          absl::StripAsciiWhitespace(line.substr(colon + 1));
      if (absl::EqualsIgnoreCase(name, "Content-Disposition")) {
        part.name = Param(value, "name");
        part.filename = Param(value, "filename");
      } else if (absl::EqualsIgnoreCase(name, "Content-Type")) {
        part.content_type = std::string(value);
      }
    }
    if (part.name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("multipart part ", parts.size() + 1,
                       ": no Content-Disposition name"));
    }
    const size_t data_start = headers_end + 4;
    const size_t next = body.find(absl::StrCat("\r\n", delimiter), data_start);
    if (next == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "multipart part '", part.name, "': no closing boundary"));
    }
    part.data = body.substr(data_start, next - data_start);
    parts.push_back(std::move(part));
    at = next + 2;
  }
}

}  // namespace lorad::server::openai
