#include "lorad/model/peft_adapter.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "lorad/common/bounded_json.h"
#include "lorad/common/excerpt.h"
#include "lorad/common/files.h"
#include "lorad/common/status_macros.h"
#include "nlohmann/json.hpp"

namespace lorad::model {
namespace {

using Json = nlohmann::json;

constexpr char kPeftPrefix[] = "base_model.model.";
constexpr size_t kMaxShownBytes = 64;

absl::Status Bad(absl::string_view file, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(file, ": ", what));
}

// A JSON value for a message, cut to kMaxShownBytes.
std::string Shown(const Json& value) {
  return Excerpt(value.dump(-1, ' ', false, Json::error_handler_t::replace),
                 kMaxShownBytes);
}

absl::Status BadKey(absl::string_view key, absl::string_view want,
                    const Json& got) {
  return Bad(kAdapterConfigFile, absl::StrCat("key \"", key, "\" must be ",
                                              want, ", got ", Shown(got)));
}

absl::StatusOr<std::vector<std::string>> ParseTargets(const Json& modules) {
  std::set<std::string> targets;
  if (modules.is_string() && modules == "all-linear") {
    targets.insert(kBlockLinearNames.begin(), kBlockLinearNames.end());
  } else if (modules.is_array() && !modules.empty()) {
    for (const Json& m : modules) {
      if (!m.is_string() ||
          !BlockLinearIndex(m.get_ref<const std::string&>()).has_value()) {
        return Bad(
            kAdapterConfigFile,
            absl::StrCat("key \"target_modules\": unknown module ", Shown(m),
                         " (the base model has ", BlockLinearNameList(), ")"));
      }
      targets.insert(m.get<std::string>());
    }
  } else {
    return BadKey("target_modules",
                  "\"all-linear\" or a non-empty list of module names",
                  modules);
  }
  return std::vector<std::string>(targets.begin(), targets.end());
}

// Options that change what the weights mean; lorad refuses them rather than
// serve the adapter wrongly.
absl::Status CheckUnsupported(const Json& j) {
  for (const char* flag : {"use_dora", "use_rslora"}) {
    if (j.contains(flag) && !j[flag].is_null() && j[flag] != false) {
      return BadKey(flag, "false (lorad does not support it)", j[flag]);
    }
  }
  for (const char* pattern : {"rank_pattern", "alpha_pattern"}) {
    if (j.contains(pattern) && !j[pattern].is_null() && !j[pattern].empty()) {
      return BadKey(pattern,
                    "empty (lorad has one rank and one alpha per adapter)",
                    j[pattern]);
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string PeftTensorName(std::string_view module_key, LoraHalf half) {
  return absl::StrCat(kPeftPrefix,
                      absl::string_view(module_key.data(), module_key.size()),
                      half == LoraHalf::kA ? ".lora_A" : ".lora_B", ".weight");
}

absl::StatusOr<PeftTensorKey> ParsePeftTensorName(std::string_view name_in,
                                                  const ModelConfig& base) {
  const absl::string_view name(name_in.data(), name_in.size());
  auto bad = [&](absl::string_view why) {
    return Bad(kAdapterWeightsFile, absl::StrCat("key \"", name, "\": ", why));
  };
  absl::string_view rest = name;
  if (!absl::ConsumePrefix(&rest, kPeftPrefix) ||
      !absl::ConsumePrefix(&rest, "model.layers.")) {
    return bad("not a LoRA weight of a decoder block");
  }
  const size_t dot = rest.find('.');
  PeftTensorKey key;
  if (dot == absl::string_view::npos ||
      !absl::SimpleAtoi(rest.substr(0, dot), &key.layer)) {
    return bad("no layer number");
  }
  rest.remove_prefix(dot + 1);
  if (key.layer < 0 || key.layer >= base.num_hidden_layers) {
    return bad(absl::StrCat("layer ", key.layer,
                            " does not exist (the base model has ",
                            base.num_hidden_layers, " layers)"));
  }
  if (!absl::ConsumeSuffix(&rest, ".weight")) return bad("not a .weight");
  absl::ConsumeSuffix(&rest, ".default");
  if (absl::ConsumeSuffix(&rest, ".lora_A")) {
    key.half = LoraHalf::kA;
  } else if (absl::ConsumeSuffix(&rest, ".lora_B")) {
    key.half = LoraHalf::kB;
  } else {
    return bad("neither lora_A nor lora_B");
  }
  for (const BlockLinear& l : BlockLinears(base)) {
    if (rest == l.path) {
      key.linear = l;
      return key;
    }
  }
  return bad(absl::StrCat("module \"", rest,
                          "\" does not exist in the base model (it has ",
                          BlockLinearNameList(), ")"));
}

absl::StatusOr<PeftAdapterSpec> PeftAdapterSpec::Parse(std::string_view text) {
  absl::StatusOr<Json> parsed = ParseBoundedJson<Json>(
      text, JsonLimits{kMaxAdapterConfigBytes, kMaxAdapterConfigDepth,
                       kSmallJsonLimits.max_values});
  if (!parsed.ok()) return Bad(kAdapterConfigFile, parsed.status().message());
  const Json& j = *parsed;
  if (!j.is_object()) return Bad(kAdapterConfigFile, "not a JSON object");
  if (j.contains("peft_type") && j["peft_type"] != "LORA") {
    return BadKey("peft_type", "\"LORA\"", j["peft_type"]);
  }
  LORAD_RETURN_IF_ERROR(CheckUnsupported(j));
  PeftAdapterSpec spec;
  const Json r = j.value("r", Json());
  if (!r.is_number_integer() || r.get<int64_t>() < 1 ||
      r.get<int64_t>() > kMaxLoraRank) {
    return BadKey("r", absl::StrCat("an integer in [1, ", kMaxLoraRank, "]"),
                  r);
  }
  spec.rank = r.get<int64_t>();
  if (j.contains("lora_alpha")) {
    const Json& alpha = j["lora_alpha"];
    if (!alpha.is_number() || !std::isfinite(alpha.get<double>()) ||
        !(alpha.get<double>() > 0)) {
      return BadKey("lora_alpha", "a finite number > 0", alpha);
    }
    spec.alpha = alpha.get<double>();
  }
  if (j.contains("lora_dropout") && !j["lora_dropout"].is_null()) {
    const Json& dropout = j["lora_dropout"];
    if (!dropout.is_number() || !(dropout.get<double>() >= 0) ||
        !(dropout.get<double>() < 1)) {
      return BadKey("lora_dropout", "a number in [0, 1)", dropout);
    }
    spec.dropout = dropout.get<double>();
  }
  LORAD_ASSIGN_OR_RETURN(spec.target_modules,
                         ParseTargets(j.value("target_modules", Json())));
  const Json base = j.value("base_model_name_or_path", Json());
  if (base.is_string()) {
    spec.base_model_name_or_path = base.get<std::string>();
  } else if (!base.is_null()) {
    return BadKey("base_model_name_or_path", "a string", base);
  }
  return spec;
}

absl::Status PeftAdapterSpec::Validate(
    const ModelConfig& base, const std::vector<TensorInfo>& tensors) const {
  const std::set<std::string, std::less<>> targets(target_modules.begin(),
                                                   target_modules.end());
  // (layer, module path) -> bit 1 for lora_A, bit 2 for lora_B.
  std::map<std::pair<int64_t, std::string>, int> halves;
  for (const TensorInfo& t : tensors) {
    LORAD_ASSIGN_OR_RETURN(PeftTensorKey key,
                           ParsePeftTensorName(t.name, base));
    const BlockLinear& l = key.linear;
    auto bad = [&](absl::string_view why) {
      return Bad(kAdapterWeightsFile,
                 absl::StrCat("key \"", t.name, "\": ", why));
    };
    if (!targets.count(l.name)) {
      return bad(absl::StrCat("module ", l.name, " is not in ",
                              kAdapterConfigFile, "'s target_modules"));
    }
    if (t.dtype != DType::kF32 && t.dtype != DType::kF16 &&
        t.dtype != DType::kBF16) {
      return bad(absl::StrCat("dtype ", std::string(DTypeName(t.dtype)),
                              " (want F32, F16 or BF16)"));
    }
    const std::vector<int64_t> want = key.half == LoraHalf::kA
                                          ? std::vector<int64_t>{rank, l.in}
                                          : std::vector<int64_t>{l.out, rank};
    if (t.shape != want) {
      return bad(absl::StrCat("shape [", absl::StrJoin(t.shape, ", "),
                              "] does not fit the base model (want [",
                              absl::StrJoin(want, ", "), "] for r=", rank,
                              ")"));
    }
    halves[{key.layer, l.path}] |= key.half == LoraHalf::kA ? 1 : 2;
  }
  if (halves.empty()) return Bad(kAdapterWeightsFile, "holds no LoRA weights");
  for (const auto& [module, mask] : halves) {
    if (mask != 3) {
      return Bad(kAdapterWeightsFile,
                 absl::StrCat("layer ", module.first, " ", module.second,
                              " has lora_", mask == 1 ? "A" : "B",
                              " but no lora_", mask == 1 ? "B" : "A"));
    }
  }
  return absl::OkStatus();
}

std::string PeftAdapterSpec::ToJson() const {
  const Json j = {{"peft_type", "LORA"},
                  {"task_type", "CAUSAL_LM"},
                  {"r", rank},
                  {"lora_alpha", alpha},
                  {"lora_dropout", dropout},
                  {"target_modules", target_modules},
                  {"base_model_name_or_path", base_model_name_or_path},
                  {"bias", "none"},
                  {"fan_in_fan_out", false},
                  {"inference_mode", true},
                  {"init_lora_weights", true},
                  {"modules_to_save", nullptr},
                  {"use_rslora", false},
                  {"use_dora", false},
                  {"revision", nullptr}};
  return j.dump(2);
}

absl::StatusOr<PeftAdapter> OpenPeftAdapter(const std::string& dir,
                                            const ModelConfig& base) {
  const std::string config_path = absl::StrCat(dir, "/", kAdapterConfigFile);
  const std::string weights_path = absl::StrCat(dir, "/", kAdapterWeightsFile);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(config_path, ec)) {
    return absl::NotFoundError(absl::StrCat(kAdapterConfigFile, ": missing"));
  }
  LORAD_ASSIGN_OR_RETURN(const std::string text, ReadFile(config_path));
  PeftAdapter adapter;
  LORAD_ASSIGN_OR_RETURN(adapter.spec, PeftAdapterSpec::Parse(text));
  if (!std::filesystem::is_regular_file(weights_path, ec)) {
    return absl::NotFoundError(absl::StrCat(kAdapterWeightsFile, ": missing"));
  }
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::Open(weights_path);
  if (!file.ok()) {
    // The reader names the full path; the caller knows the directory.
    absl::string_view why = file.status().message();
    absl::ConsumePrefix(&why, weights_path);
    absl::ConsumePrefix(&why, ":");
    return Bad(kAdapterWeightsFile,
               absl::StrCat("not a valid safetensors file (",
                            absl::StripLeadingAsciiWhitespace(why), ")"));
  }
  LORAD_RETURN_IF_ERROR(adapter.spec.Validate(base, (*file)->tensors()));
  adapter.weights = *std::move(file);
  adapter.size_bytes =
      static_cast<int64_t>(text.size()) +
      static_cast<int64_t>(std::filesystem::file_size(weights_path, ec));
  return adapter;
}

}  // namespace lorad::model
