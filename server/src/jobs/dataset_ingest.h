// Validates an uploaded JSONL dataset and stores it by content.
#ifndef LORAD_SERVER_JOBS_DATASET_INGEST_H_
#define LORAD_SERVER_JOBS_DATASET_INGEST_H_

#include <string>

#include "absl/status/statusor.h"
#include "lorad/common/env.h"
#include "lorad/v1/lorad.pb.h"
#include "options.h"
#include "store/dataset_store.h"

namespace lorad::server {

// Parses `contents` (InvalidArgument, prefixed by `filename`, for a bad line
// or a dataset without examples), writes it atomically through `env` to
// <data_dir>/datasets/<sha256>.jsonl and records it, created now by `env`'s
// clock. The id is "ds-" + the first 16 hex digits of the sha256, so the
// same content uploaded again returns the dataset already stored. When the
// write fails (ResourceExhausted for a full disk) nothing is left behind:
// no file, no record.
absl::StatusOr<v1::Dataset> IngestDataset(DatasetStore& store, Env* env,
                                          const DataLayout& layout,
                                          const std::string& filename,
                                          const std::string& contents);

}  // namespace lorad::server

#endif  // LORAD_SERVER_JOBS_DATASET_INGEST_H_
