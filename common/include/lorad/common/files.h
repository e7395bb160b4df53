// File helpers shared by the server and the worker.
#ifndef LORAD_COMMON_FILES_H_
#define LORAD_COMMON_FILES_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lorad {

// Reads a whole file. NotFound when it does not exist.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Writes `data` to `path` atomically: a temp file beside it, fsync, rename,
// then fsync of the directory. Readers see the old or the new file, never a
// torn one.
absl::Status WriteFileAtomic(const std::string& path, std::string_view data);

// Creates `path` and its parents (like mkdir -p).
absl::Status MakeDirs(const std::string& path);

// Lower-case hex sha256 of `data`.
std::string Sha256Hex(std::string_view data);

}  // namespace lorad

#endif  // LORAD_COMMON_FILES_H_
