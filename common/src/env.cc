#include "lorad/common/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace lorad {
namespace {

constexpr size_t kCopyChunkBytes = size_t{1} << 20;

absl::Status Errno(absl::string_view verb, const std::string& path) {
  return PosixError(absl::StrCat(verb, " ", path), errno);
}

// The directory holding `path` ("." for a bare name).
std::string DirOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd)
      : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  absl::Status Append(absl::string_view data) override {
    while (!data.empty()) {
      ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return Errno("cannot write", path_);
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    if (::fsync(fd_) != 0) return Errno("cannot fsync", path_);
    return absl::OkStatus();
  }

  absl::Status Close() override {
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) return Errno("cannot close", path_);
    return absl::OkStatus();
  }

 private:
  const std::string path_;
  int fd_;
};

class PosixSequentialFile final : public SequentialFile {
 public:
  PosixSequentialFile(std::string path, int fd)
      : path_(std::move(path)), fd_(fd) {}
  ~PosixSequentialFile() override { ::close(fd_); }

  absl::Status Read(size_t n, std::string* out) override {
    out->resize(n);
    while (true) {
      ssize_t got = ::read(fd_, out->data(), n);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        out->clear();
        return Errno("cannot read", path_);
      }
      out->resize(static_cast<size_t>(got));
      return absl::OkStatus();
    }
  }

 private:
  const std::string path_;
  const int fd_;
};

class PosixEnv final : public Env {
 public:
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override {
    int fd =
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return Errno("cannot create", path);
    return std::make_unique<PosixWritableFile>(path, fd);
  }

  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Errno("cannot open", path);
    return std::make_unique<PosixSequentialFile>(path, fd);
  }

  absl::Status RenameFile(const std::string& from,
                          const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return Errno(absl::StrCat("cannot rename ", from, " to"), to);
    }
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Errno("cannot open directory", dir);
    absl::Status status = absl::OkStatus();
    if (::fsync(fd) != 0) status = Errno("cannot fsync directory", dir);
    ::close(fd);
    return status;
  }

  absl::Status CreateDirs(const std::string& path) override {
    // Each missing component in turn, so that every one gets mode 0700.
    std::filesystem::path partial;
    for (const std::filesystem::path& part : std::filesystem::path(path)) {
      partial /= part;
      if (part.empty() || part == "/") continue;
      if (::mkdir(partial.c_str(), 0700) == 0) continue;
      const int err = errno;
      struct stat st;
      if (err == EEXIST && ::stat(partial.c_str(), &st) == 0 &&
          S_ISDIR(st.st_mode)) {
        continue;
      }
      return PosixError(
          absl::StrCat("cannot create directory ", partial.string()),
          err == EEXIST ? ENOTDIR : err);
    }
    return absl::OkStatus();
  }

  absl::Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return Errno("cannot remove", path);
    return absl::OkStatus();
  }

  absl::Status RemoveTree(const std::string& path) override {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) {
      return PosixError(absl::StrCat("cannot remove ", path), ec.value());
    }
    return absl::OkStatus();
  }

  bool FileExists(const std::string& path) override {
    return ::access(path.c_str(), F_OK) == 0;
  }

  absl::StatusOr<uint64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return Errno("cannot stat", path);
    return static_cast<uint64_t>(st.st_size);
  }

  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return Errno("cannot list", dir);
    std::vector<std::string> names;
    int err = 0;
    while (true) {
      errno = 0;
      const dirent* entry = ::readdir(d);
      if (entry == nullptr) {
        err = errno;
        break;
      }
      absl::string_view name = entry->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    ::closedir(d);
    if (err != 0) return PosixError(absl::StrCat("cannot list ", dir), err);
    std::sort(names.begin(), names.end());
    return names;
  }

  absl::Time Now() override { return absl::Now(); }
};

}  // namespace

absl::Status PosixError(absl::string_view what, int err) {
  std::string msg = absl::StrCat(what, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(msg);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(msg);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(msg);
    case EEXIST:
      return absl::AlreadyExistsError(msg);
    case ENOTDIR:
    case EISDIR:
    case ENOTEMPTY:
      return absl::FailedPreconditionError(msg);
    default:
      return absl::InternalError(msg);
  }
}

Env* Env::Default() {
  static PosixEnv* const env = new PosixEnv();
  return env;
}

absl::StatusOr<std::string> Env::ReadFile(const std::string& path) {
  absl::StatusOr<std::unique_ptr<SequentialFile>> file =
      NewSequentialFile(path);
  if (!file.ok()) return file.status();
  std::string contents;
  std::string chunk;
  do {
    absl::Status read = (*file)->Read(kCopyChunkBytes, &chunk);
    if (!read.ok()) return read;
    contents.append(chunk);
  } while (!chunk.empty());
  return contents;
}

absl::Status Env::WriteFileAtomic(const std::string& path,
                                  absl::string_view data) {
  return WriteFileAtomicWith(
      path, [data](WritableFile& file) { return file.Append(data); });
}

absl::Status Env::CopyFileAtomic(const std::string& from,
                                 const std::string& to) {
  absl::StatusOr<std::unique_ptr<SequentialFile>> in = NewSequentialFile(from);
  if (!in.ok()) return in.status();
  return WriteFileAtomicWith(to, [&in](WritableFile& file) {
    std::string chunk;
    while (true) {
      absl::Status read = (*in)->Read(kCopyChunkBytes, &chunk);
      if (!read.ok()) return read;
      if (chunk.empty()) return absl::OkStatus();
      absl::Status written = file.Append(chunk);
      if (!written.ok()) return written;
    }
  });
}

absl::Status Env::WriteFileAtomicWith(
    const std::string& path,
    absl::FunctionRef<absl::Status(WritableFile&)> write) {
  // Unique per process and call, so concurrent writers never share one.
  static std::atomic<uint64_t> counter{0};
  const std::string tmp =
      absl::StrCat(path, ".tmp.", ::getpid(), ".", counter.fetch_add(1));
  absl::StatusOr<std::unique_ptr<WritableFile>> file = NewWritableFile(tmp);
  if (!file.ok()) return file.status();
  absl::Status status = write(**file);
  if (status.ok()) status = (*file)->Sync();
  absl::Status closed = (*file)->Close();
  if (status.ok()) status = closed;
  if (status.ok()) status = RenameFile(tmp, path);
  if (!status.ok()) {
    RemoveFile(tmp).IgnoreError();
    return status;
  }
  return SyncDir(DirOf(path));
}

}  // namespace lorad
