#include "lorad/common/dataset.h"

#include <string>

#include "gtest/gtest.h"

namespace lorad {
namespace {

// The error message of parsing `contents`, which must fail with
// InvalidArgument.
std::string ErrorOf(std::string_view contents) {
  auto got = ParseJsonlDataset(contents);
  EXPECT_FALSE(got.ok()) << "parsed: " << contents;
  if (got.ok()) return "";
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(got.status().message());
}

void ExpectSegment(const Segment& s, std::string_view text, bool trainable) {
  EXPECT_EQ(s.text, text);
  EXPECT_EQ(s.trainable, trainable) << "segment: " << s.text;
}

TEST(DatasetTest, FormatNames) {
  EXPECT_EQ(DatasetFormatName(DatasetFormat::kText), "text");
  EXPECT_EQ(DatasetFormatName(DatasetFormat::kPromptCompletion),
            "prompt_completion");
  EXPECT_EQ(DatasetFormatName(DatasetFormat::kInstruction), "instruction");
  EXPECT_EQ(DatasetFormatName(DatasetFormat::kChat), "chat");
  EXPECT_EQ(DatasetFormatName(DatasetFormat::kPreference), "preference");
}

TEST(DatasetTest, TextIsOneTrainableSegment) {
  auto ds =
      ParseJsonlDataset("{\"text\": \"hello world\"}\n{\"text\": \"b\"}\n");
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->format, DatasetFormat::kText);
  ASSERT_EQ(ds->examples.size(), 2u);
  ASSERT_EQ(ds->examples[0].segments.size(), 1u);
  ExpectSegment(ds->examples[0].segments[0], "hello world", true);
  EXPECT_EQ(ds->examples[0].line, 1);
  EXPECT_EQ(ds->examples[1].line, 2);
}

TEST(DatasetTest, PromptCompletionTrainsOnCompletionOnly) {
  auto ds = ParseJsonlDataset(R"({"prompt": "2+2=", "completion": "4"})");
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->format, DatasetFormat::kPromptCompletion);
  ASSERT_EQ(ds->examples.size(), 1u);
  const auto& segs = ds->examples[0].segments;
  ASSERT_EQ(segs.size(), 2u);
  ExpectSegment(segs[0], "2+2=", false);
  ExpectSegment(segs[1], "4", true);
}

TEST(DatasetTest, InstructionWithAndWithoutContext) {
  auto ds = ParseJsonlDataset(
      R"({"instruction": "Sum", "context": "2 and 3", "response": "5"})"
      "\n"
      R"({"instruction": "Greet", "response": "Hi"})"
      "\n"
      R"({"instruction": "Greet", "context": "", "response": "Hi"})"
      "\n"
      R"({"instruction": "Greet", "context": null, "response": "Hi",)"
      R"( "category": "open_qa"})");
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->format, DatasetFormat::kInstruction);
  ASSERT_EQ(ds->examples.size(), 4u);
  const auto& with = ds->examples[0].segments;
  ASSERT_EQ(with.size(), 2u);
  ExpectSegment(with[0],
                "### Instruction:\nSum\n\n### Input:\n2 and 3\n\n"
                "### Response:\n",
                false);
  ExpectSegment(with[1], "5", true);
  for (int i = 1; i < 4; ++i) {
    const auto& without = ds->examples[i].segments;
    ASSERT_EQ(without.size(), 2u);
    ExpectSegment(without[0], "### Instruction:\nGreet\n\n### Response:\n",
                  false);
    ExpectSegment(without[1], "Hi", true);
  }
}

TEST(DatasetTest, ChatTrainsOnAssistantContentOnly) {
  auto ds = ParseJsonlDataset(
      R"({"messages": [{"role": "system", "content": "Be brief."},)"
      R"( {"role": "user", "content": "Hi"},)"
      R"( {"role": "assistant", "content": "Hello."}]})");
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->format, DatasetFormat::kChat);
  const auto& segs = ds->examples.at(0).segments;
  ASSERT_EQ(segs.size(), 6u);
  ExpectSegment(segs[0], "<|system|>\n", false);
  ExpectSegment(segs[1], "Be brief.\n", false);
  ExpectSegment(segs[2], "<|user|>\n", false);
  ExpectSegment(segs[3], "Hi\n", false);
  ExpectSegment(segs[4], "<|assistant|>\n", false);
  ExpectSegment(segs[5], "Hello.\n", true);
}

