#include "store/data_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace lorad::server {
namespace {

// The holder's pid as written in the file, or "unknown" when it has not
// written it yet (it takes the lock before it writes).
std::string ReadHolder(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return "unknown";
  std::string pid(buf, static_cast<size_t>(n));
  absl::StripAsciiWhitespace(&pid);
  return pid.empty() ? "unknown" : pid;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataDirLock>> DataDirLock::Acquire(
    const std::string& lock_path) {
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot open lock file ", lock_path,
                                            ": ", std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    if (error == EWOULDBLOCK) {
      const std::string holder = ReadHolder(fd);
      ::close(fd);
      return absl::FailedPreconditionError(
          absl::StrCat("the data directory is in use by another lorad (pid ",
                       holder, "; lock file ", lock_path,
                       "); stop it or choose another --data_dir"));
    }
    ::close(fd);
    return absl::InternalError(
        absl::StrCat("cannot lock ", lock_path, ": ", std::strerror(error)));
  }
  const std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) !=
                                     static_cast<ssize_t>(pid.size())) {
    const int error = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat(
        "cannot write lock file ", lock_path, ": ", std::strerror(error)));
  }
  return std::unique_ptr<DataDirLock>(new DataDirLock(lock_path, fd));
}

DataDirLock::~DataDirLock() { ::close(fd_); }

}  // namespace lorad::server
