#include "lorad/common/files.h"

#include <filesystem>

#include "gtest/gtest.h"

namespace lorad {
namespace {

TEST(FilesTest, AtomicWriteReplacesWholeFile) {
  std::string dir = ::testing::TempDir() + "/files_test";
  ASSERT_TRUE(MakeDirs(dir).ok());
  std::string path = dir + "/x.bin";
  ASSERT_TRUE(WriteFileAtomic(path, "first version").ok());
  ASSERT_TRUE(WriteFileAtomic(path, "2nd").ok());
  auto got = ReadFile(path);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "2nd");
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    EXPECT_EQ(e.path().filename(), "x.bin") << "temp file left behind";
  }
}

TEST(FilesTest, ReadMissingFileIsNotFound) {
  auto got = ReadFile("/nonexistent/lorad/file");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
}

TEST(FilesTest, Sha256MatchesKnownVector) {
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9c"
            "b410ff61f20015ad");
}

}  // namespace
}  // namespace lorad
