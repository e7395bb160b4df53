// Training rows tokenized as TRL's SFTTrainer does (model/training_data.h):
// the same ids and the same labels for text, prompt/completion and chat
// rows, on five model directories (ChatML byte-level without BOS, Llama 3
// with a BOS post-processor and a template that writes BOS itself, a
// SentencePiece-style Llama 2, and the ChatML and Llama 2 tokenizers with
// templates of {% generation %} blocks), and the assistant-only loss of
// TRL's assistant_only_loss=True. tests/golden/trl_sft_peer.py runs TRL.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lorad/common/dataset.h"
#include "lorad/model/chat_template.h"
#include "lorad/model/tokenizer.h"
#include "lorad/model/training_data.h"
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

class TrlParityTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    out_ = new std::string(::testing::TempDir() + "/trl_sft_peer");
    if (!std::filesystem::exists(LORAD_PYTHON) ||
        std::system(absl::StrCat(LORAD_PYTHON, " -c 'import trl' 2>/dev/null")
                        .c_str()) != 0) {
      return;
    }
    std::filesystem::remove_all(*out_);
    const std::string cmd = absl::StrCat(
        LORAD_PYTHON, " ", LORAD_SOURCE_DIR, "/tests/golden/trl_sft_peer.py ",
        *out_, " ", LORAD_SOURCE_DIR, " >", *out_, ".log 2>&1");
    peer_ok_ = std::system(cmd.c_str()) == 0;
  }

  void SetUp() override {
    if (!peer_ok_) {
      if (!std::filesystem::exists(LORAD_PYTHON)) {
        GTEST_SKIP() << "no venv python";
      }
      FAIL() << "trl_sft_peer.py failed: " << Read(*out_ + ".log");
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
    options_.max_seq_len = 4096;
    expected_ = json::parse(Read(dir_ + "/expected.json"));
  }

  std::vector<TokenSequence> Tokenize(const std::string& kind,
                                      bool train_on_prompt) {
    absl::StatusOr<ParsedDataset> parsed = ParseJsonlDataset(
        Read(*out_ + "/rows_" + kind + ".jsonl"), train_on_prompt);
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    if (!parsed.ok()) return {};
    options_.train_on_prompt = train_on_prompt;
    absl::StatusOr<std::vector<TokenSequence>> seqs =
        TokenizeDataset(*parsed, *tokenizer_, options_);
    EXPECT_TRUE(seqs.ok()) << seqs.status();
    return seqs.ok() ? *seqs : std::vector<TokenSequence>();
  }

  void ExpectSameAsTrl(const std::string& kind, bool train_on_prompt) {
    const std::vector<TokenSequence> got = Tokenize(kind, train_on_prompt);
    const json& want = expected_[kind];
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      SCOPED_TRACE(absl::StrCat(kind, " row ", i));
      EXPECT_EQ(got[i].ids, want[i]["input_ids"].get<std::vector<int32_t>>());
      EXPECT_EQ(got[i].labels, want[i]["labels"].get<std::vector<int32_t>>());
    }
  }

  static std::string* out_;
  static bool peer_ok_;
  std::string dir_;
  std::unique_ptr<Tokenizer> tokenizer_;
  ChatTemplate chat_;
  TokenizeOptions options_;
  json expected_;
};

std::string* TrlParityTest::out_ = nullptr;
bool TrlParityTest::peer_ok_ = false;

TEST_P(TrlParityTest, TextRowsMatchTrl) { ExpectSameAsTrl("text", false); }

TEST_P(TrlParityTest, PromptCompletionRowsMatchTrl) {
  ExpectSameAsTrl("prompt", false);
}

// TRL's default for conversations is the loss on every token: lorad's
// train_on_prompt.
TEST_P(TrlParityTest, ChatRowsMatchTrlWithLossOnEveryToken) {
  ExpectSameAsTrl("chat", true);
}

