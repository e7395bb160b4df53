// The preference format of common/dataset.h: {"prompt","chosen","rejected"}
// as three strings or, as TRL's conversational preference rows, three
// lists of messages; and its errors, which name the line and the field.
#include <string>

#include "gtest/gtest.h"
#include "lorad/common/dataset.h"

namespace lorad {
namespace {

std::string ErrorOf(std::string_view contents) {
  auto got = ParseJsonlDataset(contents);
  EXPECT_FALSE(got.ok()) << "parsed: " << contents;
  if (got.ok()) return "";
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(got.status().message());
}

TEST(DatasetPreferenceTest, TextRowsKeepTheThreeStrings) {
  auto ds = ParseJsonlDataset(
      R"({"id": 7, "prompt": "2 + 2 =", "chosen": " 4", "rejected": " 5"})"
      "\n\n"
      R"({"prompt": "Café", "chosen": " 日本", "rejected": ""})"
      "\n");
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->format, DatasetFormat::kPreference);
  ASSERT_EQ(ds->examples.size(), 2u);
  const Example& a = ds->examples[0];
  EXPECT_EQ(a.line, 1);
  EXPECT_TRUE(a.segments.empty());
  EXPECT_FALSE(a.preference.conversational);
  EXPECT_EQ(a.preference.prompt, "2 + 2 =");
  EXPECT_EQ(a.preference.chosen, " 4");
  EXPECT_EQ(a.preference.rejected, " 5");
  EXPECT_TRUE(a.preference.prompt_messages.empty());
  const Example& b = ds->examples[1];
  EXPECT_EQ(b.line, 3);
  EXPECT_EQ(b.preference.prompt, "Café");
  EXPECT_EQ(b.preference.chosen, " 日本");
  EXPECT_EQ(b.preference.rejected, "");
}

TEST(DatasetPreferenceTest, ConversationalRowsKeepTheMessages) {
  auto ds = ParseJsonlDataset(
      R"({"prompt": [{"role": "system", "content": "Be brief."},)"
      R"( {"role": "user", "content": "Hi?"}],)"
      R"( "chosen": [{"role": "assistant", "content": "Hello."}],)"
      R"( "rejected": [{"role": "assistant", "content": "Go away."}]})");
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->format, DatasetFormat::kPreference);
  ASSERT_EQ(ds->examples.size(), 1u);
  const PreferencePair& p = ds->examples[0].preference;
  EXPECT_TRUE(p.conversational);
  EXPECT_EQ(p.prompt_messages, (std::vector<DatasetMessage>{
                                   {"system", "Be brief."}, {"user", "Hi?"}}));
  EXPECT_EQ(p.chosen_messages,
            (std::vector<DatasetMessage>{{"assistant", "Hello."}}));
  EXPECT_EQ(p.rejected_messages,
            (std::vector<DatasetMessage>{{"assistant", "Go away."}}));
  EXPECT_TRUE(p.prompt.empty() && p.chosen.empty() && p.rejected.empty());
}

// train_on_prompt is an SFT notion: the pair is the same with it.
TEST(DatasetPreferenceTest, TrainOnPromptChangesNothing) {
  auto ds = ParseJsonlDataset(
      R"({"prompt": "a", "chosen": "b", "rejected": "c"})", true);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_TRUE(ds->examples[0].segments.empty());
  EXPECT_EQ(ds->examples[0].preference.chosen, "b");
}

TEST(DatasetPreferenceTest, MissingFields) {
  EXPECT_EQ(ErrorOf(R"({"prompt": "a", "chosen": "b"})"),
            "line 1: field \"rejected\" missing");
  EXPECT_EQ(ErrorOf(R"({"prompt": "a", "rejected": "b"})"),
            "line 1: field \"chosen\" missing");
  EXPECT_EQ(ErrorOf(R"({"chosen": "b", "rejected": "c"})"),
            "line 1: field \"prompt\" missing");
  EXPECT_EQ(ErrorOf("{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": "
                    "\"c\"}\n{\"prompt\": \"a\", \"chosen\": \"b\"}\n"),
            "line 2: field \"rejected\" missing");
}

TEST(DatasetPreferenceTest, FieldsOfTheWrongKind) {
  EXPECT_EQ(ErrorOf(R"({"prompt": 3, "chosen": "b", "rejected": "c"})"),
            "line 1: field \"prompt\" must be a string or an array of "
            "messages");
  EXPECT_EQ(ErrorOf(R"({"prompt": "a", "chosen": ["b"], "rejected": "c"})"),
            "line 1: field \"chosen\" must be a string, like \"prompt\"");
  EXPECT_EQ(ErrorOf(R"({"prompt": "a", "chosen": "b", "rejected": null})"),
            "line 1: field \"rejected\" must be a string");
  EXPECT_EQ(ErrorOf(R"({"prompt": [{"role": "user", "content": "a"}],)"
                    R"( "chosen": [{"role": "assistant", "content": "b"}],)"
                    R"( "rejected": "c"})"),
            "line 1: field \"rejected\" must be an array of messages, like "
            "\"prompt\"");
}

TEST(DatasetPreferenceTest, ConversationalErrorsNameTheMessage) {
  const std::string user = R"([{"role": "user", "content": "a"}])";
  const std::string assistant = R"([{"role": "assistant", "content": "b"}])";
  auto row = [](const std::string& p, const std::string& c,
                const std::string& r) {
    return "{\"prompt\": " + p + ", \"chosen\": " + c + ", \"rejected\": " + r +
           "}";
  };
  EXPECT_EQ(ErrorOf(row("[]", assistant, assistant)),
            "line 1: field \"prompt\" must not be empty");
  EXPECT_EQ(ErrorOf(row(user, user, assistant)),
            "line 1: field \"chosen\" must contain at least one "
            "\"assistant\" message");
  EXPECT_EQ(ErrorOf(row(user, assistant, "[]")),
            "line 1: field \"rejected\" must contain at least one "
            "\"assistant\" message");
  EXPECT_EQ(
      ErrorOf(row(user, R"([{"role": "bot", "content": "b"}])", assistant)),
      "line 1: field \"chosen[0].role\" must be \"system\", \"user\" "
      "or \"assistant\" (found \"bot\")");
  EXPECT_EQ(ErrorOf(row(R"([{"role": "user"}])", assistant, assistant)),
            "line 1: field \"prompt[0].content\" missing");
  EXPECT_EQ(ErrorOf(row(user, assistant,
                        R"([{"role": "assistant", "content": "b"}, 1])")),
            "line 1: field \"rejected[1]\" must be an object");
}

TEST(DatasetPreferenceTest, FormatDetection) {
  EXPECT_EQ(ErrorOf(R"({"prompt": "a", "completion": "b", "chosen": "c"})"),
            "line 1: ambiguous format: keys {\"chosen\",\"completion\","
            "\"prompt\"} match \"prompt_completion\", \"preference\"");
  EXPECT_EQ(ErrorOf("{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": "
                    "\"c\"}\n{\"prompt\": \"a\", \"completion\": \"b\"}\n"),
            "line 2: format \"preference\" expected (like line 1) but found "
            "keys {\"completion\",\"prompt\"}");
  // "prompt" alone still marks prompt_completion, as before.
  EXPECT_EQ(ErrorOf(R"({"prompt": "a"})"),
            "line 1: field \"completion\" missing");
  auto pc = ParseJsonlDataset(R"({"prompt": "a", "completion": "b"})");
  ASSERT_TRUE(pc.ok());
  EXPECT_EQ(pc->format, DatasetFormat::kPromptCompletion);
}

}  // namespace
}  // namespace lorad
