#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "auth/gatekeeper.h"
#include "gtest/gtest.h"
#include "lorad/common/files.h"

namespace lorad::server::auth {
namespace {

constexpr char kList[] = "/lorad.v1.Datasets/List";
constexpr char kUpload[] = "/lorad.v1.Datasets/Upload";

std::string TokensFile(const std::string& name, const std::string& text) {
  std::string path = absl::StrCat(::testing::TempDir(), "/auth_gk_", name);
  EXPECT_TRUE(WriteFileAtomic(path, text).ok());
  return path;
}

std::string Line(const std::string& token, const std::string& name,
                 const std::string& role) {
  return absl::StrCat("sha256:", Sha256Hex(token), " ", name, " ", role, "\n");
}

std::unique_ptr<Gatekeeper> Make(Gatekeeper::Options options) {
  absl::StatusOr<std::unique_ptr<Gatekeeper>> gate =
      Gatekeeper::Create(std::move(options));
  EXPECT_TRUE(gate.ok()) << gate.status();
  return gate.ok() ? *std::move(gate) : nullptr;
}

TEST(GatekeeperTest, WithoutTokensEveryCallerIsAnAnonymousAdmin) {
  auto gate = Make({});
  EXPECT_FALSE(gate->CheckBasic("", ""));
  Verdict verdict = gate->Admit(kUpload, std::nullopt);
  EXPECT_TRUE(verdict.status.ok()) << verdict.status;
  EXPECT_EQ(verdict.caller.name, "");
  EXPECT_EQ(verdict.caller.role, Role::kAdmin);
  gate->Release(verdict);
}

TEST(GatekeeperTest, ChecksTokenAndRole) {
  Gatekeeper::Options options;
  options.tokens_file = TokensFile(
      "roles", Line("rtok", "rita", "reader") + Line("ttok", "tom", "trainer"));
  auto gate = Make(options);
  EXPECT_EQ(gate->Admit(kList, std::nullopt).status.code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(gate->Admit(kList, "Basic cnRvaw==").status.code(),
            absl::StatusCode::kUnauthenticated);
  Verdict bad = gate->Admit(kList, "Bearer nope");
  EXPECT_EQ(bad.status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(bad.status.message().find("nope"), std::string::npos);

  Verdict reader = gate->Admit(kList, "Bearer rtok");
  EXPECT_TRUE(reader.status.ok()) << reader.status;
  EXPECT_EQ(reader.caller.name, "rita");
  gate->Release(reader);
  Verdict denied = gate->Admit(kUpload, "Bearer rtok");
  EXPECT_EQ(denied.status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(denied.status.message().find("needs role trainer"),
            std::string::npos)
      << denied.status;
  Verdict trainer = gate->Admit(kUpload, "Bearer ttok");
  EXPECT_TRUE(trainer.status.ok()) << trainer.status;
  gate->Release(trainer);

  EXPECT_EQ(gate->Admit("/lorad.v1.Datasets/Drop", "Bearer ttok").status.code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(
      gate->Admit("/grpc.health.v1.Health/Check", std::nullopt).status.ok());
  EXPECT_TRUE(gate->CheckBasic("rita", "rtok"));
  EXPECT_FALSE(gate->CheckBasic("tom", "rtok"));
  EXPECT_FALSE(gate->CheckBasic("rita", "nope"));
}

TEST(GatekeeperTest, ReloadSwapsTheTableAndKeepsItOnABadFile) {
  Gatekeeper::Options options;
  options.tokens_file = TokensFile("reload", Line("old", "olga", "reader"));
  auto gate = Make(options);
  EXPECT_TRUE(gate->Admit(kList, "Bearer old").status.ok());

  ASSERT_TRUE(
      WriteFileAtomic(options.tokens_file, Line("new", "nina", "reader")).ok());
  ASSERT_TRUE(gate->Reload().ok());
  EXPECT_EQ(gate->Admit(kList, "Bearer old").status.code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(gate->Admit(kList, "Bearer new").status.ok());

  ASSERT_TRUE(WriteFileAtomic(options.tokens_file, "sha256:zz x admin\n").ok());
  absl::Status reload = gate->Reload();
  EXPECT_EQ(reload.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(reload.message().find(":1:"), std::string::npos) << reload;
  EXPECT_TRUE(gate->Admit(kList, "Bearer new").status.ok());
}

TEST(GatekeeperTest, CreateFailsOnABadFile) {
  Gatekeeper::Options options;
  options.tokens_file = TokensFile("bad", "sha256:00 x admin\n");
  EXPECT_EQ(Gatekeeper::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(GatekeeperTest, BoundsConcurrentCallsPerTokenAndOverall) {
  Gatekeeper::Options options;
  options.tokens_file = TokensFile("limits", Line("a", "ann", "reader") +
                                                 Line("b", "ben", "reader") +
                                                 Line("c", "cid", "reader"));
  options.max_concurrent_per_token = 1;
  options.max_concurrent_total = 2;
  auto gate = Make(options);
  Verdict first = gate->Admit(kList, "Bearer a");
  ASSERT_TRUE(first.status.ok());
  Verdict second = gate->Admit(kList, "Bearer a");
  EXPECT_EQ(second.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_GT(second.retry_after_ms, 0);
  EXPECT_FALSE(second.holds_slot);
  gate->Release(second);
  Verdict ben = gate->Admit(kList, "Bearer b");
  ASSERT_TRUE(ben.status.ok());
  Verdict cid = gate->Admit(kList, "Bearer c");
  EXPECT_EQ(cid.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(cid.status.message().find("limit of 2"), std::string::npos);
  gate->Release(first);
  Verdict again = gate->Admit(kList, "Bearer a");
  EXPECT_TRUE(again.status.ok()) << again.status;
  gate->Release(again);
  gate->Release(ben);
}

TEST(GatekeeperTest, RateLimitRefillsWithTime) {
  absl::Time now = absl::FromUnixSeconds(1000);
  Gatekeeper::Options options;
  options.tokens_file = TokensFile("rate", Line("a", "ann", "reader"));
  options.rate_per_token = 2;
  options.burst_per_token = 2;
  options.now = [&now] { return now; };
  auto gate = Make(options);
  for (int i = 0; i < 2; ++i) {
    Verdict v = gate->Admit(kList, "Bearer a");
    EXPECT_TRUE(v.status.ok()) << i;
    gate->Release(v);
  }
  Verdict over = gate->Admit(kList, "Bearer a");
  EXPECT_EQ(over.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(over.retry_after_ms, 500);
  now += absl::Milliseconds(500);
  Verdict refilled = gate->Admit(kList, "Bearer a");
  EXPECT_TRUE(refilled.status.ok()) << refilled.status;
  gate->Release(refilled);
}

}  // namespace
}  // namespace lorad::server::auth
