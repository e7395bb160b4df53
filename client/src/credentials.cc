#include "credentials.h"

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "lorad/common/status_macros.h"

namespace lorad::client {
namespace {

// NotFound when the file does not exist.
absl::StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::string DefaultConfigPath(const char* xdg_config_home, const char* home) {
  if (xdg_config_home != nullptr && *xdg_config_home != '\0') {
    return absl::StrCat(xdg_config_home, "/lorad/config");
  }
  if (home != nullptr && *home != '\0') {
    return absl::StrCat(home, "/.config/lorad/config");
  }
  return "";
}

absl::StatusOr<std::string> TokenFromConfig(const std::string& text,
                                            const std::string& source) {
  std::string token;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    std::vector<absl::string_view> parts = absl::StrSplit(line, '=');
    if (parts.size() < 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", line_number, ": expected \"KEY = VALUE\""));
    }
    absl::string_view key = absl::StripAsciiWhitespace(parts[0]);
    if (key != "token") {
      return absl::InvalidArgumentError(absl::StrCat(source, ":", line_number,
                                                     ": unknown key \"", key,
                                                     "\" (known: token)"));
    }
    absl::string_view value =
        absl::StripAsciiWhitespace(line.substr(line.find('=') + 1));
    if (value.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", line_number, ": the token is empty"));
    }
    token = std::string(value);
  }
  return token;
}

absl::StatusOr<std::string> ResolveToken(const ParsedArgs& args,
                                         const char* env_token,
                                         const std::string& config_path) {
  if (std::optional<std::string> token = args.Get("token")) {
    if (token->empty()) {
      return absl::InvalidArgumentError("--token: must not be empty");
    }
    return *token;
  }
  if (env_token != nullptr && *env_token != '\0') return std::string(env_token);
  if (config_path.empty()) return std::string();
  absl::StatusOr<std::string> text = ReadText(config_path);
  if (absl::IsNotFound(text.status())) return std::string();
  if (!text.ok()) return text.status();
  return TokenFromConfig(*text, config_path);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const TlsFiles& files) {
  if (!files.enabled() && files.key.empty()) {
    return grpc::InsecureChannelCredentials();
  }
  if (files.cert.empty() != files.key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  grpc::SslCredentialsOptions ssl;
  auto read = [](const char* flag, const std::string& path,
                 std::string* out) -> absl::Status {
    if (path.empty()) return absl::OkStatus();
    absl::StatusOr<std::string> pem = ReadText(path);
    if (!pem.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": ", pem.status().message()));
    }
    *out = *std::move(pem);
    return absl::OkStatus();
  };
  LORAD_RETURN_IF_ERROR(read("tls-ca", files.ca, &ssl.pem_root_certs));
  LORAD_RETURN_IF_ERROR(read("tls-cert", files.cert, &ssl.pem_cert_chain));
  LORAD_RETURN_IF_ERROR(read("tls-key", files.key, &ssl.pem_private_key));
  return grpc::SslCredentials(ssl);
}

}  // namespace lorad::client