TEST(DatasetTest, TrainOnPromptMarksEverySegmentTrainable) {
  auto ds =
      ParseJsonlDataset(R"({"messages": [{"role": "user", "content": "Hi"},)"
                        R"( {"role": "assistant", "content": "Hello."}]})",
                        /*train_on_prompt=*/true);
  ASSERT_TRUE(ds.ok()) << ds.status();
  for (const Segment& s : ds->examples.at(0).segments) {
    EXPECT_TRUE(s.trainable) << s.text;
  }
  auto pc = ParseJsonlDataset(R"({"prompt": "a", "completion": "b"})", true);
  ASSERT_TRUE(pc.ok()) << pc.status();
  EXPECT_TRUE(pc->examples.at(0).segments.at(0).trainable);
}

TEST(DatasetTest, BlankLinesAreSkippedAndLinesKeepTheirNumbers) {
  auto ds = ParseJsonlDataset(
      "\n  \n{\"text\": \"a\"}\r\n\t\r\n\n{\"text\": \"b\"}\n\n");
  ASSERT_TRUE(ds.ok()) << ds.status();
  ASSERT_EQ(ds->examples.size(), 2u);
  EXPECT_EQ(ds->examples[0].line, 3);
  EXPECT_EQ(ds->examples[1].line, 6);
  ExpectSegment(ds->examples[0].segments[0], "a", true);
}

TEST(DatasetTest, LastLineWithoutNewlineAndByteOrderMark) {
  auto ds =
      ParseJsonlDataset("\xEF\xBB\xBF{\"text\": \"a\"}\n{\"text\": \"b\"}");
  ASSERT_TRUE(ds.ok()) << ds.status();
  ASSERT_EQ(ds->examples.size(), 2u);
  EXPECT_EQ(ds->examples[1].segments[0].text, "b");
}

TEST(DatasetTest, UnicodeContentIsKeptExactly) {
  auto ds = ParseJsonlDataset(
      R"({"prompt": "Grüße, 世界 🌍", "completion": "\u00e9\ud83d\ude00"})");
  ASSERT_TRUE(ds.ok()) << ds.status();
  const auto& segs = ds->examples.at(0).segments;
  EXPECT_EQ(segs[0].text, "Grüße, 世界 🌍");
  EXPECT_EQ(segs[1].text, "é😀");
}

TEST(DatasetTest, ExtraKeysAreIgnored) {
  auto ds = ParseJsonlDataset(R"({"id": 7, "text": "a", "meta": {"x": 1}})");
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->format, DatasetFormat::kText);
}

TEST(DatasetTest, EmptyDataset) {
  EXPECT_EQ(ErrorOf(""), "dataset is empty");
  EXPECT_EQ(ErrorOf("\n\n   \n"), "dataset is empty");
  EXPECT_EQ(ErrorOf("\xEF\xBB\xBF"), "dataset is empty");
}

TEST(DatasetTest, InvalidJsonNamesTheLine) {
  std::string msg = ErrorOf("{\"text\": \"a\"}\n\n{\"text\": \"b\"\n");
  EXPECT_EQ(msg.rfind("line 3: not valid JSON (", 0), 0u) << msg;
  EXPECT_EQ(msg.back(), ')') << msg;
  EXPECT_EQ(msg.find("json.exception"), std::string::npos) << msg;
}

TEST(DatasetTest, InvalidUtf8IsInvalidJson) {
  std::string msg = ErrorOf("{\"text\": \"a\xff\"}\n");
  EXPECT_EQ(msg.rfind("line 1: not valid JSON (", 0), 0u) << msg;
}

TEST(DatasetTest, NonObjectLine) {
  EXPECT_EQ(ErrorOf("{\"text\": \"a\"}\n[1, 2]\n"),
            "line 2: expected a JSON object, found an array");
  EXPECT_EQ(ErrorOf("\"text\""),
            "line 1: expected a JSON object, found a string");
}

TEST(DatasetTest, MissingField) {
  EXPECT_EQ(ErrorOf(R"({"instruction": "a", "context": "b"})"),
            "line 1: field \"response\" missing");
  EXPECT_EQ(ErrorOf("{\"prompt\": \"a\", \"completion\": \"b\"}\n"
                    "{\"prompt\": \"a\"}\n"),
            "line 2: field \"completion\" missing");
  EXPECT_EQ(ErrorOf(R"({"completion": "b"})"),
            "line 1: field \"prompt\" missing");
}

TEST(DatasetTest, FieldOfWrongType) {
  EXPECT_EQ(ErrorOf("\n\n\n\n{\"prompt\": 5, \"completion\": \"b\"}"),
            "line 5: field \"prompt\" must be a string");
  EXPECT_EQ(ErrorOf(R"({"text": null})"),
            "line 1: field \"text\" must be a string");
  EXPECT_EQ(ErrorOf(R"({"instruction": "a", "context": 1, "response": "b"})"),
            "line 1: field \"context\" must be a string");
}

