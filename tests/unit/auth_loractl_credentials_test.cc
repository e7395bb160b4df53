#include <cstdlib>
#include <fstream>
#include <string>

#include "args.h"
#include "connection.h"
#include "credentials.h"
#include "gtest/gtest.h"

namespace lorad::client {
namespace {

ParsedArgs Parse(const std::vector<std::string>& args) {
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, GlobalFlags());
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return *parsed;
}

std::string WriteConfig(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + "/auth_loractl_" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(LoractlCredentialsTest, ConfigPathFollowsXdgThenHome) {
  EXPECT_EQ(DefaultConfigPath("/x", "/h"), "/x/lorad/config");
  EXPECT_EQ(DefaultConfigPath("", "/h"), "/h/.config/lorad/config");
  EXPECT_EQ(DefaultConfigPath(nullptr, nullptr), "");
}

TEST(LoractlCredentialsTest, FlagThenEnvironmentThenConfig) {
  std::string config = WriteConfig("ok", "# mine\ntoken = from-config\n");
  EXPECT_EQ(*ResolveToken(Parse({"--token", "from-flag"}), "from-env", config),
            "from-flag");
  EXPECT_EQ(*ResolveToken(Parse({}), "from-env", config), "from-env");
  EXPECT_EQ(*ResolveToken(Parse({}), "", config), "from-config");
  EXPECT_EQ(*ResolveToken(Parse({}), nullptr, config + ".missing"), "");
}

TEST(LoractlCredentialsTest, ConfigErrorsNameTheLineNotTheToken) {
  std::string config =
      WriteConfig("bad", "token = supersecret\ntokn = supersecret2\n");
  absl::StatusOr<std::string> token = ResolveToken(Parse({}), nullptr, config);
  ASSERT_FALSE(token.ok());
  EXPECT_NE(token.status().message().find(":2: unknown key \"tokn\""),
            std::string::npos)
      << token.status();
  EXPECT_EQ(token.status().message().find("supersecret"), std::string::npos);
  EXPECT_FALSE(TokenFromConfig("supersecret\n", "c").ok());
  EXPECT_EQ(TokenFromConfig("supersecret\n", "c")
                .status()
                .message()
                .find("supersecret"),
            std::string::npos);
}

TEST(LoractlCredentialsTest, TlsFlagsAreReadAndChecked) {
  absl::StatusOr<GlobalOptions> options =
      ParseGlobalOptions(Parse({"--tls-ca", "/ca.pem", "--tls-cert", "/c.pem",
                                "--tls-key", "/k.pem"}),
                         nullptr);
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->tls.ca, "/ca.pem");
  EXPECT_EQ(options->tls.cert, "/c.pem");
  EXPECT_EQ(options->tls.key, "/k.pem");
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> missing =
      ChannelCredentials(options->tls);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("--tls-ca"), std::string::npos);
  TlsFiles half;
  half.cert = "/c.pem";
  EXPECT_EQ(ChannelCredentials(half).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ChannelCredentials(TlsFiles()).ok());
}

}  // namespace
}  // namespace lorad::client
