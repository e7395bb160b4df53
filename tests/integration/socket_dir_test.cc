// The worker's socket never sits at a predictable /tmp path: with a data
// directory too long for a unix socket path, lorad puts it in a fresh
// private directory (mode 0700, random name) under $TMPDIR, and serves
// through it.
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client_util.h"
#include "daemon_process.h"
#include "gtest/gtest.h"

namespace lorad::testing {
namespace {

TEST(SocketDirTest, LongDataDirGetsAPrivateSocketDirectory) {
  if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
  TempDir dir;
  const std::string tmp = dir.path() + "/tmp";
  std::filesystem::create_directories(tmp);
  ASSERT_EQ(::setenv("TMPDIR", tmp.c_str(), 1), 0);  // lorad inherits it
  const std::string data_dir =
      dir.path() + "/" + std::string(60, 'd') + "/" + std::string(60, 'e');
  auto daemon = StartWithWorker(data_dir);
  ::unsetenv("TMPDIR");
  ASSERT_TRUE(daemon.ok()) << daemon.status();

  // Served through the worker behind that socket.
  Client client((*daemon)->address());
  v1::GenerateRequest request;
  request.set_prompt("hello");
  request.set_max_new_tokens(2);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(120));
  auto reader = client.inference->Generate(&context, request);
  v1::GenerateResponse response;
  while (reader->Read(&response)) {
  }
  grpc::Status status = reader->Finish();
  ASSERT_TRUE(status.ok()) << Describe(status);

  std::vector<std::filesystem::path> made;
  for (const auto& e : std::filesystem::directory_iterator(tmp)) {
    made.push_back(e.path());
  }
  ASSERT_EQ(made.size(), 1u) << "one private directory under $TMPDIR";
  const std::string name = made[0].filename().string();
  EXPECT_EQ(name.rfind("lorad-", 0), 0u) << name;
  EXPECT_NE(name, "lorad-XXXXXX") << "the name was not randomised";
  struct stat st;
  ASSERT_EQ(::stat(made[0].c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_TRUE(std::filesystem::is_socket(made[0] / "worker.sock"));
}

}  // namespace
}  // namespace lorad::testing