TEST(DatasetTest, MixedFormatsNameTheFirstLine) {
  EXPECT_EQ(ErrorOf("\n"
                    R"({"messages": [{"role": "assistant", "content": "x"}]})"
                    "\n{\"text\": \"a\"}\n"),
            "line 3: format \"chat\" expected (like line 2) but found keys "
            "{\"text\"}");
  EXPECT_EQ(ErrorOf("{\"text\": \"a\"}\n{\"foo\": 1}\n"),
            "line 2: format \"text\" expected (like line 1) but found keys "
            "{\"foo\"}");
}

TEST(DatasetTest, UnknownFormat) {
  EXPECT_EQ(ErrorOf("\n{\"foo\": 1}"),
            "line 2: unknown format: keys {\"foo\"}; expected one of "
            "{\"text\"}, {\"prompt\",\"completion\"}, "
            "{\"instruction\",\"context\"?,\"response\"}, "
            "{\"messages\":[{\"role\",\"content\"}]}, "
            "{\"prompt\",\"chosen\",\"rejected\"}");
  EXPECT_EQ(ErrorOf("{}").rfind("line 1: unknown format: keys {};", 0), 0u);
}

TEST(DatasetTest, AmbiguousFormat) {
  EXPECT_EQ(ErrorOf(R"({"text": "a", "prompt": "b", "completion": "c"})"),
            "line 1: ambiguous format: keys {\"completion\",\"prompt\","
            "\"text\"} match \"text\", \"prompt_completion\"");
}

TEST(DatasetTest, ChatErrors) {
  EXPECT_EQ(ErrorOf(R"({"messages": "hi"})"),
            "line 1: field \"messages\" must be an array");
  EXPECT_EQ(ErrorOf(R"({"messages": [1]})"),
            "line 1: field \"messages[0]\" must be an object");
  EXPECT_EQ(ErrorOf(R"({"messages": [{"content": "x"}]})"),
            "line 1: field \"messages[0].role\" missing");
  EXPECT_EQ(ErrorOf(R"({"messages": [{"role": "assistant", "content": "x"},)"
                    R"( {"role": "bot", "content": "y"}]})"),
            "line 1: field \"messages[1].role\" must be \"system\", \"user\" "
            "or \"assistant\" (found \"bot\")");
  EXPECT_EQ(ErrorOf(R"({"messages": [{"role": "assistant", "content": 3}]})"),
            "line 1: field \"messages[0].content\" must be a string");
  EXPECT_EQ(ErrorOf(R"({"messages": [{"role": "assistant"}]})"),
            "line 1: field \"messages[0].content\" missing");
  EXPECT_EQ(ErrorOf("{\"messages\": [{\"role\": \"assistant\", \"content\": "
                    "\"x\"}]}\n{\"messages\": [{\"role\": \"user\", "
                    "\"content\": \"y\"}]}"),
            "line 2: field \"messages\" must contain at least one "
            "\"assistant\" message");
  EXPECT_EQ(ErrorOf(R"({"messages": []})"),
            "line 1: field \"messages\" must contain at least one "
            "\"assistant\" message");
}

TEST(DatasetTest, LongLineIsRefusedByNumber) {
  std::string big(kMaxDatasetLineBytes - 12, 'x');
  std::string ok_line = "{\"text\": \"" + big + "\"}";  // exactly the limit
  ASSERT_EQ(ok_line.size(), kMaxDatasetLineBytes);
  EXPECT_TRUE(ParseJsonlDataset(ok_line + "\r\n").ok());
  std::string too_long = "{\"text\": \"" + big + "x\"}";
  EXPECT_EQ(ErrorOf("{\"text\": \"a\"}\n" + too_long + "\n"),
            "line 2: longer than 1 MiB (1048577 bytes)");
}

TEST(DatasetTest, TooManyLines) {
  std::string contents(kMaxDatasetLines, '\n');
  contents += "{\"text\": \"a\"}\n";
  EXPECT_EQ(ErrorOf(contents), "dataset has more than 2000000 lines");
  contents.resize(kMaxDatasetLines - 1);
  contents += "{\"text\": \"a\"}\n";
  EXPECT_TRUE(ParseJsonlDataset(contents).ok());
}

TEST(DatasetTest, HostileKeysAreShortenedInErrors) {
  std::string key(10000, 'k');
  std::string msg = ErrorOf("{\"" + key + "\": 1}");
  EXPECT_LT(msg.size(), 400u) << msg;
}

}  // namespace
}  // namespace lorad
