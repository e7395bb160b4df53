#include <string>

#include "absl/strings/str_cat.h"
#include "auth/token_table.h"
#include "gtest/gtest.h"
#include "lorad/common/files.h"

namespace lorad::server::auth {
namespace {

std::string Line(const std::string& token, const std::string& name,
                 const std::string& role) {
  return absl::StrCat("sha256:", Sha256Hex(token), " ", name, " ", role, "\n");
}

TEST(TokenTableTest, FindsTokensByTheirDigest) {
  absl::StatusOr<TokenTable> table = TokenTable::Parse(
      absl::StrCat("# comment\n\n", Line("s3cret", "alice", "trainer"), "  ",
                   Line("other", "bob", "reader")),
      "tokens");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->size(), 2u);
  std::optional<Identity> alice = table->Find("s3cret");
  ASSERT_TRUE(alice.has_value());
  EXPECT_EQ(alice->name, "alice");
  EXPECT_EQ(alice->role, Role::kTrainer);
  EXPECT_EQ(table->Find("other")->role, Role::kReader);
  EXPECT_FALSE(table->Find("s3cre").has_value());
  EXPECT_FALSE(table->Find("").has_value());
  EXPECT_FALSE(table->Find(Sha256Hex("s3cret")).has_value());
}

TEST(TokenTableTest, UpperCaseDigestsMatch) {
  std::string hex = Sha256Hex("tok");
  for (char& c : hex) c = static_cast<char>(std::toupper(c));
  absl::StatusOr<TokenTable> table =
      TokenTable::Parse(absl::StrCat("sha256:", hex, " a admin"), "t");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_TRUE(table->Find("tok").has_value());
}

TEST(TokenTableTest, RejectsMalformedLinesNamingTheLine) {
  const std::string good = Line("x", "ok", "user");
  struct Case {
    std::string text;
    std::string want;
  } cases[] = {
      {good + "sha256:abcd alice admin\n", "tokens:2: the digest is not 64"},
      {good + "md5:" + Sha256Hex("y") + " a admin\n",
       "tokens:2: the digest does not start"},
      {Line("y", "alice", "root"), "tokens:1: unknown role \"root\""},
      {Line("y", "al ice", "admin"), "tokens:1: 4 fields instead of 3"},
      {Line("y", "al/ice", "admin"), "tokens:1: name \"al/ice\""},
      {good + Line("x", "again", "admin"),
       "tokens:2: the same digest as token \"ok\""},
      {"# only a comment\n", "tokens: no token in the file"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<TokenTable> table = TokenTable::Parse(c.text, "tokens");
    ASSERT_FALSE(table.ok()) << c.text;
    EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(table.status().message().find(c.want), std::string::npos)
        << table.status() << " does not contain " << c.want;
  }
}

TEST(TokenTableTest, LoadReportsAMissingFile) {
  absl::StatusOr<TokenTable> table =
      TokenTable::Load(::testing::TempDir() + "/no-such-tokens");
  EXPECT_EQ(table.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace lorad::server::auth
