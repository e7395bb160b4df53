#include "auth/token_table.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "lorad/common/files.h"
#include "lorad/common/status_macros.h"

namespace lorad::server::auth {
namespace {

constexpr absl::string_view kDigestPrefix = "sha256:";

bool ValidName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

std::optional<std::array<uint8_t, 32>> ParseDigest(absl::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      return std::nullopt;
    }
  }
  std::string bytes = absl::HexStringToBytes(absl::AsciiStrToLower(hex));
  std::array<uint8_t, 32> digest;
  for (size_t i = 0; i < digest.size(); ++i) {
    digest[i] = static_cast<uint8_t>(bytes[i]);
  }
  return digest;
}

// 0 when equal; reads every byte whatever the contents.
uint8_t Difference(const std::array<uint8_t, 32>& a,
                   const std::array<uint8_t, 32>& b) {
  volatile uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = diff | (a[i] ^ b[i]);
  return diff;
}

}  // namespace

absl::StatusOr<TokenTable> TokenTable::Parse(absl::string_view text,
                                             absl::string_view source) {
  TokenTable table;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", line_number, ": ", why,
                       " (expected \"sha256:<64 hex digits> NAME ROLE\")"));
    };
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 3) {
      return bad(absl::StrCat(fields.size(), " fields instead of 3"));
    }
    if (!absl::StartsWith(fields[0], kDigestPrefix)) {
      return bad("the digest does not start with \"sha256:\"");
    }
    std::optional<std::array<uint8_t, 32>> digest =
        ParseDigest(fields[0].substr(kDigestPrefix.size()));
    if (!digest.has_value()) return bad("the digest is not 64 hex digits");
    if (!ValidName(fields[1])) {
      return bad(absl::StrCat("name \"", fields[1],
                              "\" is not 1-64 of [A-Za-z0-9._-]"));
    }
    std::optional<Role> role = ParseRole(fields[2]);
    if (!role.has_value()) {
      return bad(absl::StrCat("unknown role \"", fields[2],
                              "\" (reader, user, trainer or admin)"));
    }
    for (const Entry& entry : table.entries_) {
      if (entry.digest == *digest) {
        return bad(absl::StrCat("the same digest as token \"",
                                entry.identity.name, "\""));
      }
    }
    table.entries_.push_back(
        Entry{*digest, Identity{std::string(fields[1]), *role}});
  }
  if (table.entries_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": no token in the file"));
  }
  return table;
}

absl::StatusOr<TokenTable> TokenTable::Load(const std::string& path) {
  LORAD_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return Parse(text, path);
}

std::optional<Identity> TokenTable::Find(absl::string_view token) const {
  std::optional<std::array<uint8_t, 32>> presented =
      ParseDigest(Sha256Hex(std::string_view(token.data(), token.size())));
  if (!presented.has_value()) return std::nullopt;
  const Entry* match = nullptr;
  for (const Entry& entry : entries_) {
    if (Difference(entry.digest, *presented) == 0) match = &entry;
  }
  if (match == nullptr) return std::nullopt;
  return match->identity;
}

}  // namespace lorad::server::auth
