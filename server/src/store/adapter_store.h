// Durable records of the adapter registry, in the shared Db (lorad.db):
// table `adapters` (name, proto), one row per name holding its current
// version. The files live under <data_dir>/adapter_registry/ (see
// serving/adapter_registry.h).
//
// Durability, the schema version and the error codes are the Db's (see
// store/db.h): each call is one commit; messages name "adapter store" and
// the operation; a record that does not parse is DataLoss.
//
// This class is thread-safe (the Db serializes calls).
#ifndef LORAD_SERVER_STORE_ADAPTER_STORE_H_
#define LORAD_SERVER_STORE_ADAPTER_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lorad/v1/lorad.pb.h"
#include "store/db.h"

namespace lorad::server {

class AdapterStore {
 public:
  // Adds the table to `db` when missing. `db` is not owned and must outlive
  // the store.
  static absl::StatusOr<std::unique_ptr<AdapterStore>> Open(Db* db);

  AdapterStore(const AdapterStore&) = delete;
  AdapterStore& operator=(const AdapterStore&) = delete;

  // True when this Open created the adapters table: the file comes from a
  // lorad without the registry (adapters of older jobs may need adding).
  bool created_registry() const { return created_registry_; }

  // Inserts or replaces the adapter named `adapter.name()`.
  absl::Status PutAdapter(const v1::Adapter& adapter);
  // NotFound naming the adapter when there is none.
  absl::StatusOr<v1::Adapter> GetAdapter(const std::string& name);
  // Sorted by name.
  absl::StatusOr<std::vector<v1::Adapter>> ListAdapters();
  // NotFound when there is none.
  absl::Status DeleteAdapter(const std::string& name);

 private:
  AdapterStore(Db* db, bool created_registry)
      : db_(db), created_registry_(created_registry) {}

  Db* const db_;
  const bool created_registry_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_STORE_ADAPTER_STORE_H_
