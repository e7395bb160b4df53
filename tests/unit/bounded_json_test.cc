#include "lorad/common/bounded_json.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "lorad/common/excerpt.h"

namespace lorad {
namespace {

std::string Nested(int depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

TEST(BoundedJsonTest, DepthAtTheLimitParses) {
  const JsonLimits limits{1 << 20, 32, 1 << 20};
  EXPECT_TRUE(CheckJsonShape(Nested(32), limits).ok());
  auto parsed = ParseBoundedJson(Nested(32), limits);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->is_array());
}

// The reported crash: a batch line or adapter_config.json nested 200000
// levels deep ran the daemon's stack out.
TEST(BoundedJsonTest, DeepNestingIsRefusedBeforeParsing) {
  for (const std::string& text :
       {Nested(33), Nested(200000), "{\"a\":" + Nested(100) + "}",
        std::string(1000, '{')}) {
    absl::Status s = CheckJsonShape(text, kSmallJsonLimits);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(s.message(), "nested deeper than 32"))
        << s.message();
    EXPECT_FALSE(ParseBoundedJson(text, kSmallJsonLimits).ok());
  }
}

TEST(BoundedJsonTest, BracketsInsideStringsDoNotCount) {
  const std::string text = "{\"a\": \"" + std::string(100, '[') + "\\\"" +
                           std::string(100, '{') + "\"}";
  EXPECT_TRUE(CheckJsonShape(text, kSmallJsonLimits).ok());
  auto parsed = ParseBoundedJson(text, kSmallJsonLimits);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ((*parsed)["a"].get<std::string>().size(), 201u);
}

TEST(BoundedJsonTest, SizeAndValueCountAreBounded) {
  const JsonLimits limits{100, 32, 10};
  absl::Status big = CheckJsonShape(std::string(101, ' '), limits);
  EXPECT_TRUE(absl::StrContains(big.message(), "101 bytes")) << big.message();
  absl::Status many = CheckJsonShape("[1,2,3,4,5,6,7,8,9,10,11]", limits);
  EXPECT_TRUE(absl::StrContains(many.message(), "more than 10 values"))
      << many.message();
  EXPECT_TRUE(CheckJsonShape("[1,2,3,4,5,6,7,8]", limits).ok());
}

TEST(BoundedJsonTest, InvalidJsonIsInvalidArgument) {
  auto parsed = ParseBoundedJson("{\"a\": ", kSmallJsonLimits);
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(parsed.status().message(), "not valid JSON");
}

TEST(ExcerptTest, CutsLongTextAtACharacterBoundary) {
  EXPECT_EQ(Excerpt("short"), "short");
  const std::string long_text(4 << 20, 'x');
  const std::string e = Excerpt(long_text);
  EXPECT_EQ(e, std::string(kExcerptBytes, 'x') + "...");
  // "é" is two bytes; a cut never splits it.
  std::string accents;
  for (int i = 0; i < 40; ++i) accents += "\xC3\xA9";
  const std::string cut = Excerpt(accents, 5);
  EXPECT_EQ(cut, "\xC3\xA9\xC3\xA9...");
  EXPECT_TRUE(IsValidUtf8(cut));
}

TEST(ExcerptTest, BadBytesAndControlsBecomeQuestionMarks) {
  EXPECT_EQ(Excerpt("a\xFF"
                    "b\nc\x01"),
            "a?b?c?");
  EXPECT_EQ(QuotedExcerpt("x"), "\"x\"");
  EXPECT_FALSE(IsValidUtf8("\xC3"));
  EXPECT_TRUE(IsValidUtf8("\xE2\x82\xAC"));
}

}  // namespace
}  // namespace lorad
