#include "store/dataset_store.h"

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "lorad/common/status_macros.h"

namespace lorad::server {
namespace {

constexpr char kStore[] = "dataset store";

constexpr char kSchemaSql[] = R"sql(
CREATE TABLE IF NOT EXISTS datasets (
  id TEXT PRIMARY KEY NOT NULL,
  created_at INTEGER NOT NULL,
  proto BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS datasets_by_created ON datasets (created_at);
)sql";

}  // namespace

absl::StatusOr<std::unique_ptr<DatasetStore>> DatasetStore::Open(Db* db) {
  LORAD_RETURN_IF_ERROR(db->AddSchema(Op{kStore, "create tables"}, kSchemaSql));
  return absl::WrapUnique(new DatasetStore(db));
}

absl::Status DatasetStore::PutDataset(const v1::Dataset& ds) {
  if (ds.id().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kStore, ": dataset id is empty"));
  }
  const Op op{kStore, absl::StrCat("put dataset ", ds.id())};
  LORAD_ASSIGN_OR_RETURN(std::string bytes, SerializeRecord(op, ds));
  return db_
      ->Exec(op,
             "INSERT OR REPLACE INTO datasets (id, created_at, proto) "
             "VALUES (?1, ?2, ?3)",
             {ds.id(), ds.created_at_unix(), Blob{bytes}})
      .status();
}

absl::StatusOr<v1::Dataset> DatasetStore::GetDataset(const std::string& id) {
  return db_->QueryProto<v1::Dataset>(
      Op{kStore, absl::StrCat("get dataset ", id)},
      "SELECT proto FROM datasets WHERE id = ?1", {id},
      absl::StrCat("dataset ", id, " not found"));
}

absl::StatusOr<std::vector<v1::Dataset>> DatasetStore::ListDatasets() {
  return db_->QueryProtos<v1::Dataset>(
      Op{kStore, "list datasets"},
      "SELECT proto FROM datasets ORDER BY created_at DESC, rowid DESC", {});
}

}  // namespace lorad::server
