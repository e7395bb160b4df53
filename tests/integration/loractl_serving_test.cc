// loractl's serving commands (adapters, infer, generate, chat) against the
// real daemon and worker: what they print and their exit codes.
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client_util.h"
#include "daemon_process.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "serving_util.h"

namespace lorad::testing {
namespace {

using Json = nlohmann::json;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  for (absl::string_view l : absl::StrSplit(text, '\n')) {
    if (!l.empty()) out.emplace_back(l);
  }
  return out;
}

class LoractlServingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
    auto daemon = StartWithWorker(dir_.path() + "/data");
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = *std::move(daemon);
  }

  // Runs `loractl ARGS` with `stdin_text` as its input; returns the exit
  // code and leaves stdout in out_.
  int Loractl(const std::string& args, const std::string& stdin_text = "",
              const std::string& address = "") {
    const std::string in = dir_.path() + "/stdin.txt";
    std::ofstream(in) << stdin_text;
    const std::string cmd = absl::StrCat(
        LORAD_BINARY_DIR, "/client/loractl --address=",
        address.empty() ? daemon_->address() : address, " ", args, " < ", in,
        " > ", dir_.path(), "/stdout.txt 2> ", dir_.path(), "/stderr.txt");
    const int status = std::system(cmd.c_str());
    out_ = ReadAll(dir_.path() + "/stdout.txt");
    err_ = ReadAll(dir_.path() + "/stderr.txt");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::string WriteAdapter(const std::string& name, const AdapterFiles& files) {
    const std::string dir = dir_.path() + "/" + name;
    std::filesystem::create_directories(dir);
    for (const auto& [file, bytes] : files) {
      std::ofstream(dir + "/" + file, std::ios::binary) << bytes;
    }
    return dir;
  }

  TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::string out_, err_;
};

TEST_F(LoractlServingTest, AdaptersCommands) {
  const AdapterFiles files = MakeTinyAdapter({});
  const std::string dir = WriteAdapter("peft", files);
  ASSERT_EQ(Loractl("adapters load a " + dir + " --json"), 0) << err_;
  Json loaded = Json::parse(Lines(out_).at(0));
  EXPECT_EQ(loaded["name"], "a");
  EXPECT_EQ(loaded["version"], "1");  // int64 in proto JSON

  ASSERT_EQ(Loractl("adapters ls --json"), 0) << err_;
  ASSERT_EQ(Lines(out_).size(), 1u);
  EXPECT_EQ(Json::parse(Lines(out_)[0])["name"], "a");
  ASSERT_EQ(Loractl("adapters ls"), 0) << err_;
  EXPECT_NE(out_.find("NAME"), std::string::npos);
  EXPECT_NE(out_.find("upload"), std::string::npos);

  const std::string pulled = dir_.path() + "/pulled";
  ASSERT_EQ(Loractl("adapters pull a -o " + pulled), 0) << err_;
  for (const auto& [file, bytes] : files) {
    EXPECT_EQ(ReadAll(pulled + "/" + file), bytes) << file;
  }

  AdapterFiles corrupt = files;
  corrupt["adapter_model.safetensors"].resize(40);
  EXPECT_EQ(Loractl("adapters load a " + WriteAdapter("bad", corrupt)), 1);
  EXPECT_NE(err_.find("INVALID_ARGUMENT"), std::string::npos) << err_;

  ASSERT_EQ(Loractl("generate --adapter a --max-tokens 4 hello"), 0) << err_;
  EXPECT_EQ(Loractl("generate --adapter nope --max-tokens 4 hello"), 1);
  EXPECT_NE(err_.find("NOT_FOUND"), std::string::npos) << err_;

  EXPECT_EQ(Loractl("adapters rm a"), 0) << err_;
  EXPECT_EQ(Loractl("adapters rm a"), 1);
  EXPECT_EQ(Loractl("adapters frob a"), 2);
  EXPECT_EQ(Loractl("adapters ls", "", "127.0.0.1:1"), 3);
}

TEST_F(LoractlServingTest, InferWritesResultsInInputOrder) {
  std::string jsonl;
  for (int i = 0; i < 9; ++i) {
    absl::StrAppend(&jsonl, "{\"id\": ", i, ", \"prompt\": \"n", i, "\"}\n");
  }
  const std::string input = dir_.path() + "/in.jsonl";
  std::ofstream(input) << jsonl;
  const std::string output = dir_.path() + "/out.jsonl";
  ASSERT_EQ(
      Loractl(absl::StrCat("infer ", input, " -o ", output, " --max-tokens 3")),
      0)
      << err_;
  const std::vector<std::string> lines = Lines(ReadAll(output));
  ASSERT_EQ(lines.size(), 9u);
  for (int i = 0; i < 9; ++i) {
    Json j = Json::parse(lines[i]);
    EXPECT_EQ(j["index"], i);
    EXPECT_EQ(j["id"], i);
    EXPECT_EQ(j["usage"]["completion_tokens"], 3) << lines[i];
  }
  EXPECT_NE(err_.find("SUCCEEDED"), std::string::npos) << err_;

  std::ofstream(input) << "{\"prompt\": \"x\", \"top_p\": 3}\n";
  EXPECT_EQ(Loractl(absl::StrCat("infer ", input, " -o ", output)), 1);
  EXPECT_NE(err_.find("line 1"), std::string::npos) << err_;
  EXPECT_EQ(Loractl("infer"), 2);
}

TEST_F(LoractlServingTest, ChatAnswersEveryLine) {
  ASSERT_EQ(Loractl("chat --max-tokens 4 --json", "hello\n\nthere\n"), 0)
      << err_;
  int finished = 0;
  for (const std::string& line : Lines(out_)) {
    Json j = Json::parse(line);
    if (j.contains("finish_reason") && j["finish_reason"] != "") ++finished;
  }
  EXPECT_EQ(finished, 2);  // one answer per non-empty line
}

}  // namespace
}  // namespace lorad::testing
