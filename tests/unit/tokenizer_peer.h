// The Hugging Face side of the SentencePiece-style tokenizer tests:
// tests/golden/tokenizer_spm_peer.py, run once per test process into a
// directory of that test program's own. See that script for what it writes.
#ifndef LORAD_TESTS_UNIT_TOKENIZER_PEER_H_
#define LORAD_TESTS_UNIT_TOKENIZER_PEER_H_

#include <errno.h>  // program_invocation_short_name

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lorad/common/files.h"
#include "lorad/model/tokenizer.h"
#include "nlohmann/json.hpp"

namespace lorad::tokenizer_peer {

struct PeerOutput {
  bool available = false;  // false: no venv with tokenizers + transformers
  bool ok = false;         // the script ran and exited 0
  std::string dir;
  std::string log;  // its stderr, for failure messages
};

// Runs the peer script on first use; later calls return the same result.
inline const PeerOutput& Peer() {
  static const PeerOutput* const kOutput = [] {
    auto* out = new PeerOutput();
    const std::string python = LORAD_PYTHON;
    if (!std::filesystem::exists(python) ||
        std::system((python + " -c 'import tokenizers, transformers' "
                              "2>/dev/null")
                        .c_str()) != 0) {
      return out;
    }
    out->available = true;
    // One directory per test program: three of them use the peer, and
    // ctest runs them at the same time in one TEST_TMPDIR (a shared one was
    // removed by one program while another read it).
    out->dir = absl::StrCat(::testing::TempDir(), "/tokenizer_spm_peer_",
                            program_invocation_short_name);
    std::filesystem::remove_all(out->dir);
    std::filesystem::create_directories(out->dir);
    const std::string log = out->dir + ".log";
    const std::string command = absl::StrCat(
        python, " ", LORAD_SOURCE_DIR, "/tests/golden/tokenizer_spm_peer.py ",
        out->dir, " ", LORAD_GOLDEN_DIR, "/tokenizer 2>", log);
    out->ok = std::system(command.c_str()) == 0;
    out->log = ReadFile(log).value_or("");
    return out;
  }();
  return *kOutput;
}

// Skips without a venv; fails when the script itself failed.
#define LORAD_REQUIRE_PEER()                                          \
  do {                                                                \
    const auto& peer = ::lorad::tokenizer_peer::Peer();               \
    if (!peer.available) GTEST_SKIP() << "no venv with transformers"; \
    ASSERT_TRUE(peer.ok) << peer.log;                                 \
  } while (0)

inline nlohmann::json ReadExpected(const std::string& dir) {
  absl::StatusOr<std::string> text = ReadFile(dir + "/expected.json");
  EXPECT_TRUE(text.ok()) << text.status();
  return nlohmann::json::parse(text.value_or("null"), nullptr, false);
}

// Feeds `ids` one by one; returns the concatenated text.
inline std::string StreamAll(const model::Tokenizer& tokenizer,
                             const std::vector<int32_t>& ids, bool skip) {
  model::StreamDecoder stream(tokenizer, skip);
  std::string text;
  for (int32_t id : ids) text += stream.Add(id);
  return text + stream.Finish();
}

}  // namespace lorad::tokenizer_peer

#endif  // LORAD_TESTS_UNIT_TOKENIZER_PEER_H_
