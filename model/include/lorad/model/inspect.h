// What lorad will do with a model directory, without loading its weights:
// the architecture and shape it reads from config.json, the weights it
// finds (dtype, files, missing or misshapen tensors), the tokenizer kind and
// special tokens, the chat template and its source, the ids that stop
// generation, the NF4 size of the base, and everything it cannot run, each
// problem naming the file and field. Backs `loractl models inspect DIR`.
#ifndef LORAD_MODEL_INSPECT_H_
#define LORAD_MODEL_INSPECT_H_

#include <string>

#include "nlohmann/json.hpp"

namespace lorad::model {

// A JSON report of `dir` (see model/inspect.cc for the fields). "problems"
// lists what would make LlamaModel::Load refuse the directory or serve it
// differently from transformers; "ready" is true when it is empty. Never
// fails: an unreadable part is a problem in the report.
nlohmann::ordered_json InspectModelDir(const std::string& dir);

// The report as aligned "key: value" lines for a terminal.
std::string FormatInspection(const nlohmann::ordered_json& report);

}  // namespace lorad::model

#endif  // LORAD_MODEL_INSPECT_H_
