// A fresh, empty directory per test, under the test's temporary directory.
#ifndef LORAD_TESTS_UNIT_TEST_DIR_H_
#define LORAD_TESTS_UNIT_TEST_DIR_H_

#include <filesystem>
#include <string>

#include "gtest/gtest.h"

namespace lorad {

// <TempDir>/<suite>/<running test's name>, emptied and created.
inline std::string FreshTestDir(const std::string& suite) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / suite / info->name();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace lorad

#endif  // LORAD_TESTS_UNIT_TEST_DIR_H_
