// Chat rows under a template with {% generation %} blocks
// (model/training_data.h), without Python: on the built-in byte-level
// tokenizer (one token per byte) the assistant-only labels are exactly the
// bytes the blocks rendered, a row the blocks mark nothing of is an error
// naming its line, and train_on_prompt still learns every token. The
// comparison with TRL itself is training_data_trl_test.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "lorad/common/dataset.h"
#include "lorad/model/chat_template.h"
#include "lorad/model/tokenizer.h"
#include "lorad/model/training_data.h"

namespace lorad::model {
namespace {

const char kTemplate[] =
    "{%- for m in messages %}<{{ m.role }}>"
    "{%- if m.role == 'assistant' %}{% generation %}{{ m.content }}."
    "{% endgeneration %}{% else %}{{ m.content }}{% endif %}{{ '\\n' }}"
    "{%- endfor %}";

class GenerationMaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tokenizer = Tokenizer::FromJson(MakeByteLevelTokenizerJson(), "tiny");
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = *std::move(tokenizer);
    auto chat = ChatTemplate::FromTemplateText(kTemplate);
    ASSERT_TRUE(chat.ok()) << chat.status();
    chat_ = *std::move(chat);
    options_.chat = &chat_;
    options_.max_seq_len = 4096;
  }

  absl::StatusOr<std::vector<TokenSequence>> Tokenize(const std::string& rows,
                                                      bool train_on_prompt) {
    absl::StatusOr<ParsedDataset> parsed = ParseJsonlDataset(rows);
    if (!parsed.ok()) return parsed.status();
    options_.train_on_prompt = train_on_prompt;
    return TokenizeDataset(*parsed, *tokenizer_, options_);
  }

  std::string Text(const std::vector<int32_t>& ids) {
    return tokenizer_->Decode(ids, false);
  }

  std::unique_ptr<Tokenizer> tokenizer_;
  ChatTemplate chat_;
  TokenizeOptions options_;
};

TEST_F(GenerationMaskTest, LabelsAreTheBytesTheBlocksRendered) {
  absl::StatusOr<std::vector<TokenSequence>> seqs =
      Tokenize(R"({"messages": [{"role": "system", "content": "Sé"},)"
               R"( {"role": "user", "content": "Hi 你"},)"
               R"( {"role": "assistant", "content": "Yo 😀"},)"
               R"( {"role": "user", "content": "x"},)"
               R"( {"role": "assistant", "content": "ñ"}]})",
               false);
  ASSERT_TRUE(seqs.ok()) << seqs.status();
  ASSERT_EQ(seqs->size(), 1u);
  const TokenSequence& seq = (*seqs)[0];
  EXPECT_EQ(Text(seq.ids),
            "<system>Sé\n<user>Hi 你\n<assistant>Yo 😀.\n<user>x\n"
            "<assistant>ñ.\n");
  // One token per byte: the learned ones, position by position.
  std::string learned;
  for (size_t k = 0; k < seq.ids.size(); ++k) {
    learned += seq.labels[k] == kIgnoreLabel ? '_' : '#';
  }
  std::string want;
  for (const char* piece : {"<system>Sé\n<user>Hi 你\n<assistant>", "Yo 😀.",
                            "\n<user>x\n<assistant>", "ñ.", "\n"}) {
    const bool in_block =
        std::string(piece) == "Yo 😀." || std::string(piece) == "ñ.";
    want += std::string(std::string(piece).size(), in_block ? '#' : '_');
  }
  EXPECT_EQ(learned, want);
}

TEST_F(GenerationMaskTest, TrainOnPromptLearnsEveryToken) {
  absl::StatusOr<std::vector<TokenSequence>> seqs =
      Tokenize(R"({"messages": [{"role": "user", "content": "a"},)"
               R"( {"role": "assistant", "content": "b"}]})",
               true);
  ASSERT_TRUE(seqs.ok()) << seqs.status();
  ASSERT_EQ(seqs->size(), 1u);
  EXPECT_EQ((*seqs)[0].labels, (*seqs)[0].ids);
}

// As TRL raises for such a row with assistant_only_loss.
TEST_F(GenerationMaskTest, ARowTheBlocksMarkNothingOfIsAnError) {
  auto chat = ChatTemplate::FromTemplateText(
      "{% for m in messages %}{{ m.content }}"
      "{% if m.role == 'bot' %}{% generation %}!{% endgeneration %}{% endif %}"
      "{% endfor %}");
  ASSERT_TRUE(chat.ok());
  chat_ = *std::move(chat);
  absl::StatusOr<std::vector<TokenSequence>> seqs =
      Tokenize(R"({"messages": [{"role": "user", "content": "a"},)"
               R"( {"role": "assistant", "content": "b"}]})"
               "\n"
               R"({"messages": [{"role": "user", "content": "c"},)"
               R"( {"role": "assistant", "content": "d"}]})",
               false);
  ASSERT_FALSE(seqs.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(seqs.status())) << seqs.status();
  EXPECT_TRUE(absl::StartsWith(seqs.status().message(), "line 1: "))
      << seqs.status();
  EXPECT_TRUE(absl::StrContains(seqs.status().message(), "generation"))
      << seqs.status();
}

}  // namespace
}  // namespace lorad::model
