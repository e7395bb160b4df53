// DataDirLock (one daemon per data directory) and the start-up cleanup of
// what an interrupted run left there.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "store/data_dir_cleanup.h"
#include "store/data_dir_lock.h"
#include "test_dir.h"

namespace lorad::server {
namespace {

TEST(FaultsDataDirLock, SecondHolderIsRefusedNamingTheFirst) {
  const std::string path = FreshTestDir("faults_data_dir_lock") + "/lock";
  absl::StatusOr<std::unique_ptr<DataDirLock>> first =
      DataDirLock::Acquire(path);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::unique_ptr<DataDirLock>> second =
      DataDirLock::Acquire(path);
  ASSERT_TRUE(absl::IsFailedPrecondition(second.status())) << second.status();
  EXPECT_NE(second.status().message().find(absl::StrCat("pid ", ::getpid())),
            std::string::npos)
      << second.status();
  first->reset();
  EXPECT_TRUE(DataDirLock::Acquire(path).ok());
}

TEST(FaultsDataDirLock, AtomicWriteTempNames) {
  EXPECT_TRUE(IsAtomicWriteTemp("abc.jsonl.tmp.123.0"));
  EXPECT_TRUE(IsAtomicWriteTemp("config.json.tmp.9.42"));
  EXPECT_FALSE(IsAtomicWriteTemp("notes.tmp.txt"));
  EXPECT_FALSE(IsAtomicWriteTemp(".tmp.1.2"));
  EXPECT_FALSE(IsAtomicWriteTemp("a.tmp.1"));
  EXPECT_FALSE(IsAtomicWriteTemp("a.tmp.x.2"));
  EXPECT_FALSE(IsAtomicWriteTemp("lorad.db"));
}

TEST(FaultsDataDirLock, RemoveLeftoversKeepsEverythingElse) {
  const std::string dir = FreshTestDir("faults_data_dir_lock");
  std::filesystem::create_directories(dir + "/jobs/ftjob-1");
  std::filesystem::create_directories(dir + "/adapter_registry/.staging/ab");
  std::ofstream(dir + "/jobs/ftjob-1/adapter.safetensors.tmp.77.3") << "x";
  std::ofstream(dir + "/jobs/ftjob-1/adapter.safetensors") << "kept";
  std::ofstream(dir + "/adapter_registry/.staging/ab/f") << "x";
  absl::StatusOr<int64_t> removed = RemoveLeftovers(dir);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 3);  // the temp file, the staging dir and its file
  EXPECT_FALSE(std::filesystem::exists(dir + "/jobs/ftjob-1/"
                                             "adapter.safetensors.tmp.77.3"));
  EXPECT_TRUE(
      std::filesystem::exists(dir + "/jobs/ftjob-1/adapter.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/adapter_registry/.staging"));
  EXPECT_TRUE(std::filesystem::is_empty(dir + "/adapter_registry/.staging"));
}

}  // namespace
}  // namespace lorad::server
