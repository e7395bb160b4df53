#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "auth/roles.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "lorad/v1/lorad.pb.h"

namespace lorad::server::auth {
namespace {

// Every method of every service of lorad.v1 has a minimum role, and the
// table names no method that does not exist: a new RPC cannot be served
// without a decision on who may call it.
TEST(RolesTest, TableCoversEveryMethodOfEveryService) {
  const google::protobuf::FileDescriptor* file =
      v1::Dataset::descriptor()->file();
  ASSERT_GT(file->service_count(), 0);
  std::set<std::string> methods;
  for (int s = 0; s < file->service_count(); ++s) {
    const google::protobuf::ServiceDescriptor* service = file->service(s);
    for (int m = 0; m < service->method_count(); ++m) {
      std::string path = absl::StrCat("/", service->full_name(), "/",
                                      service->method(m)->name());
      methods.insert(path);
      MethodRule rule = RuleFor(path);
      EXPECT_TRUE(rule.minimum.has_value()) << path << " has no minimum role";
      EXPECT_FALSE(rule.public_method) << path;
    }
  }
  std::set<std::string> listed;
  for (const auto& [path, role] : MethodRoles()) listed.insert(path);
  EXPECT_EQ(listed, methods);
}

TEST(RolesTest, HealthIsPublicAndUnknownMethodsHaveNoRole) {
  EXPECT_TRUE(RuleFor("/grpc.health.v1.Health/Check").public_method);
  MethodRule unknown = RuleFor("/lorad.v1.Datasets/Drop");
  EXPECT_FALSE(unknown.public_method);
  EXPECT_FALSE(unknown.minimum.has_value());
}

TEST(RolesTest, RolesAreOrderedAndNamed) {
  EXPECT_LT(Role::kReader, Role::kUser);
  EXPECT_LT(Role::kUser, Role::kTrainer);
  EXPECT_LT(Role::kTrainer, Role::kAdmin);
  for (Role role : {Role::kReader, Role::kUser, Role::kTrainer, Role::kAdmin}) {
    EXPECT_EQ(ParseRole(RoleName(role)), role);
  }
  EXPECT_FALSE(ParseRole("Admin").has_value());
}

}  // namespace
}  // namespace lorad::server::auth
