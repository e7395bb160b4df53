// Who owns what: table `owners` (kind, id, owner) in the shared Db. A
// dataset (content-addressed: two uploads of the same file share an id) may
// have several owners; a job, batch job or adapter name has one. Objects
// made while lorad ran without authentication have no row.
//
// Durability and error codes are the Db's (see store/db.h); messages name
// "owner store". This class is thread-safe (the Db serializes calls).
#ifndef LORAD_SERVER_STORE_OWNER_STORE_H_
#define LORAD_SERVER_STORE_OWNER_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "store/db.h"

namespace lorad::server {

// Restricts a list to the objects of one owner: rows of `kind` whose owner
// is `owner` in the owners table.
struct OwnedBy {
  std::string kind;
  std::string owner;
};

class OwnerStore {
 public:
  // Adds the table to `db` when missing (a file from an older lorad gains
  // it on open). `db` is not owned and must outlive the store.
  static absl::StatusOr<std::unique_ptr<OwnerStore>> Open(Db* db);

  OwnerStore(const OwnerStore&) = delete;
  OwnerStore& operator=(const OwnerStore&) = delete;

  // Adds `owner` to (kind, id); a no-op when already there.
  absl::Status AddOwner(absl::string_view kind, absl::string_view id,
                        absl::string_view owner);
  // Makes `owner` the only owner of (kind, id).
  absl::Status SetOwner(absl::string_view kind, absl::string_view id,
                        absl::string_view owner);
  // The owners of (kind, id), sorted; empty when none is recorded.
  absl::StatusOr<std::vector<std::string>> Owners(absl::string_view kind,
                                                  absl::string_view id);
  // Removes every owner of (kind, id).
  absl::Status Forget(absl::string_view kind, absl::string_view id);

 private:
  explicit OwnerStore(Db* db) : db_(db) {}
  Db* const db_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_STORE_OWNER_STORE_H_
