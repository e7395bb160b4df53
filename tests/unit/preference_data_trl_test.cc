// Preference pairs tokenized as TRL's DPOTrainer does (model/
// preference_data.h): the same ids and the same completion tokens for text
// and conversational rows, with and without truncation, on four model
// directories (ChatML without BOS, Llama 3 with a BOS post-processor and a
// template that writes BOS itself, SentencePiece-style Llama 2 and Gemma).
// tests/golden/trl_dpo_peer.py runs TRL.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lorad/common/dataset.h"
#include "lorad/model/chat_template.h"
#include "lorad/model/preference_data.h"
#include "lorad/model/tokenizer.h"
#include "nlohmann/json.hpp"

namespace lorad::model {
namespace {

using nlohmann::json;

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class PreferenceTrlTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    out_ = new std::string(::testing::TempDir() + "/trl_dpo_peer");
    if (!std::filesystem::exists(LORAD_PYTHON) ||
        std::system(absl::StrCat(LORAD_PYTHON, " -c 'import trl' 2>/dev/null")
                        .c_str()) != 0) {
      return;
    }
    std::filesystem::remove_all(*out_);
    const std::string cmd = absl::StrCat(
        LORAD_PYTHON, " ", LORAD_SOURCE_DIR, "/tests/golden/trl_dpo_peer.py ",
        *out_, " ", LORAD_SOURCE_DIR, " >", *out_, ".log 2>&1");
    peer_ok_ = std::system(cmd.c_str()) == 0;
  }

  void SetUp() override {
    if (!peer_ok_) {
      if (!std::filesystem::exists(LORAD_PYTHON)) {
        GTEST_SKIP() << "no venv python";
      }
      FAIL() << "trl_dpo_peer.py failed: " << Read(*out_ + ".log");
    }
    dir_ = *out_ + "/" + GetParam();
    absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
        Tokenizer::FromModelDir(dir_);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = *std::move(tokenizer);
    absl::StatusOr<ChatTemplate> chat = ChatTemplate::Load(dir_);
    ASSERT_TRUE(chat.ok()) << chat.status();
    chat_ = *std::move(chat);
    ASSERT_NE(chat_.jinja, nullptr);
    for (const auto& [name, text] : chat_.special_tokens) {
      if (name == "eos_token") options_.eos_text = text;
    }
    ASSERT_FALSE(options_.eos_text.empty());
    options_.chat = &chat_;
    expected_ = json::parse(Read(dir_ + "/expected.json"));
  }

  void ExpectSameAsTrl(const std::string& rows, const std::string& kind,
                       int64_t max_seq_len) {
    absl::StatusOr<ParsedDataset> parsed =
        ParseJsonlDataset(Read(*out_ + "/rows_" + rows + ".jsonl"));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    options_.max_seq_len = max_seq_len;
    absl::StatusOr<std::vector<PreferenceTokens>> got =
        TokenizePreferenceDataset(*parsed, *tokenizer_, options_);
    ASSERT_TRUE(got.ok()) << got.status();
    const json& want = expected_[kind];
    ASSERT_EQ(got->size(), want.size());
    for (size_t i = 0; i < got->size(); ++i) {
      SCOPED_TRACE(absl::StrCat(kind, " pair ", i));
      const PreferenceTokens& pair = (*got)[i];
      for (const auto& [name, seq] : {std::pair{"chosen", &pair.chosen},
                                      std::pair{"rejected", &pair.rejected}}) {
        SCOPED_TRACE(name);
        const std::string n(name);
        const auto ids = want[i][n + "_ids"].get<std::vector<int32_t>>();
        const auto mask = want[i][n + "_mask"].get<std::vector<int>>();
        EXPECT_EQ(seq->ids, ids);
        std::vector<int> got_mask;
        for (int32_t l : seq->labels) got_mask.push_back(l != kIgnoreLabel);
        EXPECT_EQ(got_mask, mask);
        ASSERT_EQ(seq->labels.size(), seq->ids.size());
        for (size_t k = 0; k < seq->ids.size(); ++k) {
          if (seq->labels[k] != kIgnoreLabel) {
            EXPECT_EQ(seq->labels[k], seq->ids[k]);
          }
        }
      }
    }
  }

  static std::string* out_;
  static bool peer_ok_;
  std::string dir_;
  std::unique_ptr<Tokenizer> tokenizer_;
  ChatTemplate chat_;
  PreferenceTokenizeOptions options_;
  json expected_;
};

std::string* PreferenceTrlTest::out_ = nullptr;
bool PreferenceTrlTest::peer_ok_ = false;

TEST_P(PreferenceTrlTest, TextPairsMatchTrl) {
  ExpectSameAsTrl("text", "text", 4096);
}

TEST_P(PreferenceTrlTest, ConversationalPairsMatchTrl) {
  ExpectSameAsTrl("conv", "conv", 4096);
}

// max_length 12: pairs whose prompt fills it are dropped, the others cut.
TEST_P(PreferenceTrlTest, TruncatedPairsMatchTrl) {
  ASSERT_LT(expected_["text_12"].size(), expected_["text"].size())
      << "the peer should drop a pair";
  ExpectSameAsTrl("text", "text_12", 12);
}

TEST_P(PreferenceTrlTest, OtherFormatsAreRefused) {
  absl::StatusOr<ParsedDataset> parsed =
      ParseJsonlDataset(R"({"prompt": "a", "completion": "b"})");
  ASSERT_TRUE(parsed.ok());
  absl::StatusOr<std::vector<PreferenceTokens>> got =
      TokenizePreferenceDataset(*parsed, *tokenizer_, options_);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(got.status().message().find("\"prompt_completion\" format"),
            std::string::npos)
      << got.status();
}

INSTANTIATE_TEST_SUITE_P(Dirs, PreferenceTrlTest,
                         ::testing::Values("chatml", "llama3", "llama2",
                                           "gemma"));

}  // namespace
}  // namespace lorad::model