// Without train_on_prompt, the same ids and the loss on the assistant turns
// only: every labelled token lies inside an assistant turn, and each turn's
// content is labelled.
TEST_P(TrlParityTest, ChatRowsTrainOnTheAssistantTurnsOnly) {
  const std::vector<TokenSequence> got = Tokenize("chat", false);
  const json& want = expected_["chat"];
  ASSERT_EQ(got.size(), want.size());
  absl::StatusOr<ParsedDataset> rows =
      ParseJsonlDataset(Read(*out_ + "/rows_chat.jsonl"));
  ASSERT_TRUE(rows.ok());
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("chat row ", i));
    EXPECT_EQ(got[i].ids, want[i]["input_ids"].get<std::vector<int32_t>>());
    std::vector<int32_t> labelled;
    for (int32_t l : got[i].labels) {
      if (l != kIgnoreLabel) labelled.push_back(l);
    }
    const std::string learned = tokenizer_->Decode(labelled, false);
    for (const auto& [role, content] : rows->examples[i].messages) {
      if (role == "assistant") {
        EXPECT_NE(learned.find(content), std::string::npos) << learned;
      } else {
        EXPECT_EQ(learned.find(content), std::string::npos) << learned;
      }
    }
  }
}

// With a template of {% generation %} blocks, the assistant-only loss is
// TRL's assistant_only_loss=True exactly: the tokens whose characters overlap
// what the blocks rendered (an answer's first token may start before its
// block, as "▁Hi" does after "[/INST] " in llama2_gen). Without blocks TRL
// swaps in its own training copy of the templates it knows (Qwen 2.5 here)
// and refuses the rest (Llama 3.1, Llama 2); lorad keeps its turn bounds
// (ChatRowsTrainOnTheAssistantTurnsOnly). With Qwen 2.5 they differ in one
// token per turn: TRL's copy also learns the newline after
// "<|im_start|>assistant".
TEST_P(TrlParityTest, ChatRowsMatchTrlWithAssistantOnlyLoss) {
  const json& want = expected_["chat_assistant_only"];
  if (want.is_object()) {
    EXPECT_FALSE(chat_.jinja->has_generation());
    GTEST_SKIP() << "TRL refuses this template: " << want["error"];
  }
  const std::vector<TokenSequence> got = Tokenize("chat", false);
  ASSERT_EQ(got.size(), want.size());
  absl::StatusOr<ParsedDataset> rows =
      ParseJsonlDataset(Read(*out_ + "/rows_chat.jsonl"));
  ASSERT_TRUE(rows.ok());
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("chat row ", i));
    const std::vector<int32_t> labels =
        want[i]["labels"].get<std::vector<int32_t>>();
    EXPECT_EQ(got[i].ids, want[i]["input_ids"].get<std::vector<int32_t>>());
    if (!chat_.jinja->has_generation()) {
      ASSERT_EQ(got[i].labels.size(), labels.size());
      int turns = 0;
      for (size_t k = 0; k < labels.size(); ++k) {
        if (got[i].labels[k] == labels[k]) continue;
        ++turns;
        EXPECT_EQ(got[i].labels[k], kIgnoreLabel) << k;
        EXPECT_EQ(tokenizer_->Decode({got[i].ids[k]}, false), "\n") << k;
        const std::vector<int32_t> before(got[i].ids.begin(),
                                          got[i].ids.begin() + k);
        EXPECT_TRUE(absl::EndsWith(tokenizer_->Decode(before, false),
                                   "<|im_start|>assistant"))
            << k;
      }
      EXPECT_EQ(turns, std::count_if(rows->examples[i].messages.begin(),
                                     rows->examples[i].messages.end(),
                                     [](const auto& m) {
                                       return m.first == "assistant";
                                     }));
      continue;
    }
    EXPECT_EQ(got[i].labels, labels);
    // The comparison tells a mask one token off: TRL's has both kinds of
    // label and shifting it by one changes it.
    ASSERT_NE(std::count(labels.begin(), labels.end(), kIgnoreLabel), 0);
    ASSERT_NE(std::count(labels.begin(), labels.end(), kIgnoreLabel),
              static_cast<std::ptrdiff_t>(labels.size()));
    std::vector<bool> mask, later, earlier;
    for (int32_t l : labels) mask.push_back(l != kIgnoreLabel);
    later.push_back(false);
    later.insert(later.end(), mask.begin(), mask.end() - 1);
    earlier.assign(mask.begin() + 1, mask.end());
    earlier.push_back(false);
    EXPECT_NE(mask, later);
    EXPECT_NE(mask, earlier);
  }
}

INSTANTIATE_TEST_SUITE_P(Dirs, TrlParityTest,
                         ::testing::Values("chatml", "llama3", "llama2",
                                           "chatml_gen", "llama2_gen",
                                           "gemma"));

}  // namespace
}  // namespace lorad::model
