// Durable records of uploaded datasets, in the shared Db (lorad.db): table
// `datasets` (id, created_at, proto). The files themselves live under
// <data_dir>/datasets/ (see jobs/dataset_ingest.h).
//
// Durability, the schema version and the error codes are the Db's (see
// store/db.h): each call is one commit; messages name "dataset store" and
// the operation; a record that does not parse is DataLoss.
//
// This class is thread-safe (the Db serializes calls).
#ifndef LORAD_SERVER_STORE_DATASET_STORE_H_
#define LORAD_SERVER_STORE_DATASET_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lorad/v1/lorad.pb.h"
#include "store/db.h"

namespace lorad::server {

class DatasetStore {
 public:
  // Adds the table to `db` when missing. `db` is not owned and must outlive
  // the store.
  static absl::StatusOr<std::unique_ptr<DatasetStore>> Open(Db* db);

  DatasetStore(const DatasetStore&) = delete;
  DatasetStore& operator=(const DatasetStore&) = delete;

  // Inserts `ds`, or replaces the dataset with the same id. InvalidArgument
  // when the id is empty.
  absl::Status PutDataset(const v1::Dataset& ds);
  // NotFound naming the id when there is no such dataset.
  absl::StatusOr<v1::Dataset> GetDataset(const std::string& id);
  // All datasets, newest first (created_at_unix, then the latest put).
  absl::StatusOr<std::vector<v1::Dataset>> ListDatasets();

 private:
  explicit DatasetStore(Db* db) : db_(db) {}

  Db* const db_;
};

}  // namespace lorad::server

#endif  // LORAD_SERVER_STORE_DATASET_STORE_H_
