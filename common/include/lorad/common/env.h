// The environment lorad runs in: the filesystem and the clock, behind one
// interface (as in leveldb), so that tests can wrap it and inject faults (a
// full disk, a failed fsync or rename) or a clock without touching
// production code. Everything in the server that writes its data directory
// (stores, adapter registry, uploads) and the worker's training checkpoints
// take an Env*; Env::Default() is the POSIX one.
//
// Files an Env creates are mode 0600 and directories 0700 (before the
// umask): the data directory holds users' datasets and adapters.
//
// Errors: a failing system call becomes a Status naming the call and the
// path with errno's text ("cannot write /d/x.tmp.12.0: No space left on
// device"), coded by PosixError below. Nothing here aborts the process.
//
// Thread safety: Env methods may be called from any thread at once. A
// WritableFile or SequentialFile is used by one thread at a time.
#ifndef LORAD_COMMON_ENV_H_
#define LORAD_COMMON_ENV_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace lorad {

// The Status for errno value `err` met while doing `what` (e.g. "cannot
// write /x"): NotFound for ENOENT, ResourceExhausted for ENOSPC and EDQUOT,
// PermissionDenied for EACCES, EPERM and EROFS, AlreadyExists for EEXIST,
// FailedPrecondition for ENOTDIR, EISDIR and ENOTEMPTY, Internal otherwise.
absl::Status PosixError(absl::string_view what, int err);

// A file open for writing, created empty. Destroying it closes it without
// a sync; Close() reports what closing finds.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Appends all of `data`.
  virtual absl::Status Append(absl::string_view data) = 0;
  // Makes what was appended durable (fsync).
  virtual absl::Status Sync() = 0;
  // Closes the file; no call may follow.
  virtual absl::Status Close() = 0;
};

// A file open for reading from its start.
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Replaces `*out` with the next at most `n` bytes; empty at the end.
  virtual absl::Status Read(size_t n, std::string* out) = 0;
};

class Env {
 public:
  virtual ~Env() = default;

  // The POSIX filesystem and the real clock. Never null, never deleted.
  static Env* Default();

  // Creates `path` (truncating an existing file) for writing.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) = 0;
  // Opens `path` for reading. NotFound when it does not exist.
  virtual absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) = 0;
  // rename(2): replaces `to` atomically.
  virtual absl::Status RenameFile(const std::string& from,
                                  const std::string& to) = 0;
  // Makes the entries of directory `dir` durable (fsync of the directory).
  virtual absl::Status SyncDir(const std::string& dir) = 0;
  // Creates `path` and its missing parents (like mkdir -p); OK when it is
  // already a directory.
  virtual absl::Status CreateDirs(const std::string& path) = 0;
  // Removes one file. NotFound when it does not exist.
  virtual absl::Status RemoveFile(const std::string& path) = 0;
  // Removes `path` and everything below it; OK when it does not exist.
  virtual absl::Status RemoveTree(const std::string& path) = 0;
  // Whether anything (file, directory, ...) exists at `path`.
  virtual bool FileExists(const std::string& path) = 0;
  // The size of a file in bytes. NotFound when it does not exist.
  virtual absl::StatusOr<uint64_t> FileSize(const std::string& path) = 0;
  // The names (not paths) of the entries of `dir`, sorted, without "." and
  // "..". NotFound when it does not exist.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) = 0;
  // The current time.
  virtual absl::Time Now() = 0;

  // The helpers below are built from the calls above only, so a wrapping
  // Env's faults reach them.

  // The whole contents of `path`. NotFound when it does not exist.
  absl::StatusOr<std::string> ReadFile(const std::string& path);

  // Writes `path` atomically: a temporary file in the same directory is
  // written, synced and renamed over `path`, then the directory is synced.
  // Readers see the old file or the new one, never a torn one. On failure
  // the temporary file is removed and an existing `path` is left as it was
  // (unless only the final directory sync failed: then `path` is new but
  // may not survive a power loss).
  absl::Status WriteFileAtomic(const std::string& path, absl::string_view data);

  // WriteFileAtomic with the contents of `from`, copied in chunks.
  absl::Status CopyFileAtomic(const std::string& from, const std::string& to);

 private:
  // WriteFileAtomic with contents that `write` appends to the temporary
  // file (an error from it fails the write).
  absl::Status WriteFileAtomicWith(
      const std::string& path,
      absl::FunctionRef<absl::Status(WritableFile&)> write);
};

// Forwards every call to another Env; a base for an Env that changes a few
// of them (tests inject faults this way). `target` is not owned and must
// outlive the wrapper.
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}

  Env* target() const { return target_; }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override {
    return target_->NewWritableFile(path);
  }
  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override {
    return target_->NewSequentialFile(path);
  }
  absl::Status RenameFile(const std::string& from,
                          const std::string& to) override {
    return target_->RenameFile(from, to);
  }
  absl::Status SyncDir(const std::string& dir) override {
    return target_->SyncDir(dir);
  }
  absl::Status CreateDirs(const std::string& path) override {
    return target_->CreateDirs(path);
  }
  absl::Status RemoveFile(const std::string& path) override {
    return target_->RemoveFile(path);
  }
  absl::Status RemoveTree(const std::string& path) override {
    return target_->RemoveTree(path);
  }
  bool FileExists(const std::string& path) override {
    return target_->FileExists(path);
  }
  absl::StatusOr<uint64_t> FileSize(const std::string& path) override {
    return target_->FileSize(path);
  }
  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) override {
    return target_->ListDir(dir);
  }
  absl::Time Now() override { return target_->Now(); }

 private:
  Env* const target_;
};

}  // namespace lorad

#endif  // LORAD_COMMON_ENV_H_
