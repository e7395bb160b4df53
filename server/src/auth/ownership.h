// Who may see and change what: with authentication on, a caller sees and
// changes only the jobs, datasets, batch jobs and adapters its token made
// (an admin sees all); another caller's object is NotFound to it, exactly
// as a missing one, so that ids do not leak. An adapter name belongs to the
// token that first registered it: another caller may not replace, unload,
// load or delete it (PermissionDenied). Without authentication (an
// anonymous caller) everything is visible and nothing is recorded.
//
// Handlers call these in one line; a null Ownership (tests that build
// services without one) allows everything. This class is thread-safe.
#ifndef LORAD_SERVER_AUTH_OWNERSHIP_H_
#define LORAD_SERVER_AUTH_OWNERSHIP_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "auth/call_gate.h"
#include "auth/token_table.h"
#include "grpcpp/server_context.h"
#include "store/owner_store.h"

namespace lorad::server::auth {

enum class Kind { kJob, kDataset, kBatchJob, kAdapter };

class Ownership {
 public:
  explicit Ownership(OwnerStore* store) : store_(store) {}

  // Records `caller` as an owner of (kind, id): the only one, except for a
  // dataset (content-addressed, so shared by whoever uploads the same file).
  absl::Status Claim(const Identity& caller, Kind kind, const std::string& id);
  // OK when `caller` may see (kind, id); NotFound ("job X not found")
  // otherwise.
  absl::Status CheckVisible(const Identity& caller, Kind kind,
                            const std::string& id);
  // Gives (to_kind, to_id) the owners of (from_kind, from_id): an adapter
  // trained by a job belongs to the job's owner.
  absl::Status Inherit(Kind from_kind, const std::string& from_id, Kind to_kind,
                       const std::string& to_id);
  // The filter a list of `kind` needs for `caller`: none for an admin or an
  // anonymous caller (they see everything), else the caller's own objects.
  std::optional<OwnedBy> ListFilter(const Identity& caller, Kind kind) const;
  // OK when `caller` may register, replace or delete the adapter `name`
  // (no owner yet, its own, or an admin); PermissionDenied otherwise.
  absl::Status CheckAdapterName(const Identity& caller,
                                const std::string& name);

 private:
  OwnerStore* const store_;
};

// The caller of an admitted call (one that owns nothing when the verdict is
// unreadable: the handler's Refuse*() already refused such calls).
Identity CallerOrAnonymous(const grpc::ServerContextBase* context);

// `object` when the caller may see it, else NotFound; errors pass through.
template <typename T>
absl::StatusOr<T> Visible(Ownership* owners,
                          const grpc::ServerContextBase* context, Kind kind,
                          absl::StatusOr<T> object) {
  if (owners == nullptr || !object.ok()) return object;
  absl::Status seen =
      owners->CheckVisible(CallerOrAnonymous(context), kind, object->id());
  if (!seen.ok()) return seen;
  return object;
}

// ListFilter for the caller of `context` (none without an Ownership).
std::optional<OwnedBy> ListFilter(const Ownership* owners,
                                  const grpc::ServerContextBase* context,
                                  Kind kind);

// CheckVisible for the caller of `context` (OK without an Ownership).
absl::Status CheckVisible(Ownership* owners,
                          const grpc::ServerContextBase* context, Kind kind,
                          const std::string& id);
// CheckAdapterName for the caller of `context`.
absl::Status CheckAdapterName(Ownership* owners,
                              const grpc::ServerContextBase* context,
                              const std::string& name);

// nullptr when the caller may see (kind, id); else a reactor that finishes
// the stream with NotFound (or the store's error).
template <typename Response>
grpc::ServerWriteReactor<Response>* HiddenWriter(
    Ownership* owners, const grpc::ServerContextBase* context, Kind kind,
    const std::string& id) {
  absl::Status seen = CheckVisible(owners, context, kind, id);
  if (seen.ok()) return nullptr;
  return FinishedWriter<Response>(grpc::Status(
      static_cast<grpc::StatusCode>(seen.code()), std::string(seen.message())));
}

// Records `caller` as the owner of a newly made `object` (its id(), or
// name() for an adapter); the object, or the error recording it.
template <typename T>
absl::StatusOr<T> Claimed(Ownership* owners, const Identity& caller, Kind kind,
                          absl::StatusOr<T> object) {
  if (owners == nullptr || !object.ok()) return object;
  std::string id;
  if constexpr (requires { object->id(); }) {
    id = object->id();
  } else {
    id = object->name();
  }
  absl::Status claimed = owners->Claim(caller, kind, id);
  if (!claimed.ok()) return claimed;
  return object;
}

// Drops from `objects` those the caller may not see (by id(), or name()).
template <typename T>
void KeepVisible(Ownership* owners, const grpc::ServerContextBase* context,
                 Kind kind, std::vector<T>& objects) {
  if (owners == nullptr) return;
  const Identity caller = CallerOrAnonymous(context);
  std::erase_if(objects, [&](const T& object) {
    if constexpr (requires { object.id(); }) {
      return !owners->CheckVisible(caller, kind, object.id()).ok();
    } else {
      return !owners->CheckVisible(caller, kind, object.name()).ok();
    }
  });
}

}  // namespace lorad::server::auth

#endif  // LORAD_SERVER_AUTH_OWNERSHIP_H_
