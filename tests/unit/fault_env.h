// A test Env over Env::Default() that injects the faults a disk can show: a
// full disk on write, a failing fsync, a failing rename; and a settable
// clock. Production code takes it as any Env*, so its failure paths are
// tested without changing it.
//
// This class is thread-safe: each armed fault is consumed by exactly one
// call.
#ifndef LORAD_TESTS_UNIT_FAULT_ENV_H_
#define LORAD_TESTS_UNIT_FAULT_ENV_H_

#include <cerrno>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lorad/common/env.h"

namespace lorad {

class FaultInjectionEnv : public EnvWrapper {
 public:
  FaultInjectionEnv() : EnvWrapper(Env::Default()) {}

  enum Fault { kWrite, kSync, kRename, kNumFaults };

  // After `skip` more calls succeed, the next `n` WritableFile::Append calls
  // fail with ENOSPC, writing nothing.
  void FailWrites(int n, int skip = 0) { Arm(kWrite, n, skip); }
  // Likewise WritableFile::Sync and SyncDir, with EIO.
  void FailSyncs(int n, int skip = 0) { Arm(kSync, n, skip); }
  // Likewise RenameFile, with EIO, renaming nothing.
  void FailRenames(int n, int skip = 0) { Arm(kRename, n, skip); }
  void Fail(Fault fault, int n, int skip = 0) { Arm(fault, n, skip); }
  // Faults armed and not yet met.
  int Pending(Fault fault) {
    absl::MutexLock lock(&mu_);
    return armed_[fault];
  }
  void Disarm() {
    absl::MutexLock lock(&mu_);
    for (int f = 0; f < kNumFaults; ++f) armed_[f] = skip_[f] = 0;
  }
  // Now() returns `now` from here on.
  void SetNow(absl::Time now) {
    absl::MutexLock lock(&mu_);
    now_ = now;
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override {
    absl::StatusOr<std::unique_ptr<WritableFile>> file =
        target()->NewWritableFile(path);
    if (!file.ok()) return file.status();
    return std::unique_ptr<WritableFile>(
        new FaultyFile(this, path, *std::move(file)));
  }

  absl::Status RenameFile(const std::string& from,
                          const std::string& to) override {
    if (Take(kRename)) {
      return PosixError(absl::StrCat("cannot rename ", from, " to ", to), EIO);
    }
    return target()->RenameFile(from, to);
  }

  absl::Status SyncDir(const std::string& dir) override {
    if (Take(kSync)) {
      return PosixError(absl::StrCat("cannot fsync the directory ", dir), EIO);
    }
    return target()->SyncDir(dir);
  }

  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_ == absl::InfinitePast() ? target()->Now() : now_;
  }

 private:
  class FaultyFile final : public WritableFile {
   public:
    FaultyFile(FaultInjectionEnv* env, std::string path,
               std::unique_ptr<WritableFile> file)
        : env_(env), path_(std::move(path)), file_(std::move(file)) {}

    absl::Status Append(absl::string_view data) override {
      if (env_->Take(kWrite)) {
        return PosixError(absl::StrCat("cannot write ", path_), ENOSPC);
      }
      return file_->Append(data);
    }
    absl::Status Sync() override {
      if (env_->Take(kSync)) {
        return PosixError(absl::StrCat("cannot fsync ", path_), EIO);
      }
      return file_->Sync();
    }
    absl::Status Close() override { return file_->Close(); }

   private:
    FaultInjectionEnv* const env_;
    const std::string path_;
    const std::unique_ptr<WritableFile> file_;
  };

  void Arm(Fault fault, int n, int skip) {
    absl::MutexLock lock(&mu_);
    armed_[fault] = n;
    skip_[fault] = skip;
  }
  // Consumes one armed `fault`; false when none is armed or calls are
  // still to be let through first.
  bool Take(Fault fault) {
    absl::MutexLock lock(&mu_);
    if (armed_[fault] <= 0) return false;
    if (skip_[fault] > 0) {
      --skip_[fault];
      return false;
    }
    --armed_[fault];
    return true;
  }

  absl::Mutex mu_;
  int armed_[kNumFaults] ABSL_GUARDED_BY(mu_) = {};
  int skip_[kNumFaults] ABSL_GUARDED_BY(mu_) = {};
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace lorad

#endif  // LORAD_TESTS_UNIT_FAULT_ENV_H_
