// Start-up cleanup of what an interrupted run left under the data
// directory: the temp files of atomic writes (`<name>.tmp.<pid>.<n>`, see
// Env::WriteFileAtomicWith) and the adapter registry's staging directories.
// Run only while holding the DataDirLock, before anything writes there.
#ifndef LORAD_SERVER_STORE_DATA_DIR_CLEANUP_H_
#define LORAD_SERVER_STORE_DATA_DIR_CLEANUP_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace lorad::server {

// True for a name that Env's atomic write gives its temp file.
bool IsAtomicWriteTemp(const std::string& file_name);

// Removes the leftovers under `data_dir` (symlinks are not followed) and
// returns how many files and directories it removed. An error names the
// path that could not be listed or removed.
absl::StatusOr<int64_t> RemoveLeftovers(const std::string& data_dir);

}  // namespace lorad::server

#endif  // LORAD_SERVER_STORE_DATA_DIR_CLEANUP_H_
