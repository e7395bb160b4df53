// Shorthands over Env::Default() for code that has no Env of its own (the
// model readers, the worker's exports), and a content hash. Code that writes
// lorad's data directory takes an Env* instead (see lorad/common/env.h), so
// that its faults can be tested.
#ifndef LORAD_COMMON_FILES_H_
#define LORAD_COMMON_FILES_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lorad {

// Env::Default()->ReadFile(path): the whole file; NotFound when missing.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Env::Default()->WriteFileAtomic(path, data): readers see the old or the
// new file, never a torn one.
absl::Status WriteFileAtomic(const std::string& path, std::string_view data);

// Env::Default()->CreateDirs(path): `path` and its parents (like mkdir -p).
absl::Status MakeDirs(const std::string& path);

// Lower-case hex sha256 of `data`.
std::string Sha256Hex(std::string_view data);

}  // namespace lorad

#endif  // LORAD_COMMON_FILES_H_
