#include "lorad/common/env.h"

#include <sys/stat.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

#include "fault_env.h"
#include "gtest/gtest.h"
#include "test_dir.h"

namespace lorad {
namespace {

std::string TestDir() { return FreshTestDir("env_test"); }

unsigned Mode(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

std::string Contents(const std::string& path) {
  absl::StatusOr<std::string> got = Env::Default()->ReadFile(path);
  EXPECT_TRUE(got.ok()) << got.status();
  return got.ok() ? *got : "";
}

std::vector<std::string> Names(const std::string& dir) {
  absl::StatusOr<std::vector<std::string>> names = Env::Default()->ListDir(dir);
  EXPECT_TRUE(names.ok()) << names.status();
  return names.ok() ? *names : std::vector<std::string>();
}

TEST(EnvTest, DefaultIsOneInstance) {
  EXPECT_NE(Env::Default(), nullptr);
  EXPECT_EQ(Env::Default(), Env::Default());
}

TEST(EnvTest, AtomicWriteReplacesTheFileAndCreatesIt0600) {
  Env* env = Env::Default();
  const std::string dir = TestDir();
  const std::string path = dir + "/x.bin";
  ASSERT_TRUE(env->WriteFileAtomic(path, "first version").ok());
  ASSERT_TRUE(env->WriteFileAtomic(path, "2nd").ok());
  EXPECT_EQ(Contents(path), "2nd");
  EXPECT_EQ(Mode(path), 0600u);
  EXPECT_EQ(Names(dir), std::vector<std::string>{"x.bin"})
      << "a temporary file was left behind";
}

TEST(EnvTest, CreateDirsMakesEveryMissingParent0700) {
  Env* env = Env::Default();
  const std::string root = TestDir();
  ASSERT_TRUE(env->CreateDirs(root + "/a/b/c/").ok());
  EXPECT_EQ(Mode(root + "/a"), 0700u);
  EXPECT_EQ(Mode(root + "/a/b/c"), 0700u);
  EXPECT_TRUE(env->CreateDirs(root + "/a/b").ok()) << "existing is fine";

  ASSERT_TRUE(env->WriteFileAtomic(root + "/file", "x").ok());
  absl::Status blocked = env->CreateDirs(root + "/file/sub");
  EXPECT_FALSE(blocked.ok());
  EXPECT_NE(blocked.message().find("file"), absl::string_view::npos);
}

TEST(EnvTest, ListDirIsSortedWithoutDots) {
  Env* env = Env::Default();
  const std::string dir = TestDir();
  for (const char* name : {"b", "c", "a"}) {
    ASSERT_TRUE(env->WriteFileAtomic(dir + "/" + name, name).ok());
  }
  ASSERT_TRUE(env->CreateDirs(dir + "/d").ok());
  EXPECT_EQ(Names(dir), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_TRUE(absl::IsNotFound(env->ListDir(dir + "/none").status()));
}

TEST(EnvTest, RemoveFileAndRemoveTree) {
  Env* env = Env::Default();
  const std::string dir = TestDir();
  ASSERT_TRUE(env->CreateDirs(dir + "/t/u").ok());
  ASSERT_TRUE(env->WriteFileAtomic(dir + "/t/u/f", "x").ok());
  ASSERT_TRUE(env->WriteFileAtomic(dir + "/g", "y").ok());

  EXPECT_TRUE(env->RemoveFile(dir + "/g").ok());
  EXPECT_FALSE(env->FileExists(dir + "/g"));
  EXPECT_TRUE(absl::IsNotFound(env->RemoveFile(dir + "/g")));

  EXPECT_TRUE(env->RemoveTree(dir + "/t").ok());
  EXPECT_FALSE(env->FileExists(dir + "/t"));
  EXPECT_TRUE(env->RemoveTree(dir + "/t").ok()) << "absent is fine";
}

TEST(EnvTest, RenameFileReplacesTheTarget) {
  Env* env = Env::Default();
  const std::string dir = TestDir();
  ASSERT_TRUE(env->WriteFileAtomic(dir + "/from", "new").ok());
  ASSERT_TRUE(env->WriteFileAtomic(dir + "/to", "old").ok());
  ASSERT_TRUE(env->RenameFile(dir + "/from", dir + "/to").ok());
  EXPECT_EQ(Contents(dir + "/to"), "new");
  EXPECT_FALSE(env->FileExists(dir + "/from"));
  EXPECT_TRUE(absl::IsNotFound(env->RenameFile(dir + "/from", dir + "/x")));
}

TEST(EnvTest, MissingFilesAreNotFound) {
  Env* env = Env::Default();
  const std::string path = TestDir() + "/missing";
  EXPECT_FALSE(env->FileExists(path));
  EXPECT_TRUE(absl::IsNotFound(env->ReadFile(path).status()));
  EXPECT_TRUE(absl::IsNotFound(env->FileSize(path).status()));
  absl::Status status = env->ReadFile(path).status();
  EXPECT_NE(status.message().find(path), absl::string_view::npos) << status;
}

TEST(EnvTest, CopyFileAtomicCopiesMoreThanOneChunk) {
  Env* env = Env::Default();
  const std::string dir = TestDir();
  std::string data(3 * (1 << 20) + 17, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  ASSERT_TRUE(env->WriteFileAtomic(dir + "/src", data).ok());
  ASSERT_TRUE(env->CopyFileAtomic(dir + "/src", dir + "/dst").ok());
  EXPECT_EQ(Contents(dir + "/dst"), data);
  absl::StatusOr<uint64_t> size = env->FileSize(dir + "/dst");
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, data.size());
}

TEST(EnvTest, PosixErrorCodes) {
  EXPECT_TRUE(absl::IsNotFound(PosixError("x", ENOENT)));
  EXPECT_TRUE(absl::IsResourceExhausted(PosixError("x", ENOSPC)));
  EXPECT_TRUE(absl::IsResourceExhausted(PosixError("x", EDQUOT)));
  EXPECT_TRUE(absl::IsPermissionDenied(PosixError("x", EACCES)));
  EXPECT_TRUE(absl::IsAlreadyExists(PosixError("x", EEXIST)));
  EXPECT_TRUE(absl::IsFailedPrecondition(PosixError("x", ENOTDIR)));
  EXPECT_TRUE(absl::IsInternal(PosixError("x", EIO)));
  EXPECT_EQ(PosixError("cannot write /f", ENOSPC).message(),
            "cannot write /f: No space left on device");
}

// Writes "old contents" to a file, then fails to replace it in the way
// `arm` sets up; the old file must survive whole and no temporary file may
// stay. Returns the failed write's status.
absl::Status FailedReplaceKeepsTheOld(void (*arm)(FaultInjectionEnv&)) {
  FaultInjectionEnv env;
  const std::string dir = TestDir();
  EXPECT_TRUE(env.WriteFileAtomic(dir + "/f", "old contents").ok());
  arm(env);
  absl::Status status = env.WriteFileAtomic(dir + "/f", "new contents");
  EXPECT_EQ(Contents(dir + "/f"), "old contents");
  EXPECT_EQ(Names(dir), std::vector<std::string>{"f"});
  return status;
}

TEST(FaultInjectionTest, FullDiskLeavesTheOldFileIntact) {
  absl::Status status = FailedReplaceKeepsTheOld(
      [](FaultInjectionEnv& env) { env.FailWrites(1); });
  EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
}

TEST(FaultInjectionTest, FailedFsyncLeavesTheOldFileIntact) {
  absl::Status status = FailedReplaceKeepsTheOld(
      [](FaultInjectionEnv& env) { env.FailSyncs(1); });
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("fsync"), absl::string_view::npos) << status;
}

TEST(FaultInjectionTest, FailedRenameLeavesTheOldFileIntact) {
  absl::Status status = FailedReplaceKeepsTheOld(
      [](FaultInjectionEnv& env) { env.FailRenames(1); });
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("rename"), absl::string_view::npos) << status;
}

TEST(FaultInjectionTest, FaultsAreConsumedOneCallEach) {
  FaultInjectionEnv env;
  const std::string dir = TestDir();
  env.FailWrites(2);
  EXPECT_FALSE(env.WriteFileAtomic(dir + "/f", "a").ok());
  EXPECT_FALSE(env.WriteFileAtomic(dir + "/f", "b").ok());
  EXPECT_TRUE(env.WriteFileAtomic(dir + "/f", "c").ok());
  EXPECT_EQ(Contents(dir + "/f"), "c");
}

TEST(FaultInjectionTest, FullDiskDuringCopyLeavesNoCopy) {
  FaultInjectionEnv env;
  const std::string dir = TestDir();
  ASSERT_TRUE(env.WriteFileAtomic(dir + "/src", "payload").ok());
  env.FailWrites(1);
  EXPECT_TRUE(absl::IsResourceExhausted(
      env.CopyFileAtomic(dir + "/src", dir + "/dst")));
  EXPECT_EQ(Names(dir), std::vector<std::string>{"src"});
}

TEST(FaultInjectionTest, ClockCanBeSet) {
  FaultInjectionEnv env;
  env.SetNow(absl::FromUnixSeconds(1234));
  EXPECT_EQ(env.Now(), absl::FromUnixSeconds(1234));
}

}  // namespace
}  // namespace lorad
