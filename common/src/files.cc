#include "lorad/common/files.h"

#include <openssl/evp.h>

#include "lorad/common/env.h"

namespace lorad {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  return Env::Default()->ReadFile(path);
}

absl::Status WriteFileAtomic(const std::string& path, std::string_view data) {
  return Env::Default()->WriteFileAtomic(
      path, absl::string_view(data.data(), data.size()));
}

absl::Status MakeDirs(const std::string& path) {
  return Env::Default()->CreateDirs(path);
}

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

}  // namespace lorad
