#include "store/owner_store.h"

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "lorad/common/status_macros.h"

namespace lorad::server {
namespace {

constexpr char kStore[] = "owner store";

constexpr char kSchemaSql[] = R"sql(
CREATE TABLE IF NOT EXISTS owners (
  kind TEXT NOT NULL,
  id TEXT NOT NULL,
  owner TEXT NOT NULL,
  PRIMARY KEY (kind, id, owner)
);
)sql";

}  // namespace

absl::StatusOr<std::unique_ptr<OwnerStore>> OwnerStore::Open(Db* db) {
  LORAD_RETURN_IF_ERROR(db->AddSchema(Op{kStore, "create tables"}, kSchemaSql));
  return absl::WrapUnique(new OwnerStore(db));
}

absl::Status OwnerStore::AddOwner(absl::string_view kind, absl::string_view id,
                                  absl::string_view owner) {
  return db_
      ->Exec(Op{kStore, absl::StrCat("add owner of ", kind, " ", id)},
             "INSERT OR IGNORE INTO owners (kind, id, owner) "
             "VALUES (?1, ?2, ?3)",
             {kind, id, owner})
      .status();
}

absl::Status OwnerStore::SetOwner(absl::string_view kind, absl::string_view id,
                                  absl::string_view owner) {
  const Op op{kStore, absl::StrCat("set owner of ", kind, " ", id)};
  return db_->Transaction(op, [&](SqlRunner& txn) -> absl::Status {
    LORAD_RETURN_IF_ERROR(
        txn.Exec(op, "DELETE FROM owners WHERE kind = ?1 AND id = ?2",
                 {kind, id})
            .status());
    return txn
        .Exec(op, "INSERT INTO owners (kind, id, owner) VALUES (?1, ?2, ?3)",
              {kind, id, owner})
        .status();
  });
}

absl::StatusOr<std::vector<std::string>> OwnerStore::Owners(
    absl::string_view kind, absl::string_view id) {
  std::vector<std::string> owners;
  LORAD_RETURN_IF_ERROR(db_->Query(
      Op{kStore, absl::StrCat("get owners of ", kind, " ", id)},
      "SELECT owner FROM owners WHERE kind = ?1 AND id = ?2 ORDER BY owner",
      {kind, id}, [&owners](const Row& row) {
        owners.emplace_back(row.Text(0));
        return absl::OkStatus();
      }));
  return owners;
}

absl::Status OwnerStore::Forget(absl::string_view kind, absl::string_view id) {
  return db_
      ->Exec(Op{kStore, absl::StrCat("forget owners of ", kind, " ", id)},
             "DELETE FROM owners WHERE kind = ?1 AND id = ?2", {kind, id})
      .status();
}

}  // namespace lorad::server
