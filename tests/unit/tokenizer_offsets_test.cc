// Token offsets (Tokenizer::EncodeWithOffsets) against HF tokenizers'
// encoding offsets, turned into bytes, for byte-level BPE (GPT-2 with and
// without add_prefix_space and trim_offsets, Llama 3, Qwen2 with NFC),
// SentencePiece-style BPE (Prepend/Replace, Metaspace in every scheme,
// byte fallback, unk, a Roberta post-processor) and Unigram, on the texts of
// tests/golden/tokenizer and tokenizer_spm_peer.py's corpus.
// tests/golden/tokenizer_offsets_peer.py runs HF.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lorad/model/tokenizer.h"
#include "nlohmann/json.hpp"

namespace lorad::model {
namespace {

using nlohmann::json;

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class OffsetsTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    out_ = new std::string(::testing::TempDir() + "/tokenizer_offsets_peer");
    if (!std::filesystem::exists(LORAD_PYTHON)) return;
    std::filesystem::remove_all(*out_);
    const std::string cmd =
        absl::StrCat(LORAD_PYTHON, " ", LORAD_SOURCE_DIR,
                     "/tests/golden/tokenizer_offsets_peer.py ", *out_, " ",
                     LORAD_SOURCE_DIR, " >", *out_, ".log 2>&1");
    peer_ok_ = std::system(cmd.c_str()) == 0;
  }

  static std::string* out_;
  static bool peer_ok_;
};

std::string* OffsetsTest::out_ = nullptr;
bool OffsetsTest::peer_ok_ = false;

TEST_P(OffsetsTest, MatchHuggingFace) {
  if (!peer_ok_) {
    if (!std::filesystem::exists(LORAD_PYTHON)) GTEST_SKIP() << "no venv";
    FAIL() << "tokenizer_offsets_peer.py failed: " << Read(*out_ + ".log");
  }
  const std::string base = *out_ + "/" + GetParam();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      Tokenizer::FromFile(base + ".tokenizer.json");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const json rows = json::parse(Read(base + ".offsets.json"));
  ASSERT_GT(rows.size(), 40u);
  for (const json& row : rows) {
    const std::string text = row["text"].get<std::string>();
    SCOPED_TRACE(json(text).dump());
    std::vector<std::pair<size_t, size_t>> offsets;
    const std::vector<int32_t> ids =
        (*tokenizer)->EncodeWithOffsets(text, &offsets);
    EXPECT_EQ(ids, row["ids"].get<std::vector<int32_t>>());
    EXPECT_EQ(ids, (*tokenizer)->Encode(text));
    ASSERT_EQ(offsets.size(), ids.size());
    std::vector<std::pair<size_t, size_t>> want;
    for (const json& o : row["offsets"]) {
      want.emplace_back(o[0].get<size_t>(), o[1].get<size_t>());
    }
    EXPECT_EQ(offsets, want);
    // Again, from the per-word cache Encode filled.
    std::vector<std::pair<size_t, size_t>> again;
    EXPECT_EQ((*tokenizer)->EncodeWithOffsets(text, &again), ids);
    EXPECT_EQ(again, want);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, OffsetsTest,
    ::testing::Values("gpt2", "gpt2_prefix_space", "llama3", "qwen2", "llama2",
                      "metaspace_first", "metaspace_always_split",
                      "metaspace_never", "gemma", "unk_no_fallback",
                      "unk_missing_bytes", "unigram", "unigram_no_fallback"));

}  // namespace
}  // namespace lorad::model
