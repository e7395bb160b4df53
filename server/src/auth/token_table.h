// The API tokens lorad accepts, read from --auth_tokens_file.
#ifndef LORAD_SERVER_AUTH_TOKEN_TABLE_H_
#define LORAD_SERVER_AUTH_TOKEN_TABLE_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "auth/roles.h"

namespace lorad::server::auth {

// Who made a call: the token's name (the owner recorded on what it
// creates) and its role.
struct Identity {
  std::string name;
  Role role = Role::kReader;
};

// An immutable set of tokens, by the sha256 of the token (the file never
// holds a token itself). Thread-safe (const).
//
// File format, one token per line:
//   sha256:<64 hex digits> NAME ROLE
// NAME is [A-Za-z0-9._-]+, ROLE one of reader, user, trainer, admin; blank
// lines and lines starting with '#' are ignored. The digest is of the token
// exactly as clients send it (`printf %s "$TOKEN" | sha256sum`).
class TokenTable {
 public:
  // InvalidArgument naming `source` and the line for a malformed line, a
  // digest listed twice, or a file without any token.
  static absl::StatusOr<TokenTable> Parse(absl::string_view text,
                                          absl::string_view source);
  // Parse() of the file's contents; NotFound when it is missing.
  static absl::StatusOr<TokenTable> Load(const std::string& path);

  // The identity `token` belongs to. Hashes the token and compares it with
  // every entry in constant time (no early exit), so the time taken does
  // not tell how close a guess was.
  std::optional<Identity> Find(absl::string_view token) const;

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::array<uint8_t, 32> digest;
    Identity identity;
  };
  std::vector<Entry> entries_;
};

}  // namespace lorad::server::auth

#endif  // LORAD_SERVER_AUTH_TOKEN_TABLE_H_
