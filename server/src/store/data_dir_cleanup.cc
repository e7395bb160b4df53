#include "store/data_dir_cleanup.h"

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lorad::server {
namespace {

namespace fs = std::filesystem;

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::Status Failed(const std::string& what, const fs::path& path,
                    const std::error_code& ec) {
  return absl::InternalError(
      absl::StrCat("cannot ", what, " ", path.string(), ": ", ec.message()));
}

}  // namespace

bool IsAtomicWriteTemp(const std::string& file_name) {
  const size_t at = file_name.rfind(".tmp.");
  if (at == std::string::npos || at == 0) return false;
  std::vector<absl::string_view> parts =
      absl::StrSplit(absl::string_view(file_name).substr(at + 5), '.');
  return parts.size() == 2 && AllDigits(parts[0]) && AllDigits(parts[1]);
}

absl::StatusOr<int64_t> RemoveLeftovers(const std::string& data_dir) {
  int64_t removed = 0;
  std::error_code ec;
  const fs::path staging = fs::path(data_dir) / "adapter_registry" / ".staging";
  if (fs::is_directory(fs::symlink_status(staging, ec))) {
    for (const fs::directory_entry& entry :
         fs::directory_iterator(staging, ec)) {
      const uintmax_t n = fs::remove_all(entry.path(), ec);
      if (ec) return Failed("remove", entry.path(), ec);
      removed += static_cast<int64_t>(n);
    }
    if (ec) return Failed("list", staging, ec);
  }

  std::vector<fs::path> temps;
  fs::recursive_directory_iterator it(data_dir, ec);
  if (ec) return Failed("list", data_dir, ec);
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return Failed("list", it->path(), ec);
    if (it->is_regular_file(ec) &&
        IsAtomicWriteTemp(it->path().filename().string())) {
      temps.push_back(it->path());
    }
  }
  if (ec) return Failed("list", data_dir, ec);
  for (const fs::path& temp : temps) {
    if (!fs::remove(temp, ec) && ec) return Failed("remove", temp, ec);
    ++removed;
  }
  return removed;
}

}  // namespace lorad::server
