// The flags of the commands that build a request (finetune, generate) and
// their translation into proto requests. Only the fields the user gave are
// set; the server fills in its defaults for the rest. Pure functions.
#ifndef LORAD_CLIENT_REQUEST_FLAGS_H_
#define LORAD_CLIENT_REQUEST_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "args.h"
#include "lorad/v1/lorad.pb.h"

namespace lorad::client {

const std::vector<FlagSpec>& FineTuneFlags();

struct FineTuneOptions {
  // Everything but training_file and validation_file, which are set once
  // the arguments below are resolved to dataset ids.
  lorad::v1::CreateFineTuneJobRequest request;
  std::string train;       // A JSONL path or a dataset id, as given.
  std::string validation;  // Likewise; empty when not given.
  bool follow = true;
  // Things worth telling the user that do not stop the job.
  std::vector<std::string> warnings;
};

// Reads `loractl finetune` flags. The training data comes from --train or a
// single positional argument. InvalidArgument naming the flag on a bad
// value.
absl::StatusOr<FineTuneOptions> ParseFineTuneOptions(const ParsedArgs& args);

// How a --train / --validation argument is meant: a local file to upload,
// or the id of a dataset already on the server ("ds-..." and not a file).
enum class DatasetArgKind { kFile, kDatasetId, kMissingFile };
DatasetArgKind ClassifyDatasetArg(const std::string& arg, bool file_exists);

const std::vector<FlagSpec>& GenerateFlags();

// Reads `loractl generate` flags into a request for `prompt`.
absl::StatusOr<lorad::v1::GenerateRequest> ParseGenerateRequest(
    const ParsedArgs& args, std::string prompt);

}  // namespace lorad::client

#endif  // LORAD_CLIENT_REQUEST_FLAGS_H_
