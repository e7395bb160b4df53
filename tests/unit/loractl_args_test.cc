#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "args.h"

namespace lorad::client {
namespace {

const std::vector<FlagSpec> kSpecs = {
    {"count", true, false, "N", ""},
    {"name", true, false, "S", ""},
    {"verbose", false, false, "", ""},
    {"stop", true, true, "S", ""},
};

TEST(ParseArgsTest, ValuesSwitchesAndPositionals) {
  auto parsed = ParseArgs({"a", "--count", "3", "--name=x=y", "--verbose", "b",
                           "--stop", "1", "--stop=2"},
                          kSpecs);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->Get("count"), "3");
  EXPECT_EQ(parsed->Get("name"), "x=y");
  EXPECT_TRUE(parsed->Switch("verbose"));
  EXPECT_EQ(parsed->GetAll("stop"), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(parsed->positional(), (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(parsed->Has("missing"));
}

TEST(ParseArgsTest, DoubleDashEndsFlags) {
  auto parsed = ParseArgs({"--", "--count", "-"}, kSpecs);
  ASSERT_TRUE(parsed.ok());
  EXPECT_FALSE(parsed->Has("count"));
  EXPECT_EQ(parsed->positional(), (std::vector<std::string>{"--count", "-"}));
}

TEST(ParseArgsTest, SwitchTakesExplicitBoolean) {
  auto parsed = ParseArgs({"--verbose=false"}, kSpecs);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->Has("verbose"));
  EXPECT_FALSE(parsed->Switch("verbose"));
  auto bad = ParseArgs({"--verbose=maybe"}, kSpecs);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("--verbose"), std::string::npos);
}

TEST(ParseArgsTest, RejectsUnknownMissingAndRepeatedFlags) {
  auto unknown = ParseArgs({"--bogus"}, kSpecs);
  EXPECT_NE(unknown.status().message().find("--bogus"), std::string::npos);
  auto missing = ParseArgs({"--count"}, kSpecs);
  EXPECT_EQ(missing.status().message(), "--count: missing value");
  auto twice = ParseArgs({"--count", "1", "--count", "2"}, kSpecs);
  EXPECT_EQ(twice.status().message(), "--count: given more than once");
}

TEST(ParseArgsTest, NegativeNumberIsAValue) {
  auto parsed = ParseArgs({"--count", "-5"}, kSpecs);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->Get("count"), "-5");
}

TEST(NumberFlagTest, ParsesAndRangeChecks) {
  auto parsed = ParseArgs({"--count", "7", "--name", "2e-4"}, kSpecs);
  ASSERT_TRUE(parsed.ok());
  auto count = IntFlag(*parsed, "count", 1, 10);
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(**count, 7);
  auto as_float = FloatFlag(*parsed, "name", 0, 1);
  ASSERT_TRUE(as_float.ok());
  EXPECT_FLOAT_EQ(**as_float, 2e-4f);
  auto absent = IntFlag(*parsed, "verbose", 0, 1);
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->has_value());

  auto too_big = IntFlag(*parsed, "count", 1, 5);
  EXPECT_EQ(too_big.status().message(),
            "--count: must be between 1 and 5, got 7");
}

TEST(NumberFlagTest, RejectsGarbageNamingTheFlag) {
  auto parsed = ParseArgs({"--count", "3x", "--name", "nan"}, kSpecs);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(IntFlag(*parsed, "count", 0, 10).status().message(),
            "--count: expected an integer, got \"3x\"");
  EXPECT_EQ(FloatFlag(*parsed, "name", 0, 1).status().message(),
            "--name: expected a number, got \"nan\"");
  auto negative = ParseArgs({"--count", "-1"}, kSpecs);
  ASSERT_TRUE(negative.ok());
  EXPECT_FALSE(Uint64Flag(*negative, "count").ok());
}

TEST(OnePositionalTest, NeedsExactlyOne) {
  ParsedArgs none;
  EXPECT_EQ(OnePositional(none, "JOB").status().message(), "JOB: required");
  ParsedArgs one;
  one.AddPositional("ft-1");
  EXPECT_EQ(*OnePositional(one, "JOB"), "ft-1");
  one.AddPositional("ft-2");
  EXPECT_FALSE(OnePositional(one, "JOB").ok());
}

}  // namespace
}  // namespace lorad::client
