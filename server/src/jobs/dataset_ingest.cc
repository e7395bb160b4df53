#include "jobs/dataset_ingest.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "jobs/job_validation.h"
#include "lorad/common/dataset.h"
#include "lorad/common/files.h"
#include "lorad/common/status_macros.h"

namespace lorad::server {

absl::StatusOr<v1::Dataset> IngestDataset(DatasetStore& store, Env* env,
                                          const DataLayout& layout,
                                          const std::string& filename,
                                          const std::string& contents) {
  LORAD_RETURN_IF_ERROR(ValidateFilename("filename", filename));
  const std::string name = filename.empty() ? "dataset" : filename;
  absl::StatusOr<ParsedDataset> parsed = ParseJsonlDataset(contents);
  if (!parsed.ok()) {
    return absl::Status(parsed.status().code(),
                        absl::StrCat(name, ": ", parsed.status().message()));
  }
  if (parsed->examples.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": the dataset has no examples"));
  }
  const std::string sha256 = Sha256Hex(contents);
  const std::string id = absl::StrCat("ds-", sha256.substr(0, 16));
  absl::StatusOr<v1::Dataset> existing = store.GetDataset(id);
  if (existing.ok()) return existing;
  if (!absl::IsNotFound(existing.status())) return existing.status();

  LORAD_RETURN_IF_ERROR(env->CreateDirs(layout.DatasetsDir()));
  const std::string path = layout.DatasetPath(sha256);
  absl::Status stored = env->WriteFileAtomic(path, contents);
  v1::Dataset dataset;
  if (stored.ok()) {
    dataset.set_id(id);
    dataset.set_sha256(sha256);
    dataset.set_filename(filename);
    dataset.set_size_bytes(static_cast<int64_t>(contents.size()));
    dataset.set_num_examples(static_cast<int64_t>(parsed->examples.size()));
    dataset.set_format(std::string(DatasetFormatName(parsed->format)));
    dataset.set_created_at_unix(absl::ToUnixSeconds(env->Now()));
    stored = store.PutDataset(dataset);
  }
  if (stored.ok()) return dataset;
  // The file may be in place (a failed directory fsync comes after the
  // rename; a failed insert after both): with no record pointing at it, it
  // goes, unless a concurrent upload of the same bytes recorded it meanwhile.
  if (absl::IsNotFound(store.GetDataset(id).status())) {
    (void)env->RemoveFile(path);
  }
  return stored;
}

}  // namespace lorad::server
