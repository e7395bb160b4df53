#include "auth/roles.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"

namespace lorad::server::auth {
namespace {

// One line per method of proto/lorad/v1/lorad.proto; auth_roles_test fails
// when a service gains a method that is missing here.
const absl::flat_hash_map<std::string, Role>& Table() {
  static const auto* table = new absl::flat_hash_map<std::string, Role>{
      {"/lorad.v1.Datasets/Upload", Role::kTrainer},
      {"/lorad.v1.Datasets/List", Role::kReader},
      {"/lorad.v1.FineTuning/CreateJob", Role::kTrainer},
      {"/lorad.v1.FineTuning/GetJob", Role::kReader},
      {"/lorad.v1.FineTuning/ListJobs", Role::kReader},
      {"/lorad.v1.FineTuning/CancelJob", Role::kTrainer},
      {"/lorad.v1.FineTuning/WatchJob", Role::kReader},
      {"/lorad.v1.Inference/Generate", Role::kUser},
      {"/lorad.v1.Telemetry/Snapshot", Role::kReader},
      {"/lorad.v1.Telemetry/Stream", Role::kReader},
      {"/lorad.v1.Adapters/List", Role::kReader},
      {"/lorad.v1.Adapters/Load", Role::kTrainer},
      {"/lorad.v1.Adapters/Upload", Role::kTrainer},
      {"/lorad.v1.Adapters/Unload", Role::kTrainer},
      {"/lorad.v1.Adapters/Delete", Role::kTrainer},
      {"/lorad.v1.Adapters/Download", Role::kUser},
      {"/lorad.v1.Adapters/ExportMerged", Role::kTrainer},
      {"/lorad.v1.BatchInference/CreateJob", Role::kUser},
      {"/lorad.v1.BatchInference/GetJob", Role::kReader},
      {"/lorad.v1.BatchInference/ListJobs", Role::kReader},
      {"/lorad.v1.BatchInference/CancelJob", Role::kUser},
      {"/lorad.v1.BatchInference/WatchJob", Role::kReader},
      {"/lorad.v1.BatchInference/GetResults", Role::kReader},
  };
  return *table;
}

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kReader:
      return "reader";
    case Role::kUser:
      return "user";
    case Role::kTrainer:
      return "trainer";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

std::optional<Role> ParseRole(absl::string_view name) {
  for (Role role : {Role::kReader, Role::kUser, Role::kTrainer, Role::kAdmin}) {
    if (name == RoleName(role)) return role;
  }
  return std::nullopt;
}

MethodRule RuleFor(absl::string_view method) {
  if (absl::StartsWith(method, "/grpc.health.v1.Health/")) {
    return {std::nullopt, true};
  }
  auto it = Table().find(method);
  if (it == Table().end()) return {};
  return {it->second, false};
}

std::vector<std::pair<std::string, Role>> MethodRoles() {
  return {Table().begin(), Table().end()};
}

}  // namespace lorad::server::auth
