#include "auth/ownership.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "lorad/common/status_macros.h"

namespace lorad::server::auth {
namespace {

absl::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kJob:
      return "job";
    case Kind::kDataset:
      return "dataset";
    case Kind::kBatchJob:
      return "batch job";
    case Kind::kAdapter:
      return "adapter";
  }
  return "object";
}

bool Anonymous(const Identity& caller) { return caller.name.empty(); }

}  // namespace

absl::Status Ownership::Claim(const Identity& caller, Kind kind,
                              const std::string& id) {
  if (Anonymous(caller)) return absl::OkStatus();
  if (kind == Kind::kDataset) {
    return store_->AddOwner(KindName(kind), id, caller.name);
  }
  return store_->SetOwner(KindName(kind), id, caller.name);
}

absl::Status Ownership::CheckVisible(const Identity& caller, Kind kind,
                                     const std::string& id) {
  if (Anonymous(caller) || caller.role == Role::kAdmin) {
    return absl::OkStatus();
  }
  LORAD_ASSIGN_OR_RETURN(std::vector<std::string> owners,
                         store_->Owners(KindName(kind), id));
  if (std::find(owners.begin(), owners.end(), caller.name) != owners.end()) {
    return absl::OkStatus();
  }
  return absl::NotFoundError(
      absl::StrCat(KindName(kind), " ", id, " not found"));
}

std::optional<OwnedBy> Ownership::ListFilter(const Identity& caller,
                                             Kind kind) const {
  if (Anonymous(caller) || caller.role == Role::kAdmin) return std::nullopt;
  return OwnedBy{std::string(KindName(kind)), caller.name};
}

absl::Status Ownership::Inherit(Kind from_kind, const std::string& from_id,
                                Kind to_kind, const std::string& to_id) {
  LORAD_ASSIGN_OR_RETURN(std::vector<std::string> owners,
                         store_->Owners(KindName(from_kind), from_id));
  if (owners.empty()) return absl::OkStatus();
  return store_->SetOwner(KindName(to_kind), to_id, owners.front());
}

absl::Status Ownership::CheckAdapterName(const Identity& caller,
                                         const std::string& name) {
  if (Anonymous(caller) || caller.role == Role::kAdmin) {
    return absl::OkStatus();
  }
  LORAD_ASSIGN_OR_RETURN(std::vector<std::string> owners,
                         store_->Owners(KindName(Kind::kAdapter), name));
  if (owners.empty() ||
      std::find(owners.begin(), owners.end(), caller.name) != owners.end()) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat("adapter name \"", name,
                   "\" belongs to another token; pick another name"));
}

Identity CallerOrAnonymous(const grpc::ServerContextBase* context) {
  absl::StatusOr<Identity> caller = CallerOf(context);
  // Refuse*() has already refused such a call; owning nothing is safe.
  if (!caller.ok()) return Identity{"?", Role::kReader};
  return *caller;
}

std::optional<OwnedBy> ListFilter(const Ownership* owners,
                                  const grpc::ServerContextBase* context,
                                  Kind kind) {
  if (owners == nullptr) return std::nullopt;
  return owners->ListFilter(CallerOrAnonymous(context), kind);
}

absl::Status CheckVisible(Ownership* owners,
                          const grpc::ServerContextBase* context, Kind kind,
                          const std::string& id) {
  if (owners == nullptr) return absl::OkStatus();
  return owners->CheckVisible(CallerOrAnonymous(context), kind, id);
}

absl::Status CheckAdapterName(Ownership* owners,
                              const grpc::ServerContextBase* context,
                              const std::string& name) {
  if (owners == nullptr) return absl::OkStatus();
  return owners->CheckAdapterName(CallerOrAnonymous(context), name);
}

}  // namespace lorad::server::auth
