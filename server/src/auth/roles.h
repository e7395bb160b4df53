// Who may call what: the roles of the API tokens and the minimum role of
// every method of the public services.
#ifndef LORAD_SERVER_AUTH_ROLES_H_
#define LORAD_SERVER_AUTH_ROLES_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace lorad::server::auth {

// Ordered: a role may do everything the roles below it may.
//   reader:  list, get and watch its own objects, telemetry
//   user:    + generate text, run batch inference jobs, download adapters
//   trainer: + upload datasets, fine-tune, load/upload/unload/delete adapters
//   admin:   + sees and changes every caller's objects
enum class Role { kReader = 1, kUser = 2, kTrainer = 3, kAdmin = 4 };

absl::string_view RoleName(Role role);
// "reader", "user", "trainer" or "admin"; nullopt for anything else.
std::optional<Role> ParseRole(absl::string_view name);

// The minimum role of a method by its gRPC path ("/lorad.v1.Datasets/List").
// The standard health service needs none (nullopt, `public_method` true);
// any other method not in the table is refused (nullopt, false).
struct MethodRule {
  std::optional<Role> minimum;
  bool public_method = false;
};
MethodRule RuleFor(absl::string_view method);

// Every (method path, minimum role) of the table, for tests and docs.
std::vector<std::pair<std::string, Role>> MethodRoles();

}  // namespace lorad::server::auth

#endif  // LORAD_SERVER_AUTH_ROLES_H_
