// DataDirLock: one lorad per data directory. The daemon holds an exclusive
// flock(2) on <data_dir>/lock for as long as it runs and writes its pid
// there, so that a second daemon on the same directory refuses to start and
// says who holds it. The kernel drops the lock when the process dies, so a
// crashed daemon never leaves a stale lock behind.
#ifndef LORAD_SERVER_STORE_DATA_DIR_LOCK_H_
#define LORAD_SERVER_STORE_DATA_DIR_LOCK_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace lorad::server {

class DataDirLock {
 public:
  // Takes the lock on `lock_path` (created if missing, mode 0600) and
  // writes this process's pid into it. FailedPrecondition naming the
  // holder's pid when another process holds it; Internal when the file
  // cannot be opened or written.
  static absl::StatusOr<std::unique_ptr<DataDirLock>> Acquire(
      const std::string& lock_path);
  // Releases the lock (the file stays; its content is stale from then on).
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  DataDirLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  const std::string path_;
  const int fd_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_STORE_DATA_DIR_LOCK_H_
