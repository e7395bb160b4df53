#include "store/adapter_store.h"

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "lorad/common/status_macros.h"

namespace lorad::server {
namespace {

constexpr char kStore[] = "adapter store";

constexpr char kSchemaSql[] = R"sql(
CREATE TABLE IF NOT EXISTS adapters (
  name TEXT PRIMARY KEY NOT NULL,
  proto BLOB NOT NULL
);
)sql";

}  // namespace

absl::StatusOr<std::unique_ptr<AdapterStore>> AdapterStore::Open(Db* db) {
  LORAD_ASSIGN_OR_RETURN(bool existed, db->HasTable("adapters"));
  LORAD_RETURN_IF_ERROR(db->AddSchema(Op{kStore, "create tables"}, kSchemaSql));
  return absl::WrapUnique(new AdapterStore(db, /*created_registry=*/!existed));
}

absl::Status AdapterStore::PutAdapter(const v1::Adapter& adapter) {
  const Op op{kStore, absl::StrCat("put adapter ", adapter.name())};
  LORAD_ASSIGN_OR_RETURN(std::string bytes, SerializeRecord(op, adapter));
  return db_
      ->Exec(op,
             "INSERT OR REPLACE INTO adapters (name, proto) VALUES (?1, ?2)",
             {adapter.name(), Blob{bytes}})
      .status();
}

absl::StatusOr<v1::Adapter> AdapterStore::GetAdapter(const std::string& name) {
  return db_->QueryProto<v1::Adapter>(
      Op{kStore, absl::StrCat("get adapter ", name)},
      "SELECT proto FROM adapters WHERE name = ?1", {name},
      absl::StrCat("adapter ", name, " not found"));
}

absl::StatusOr<std::vector<v1::Adapter>> AdapterStore::ListAdapters() {
  return db_->QueryProtos<v1::Adapter>(
      Op{kStore, "list adapters"}, "SELECT proto FROM adapters ORDER BY name",
      {});
}

absl::Status AdapterStore::DeleteAdapter(const std::string& name) {
  LORAD_ASSIGN_OR_RETURN(
      int64_t deleted,
      db_->Exec(Op{kStore, absl::StrCat("delete adapter ", name)},
                "DELETE FROM adapters WHERE name = ?1", {name}));
  if (deleted == 0) {
    return absl::NotFoundError(absl::StrCat("adapter ", name, " not found"));
  }
  return absl::OkStatus();
}

}  // namespace lorad::server
