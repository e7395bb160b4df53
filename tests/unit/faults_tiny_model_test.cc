// Regression: a request arriving while the built-in tiny model is first
// written failed (two writers of one temp file). Many threads and processes
// now resolve "tiny" in a fresh cache at once: exactly one writes, the rest
// wait and find the complete directory.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "lorad/model/model_config.h"
#include "lorad/model/safetensors.h"
#include "lorad/model/tiny_model.h"
#include "test_dir.h"

namespace lorad::model {
namespace {

constexpr int kThreads = 8;
constexpr int kProcesses = 3;

ino_t InodeOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_ino;
}

TEST(FaultsTinyModel, ConcurrentFirstUseHasOneWriter) {
  const std::string cache = FreshTestDir("faults_tiny_model") + "/models";
  // config.json is written last, so a second writer would replace it after
  // the first caller had returned.
  const std::string weights = cache + "/tiny/config.json";

  // Other processes race the threads below.
  std::vector<pid_t> children;
  for (int i = 0; i < kProcesses; ++i) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      absl::StatusOr<std::string> dir = ResolveModelDir(kTinyModelName, cache);
      _exit(dir.ok() ? 0 : 1);
    }
    children.push_back(pid);
  }
  std::vector<absl::StatusOr<std::string>> results(kThreads);
  // The config file each caller saw when its call returned: with a single
  // writer it is never replaced afterwards, so every caller sees one file.
  std::vector<ino_t> seen(kThreads, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      results[i] = ResolveModelDir(kTinyModelName, cache);
      seen[i] = InodeOf(weights);
    });
  }
  for (std::thread& t : threads) t.join();
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "a child process failed to resolve the tiny model";
  }

  for (int i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status();
    EXPECT_EQ(*results[i], cache + "/tiny");
    EXPECT_NE(seen[i], 0u);
    EXPECT_EQ(seen[i], InodeOf(weights)) << "config.json was rewritten "
                                            "after caller "
                                         << i << " had returned";
  }
  absl::StatusOr<ModelConfig> config = ModelConfig::FromDir(cache + "/tiny");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->vocab_size, TinyModelConfig().vocab_size);
  absl::StatusOr<std::unique_ptr<SafetensorsModel>> model =
      SafetensorsModel::Open(cache + "/tiny");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_FALSE(model.value()->Names().empty());
  for (const auto& entry :
       std::filesystem::directory_iterator(cache + "/tiny")) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos)
        << "leftover temp file " << entry.path();
  }
}

}  // namespace
}  // namespace lorad::model
