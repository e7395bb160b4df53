// Where loractl finds its API token and TLS files. The token is a secret:
// nothing here puts it in an error message.
#ifndef LORAD_CLIENT_CREDENTIALS_H_
#define LORAD_CLIENT_CREDENTIALS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "args.h"
#include "grpcpp/security/credentials.h"

namespace lorad::client {

// $XDG_CONFIG_HOME/lorad/config, else $HOME/.config/lorad/config; "" when
// neither variable is set. Either argument may be null.
std::string DefaultConfigPath(const char* xdg_config_home, const char* home);

// The value of "token" in a config file's text: lines "KEY = VALUE", '#'
// comments, blank lines. "" when there is none. InvalidArgument naming
// `source` and the line (never its value) for a malformed line or an
// unknown key.
absl::StatusOr<std::string> TokenFromConfig(const std::string& text,
                                            const std::string& source);

// --token, else `env_token` (LORAD_TOKEN) when set and not empty, else the
// config file at `config_path` when it exists; "" for no token.
absl::StatusOr<std::string> ResolveToken(const ParsedArgs& args,
                                         const char* env_token,
                                         const std::string& config_path);

struct TlsFiles {
  std::string ca;    // PEM roots to verify lorad; "" = system roots
  std::string cert;  // PEM client certificate chain (mTLS)
  std::string key;   // its private key
  bool enabled() const { return !ca.empty() || !cert.empty(); }
};

// Insecure channel credentials when `files` names nothing, else TLS ones
// from the files' contents. InvalidArgument for an unreadable file or a
// certificate without its key.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const TlsFiles& files);

}  // namespace lorad::client

#endif  // LORAD_CLIENT_CREDENTIALS_H_
