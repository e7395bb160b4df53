#include "serving/adapter_check.h"

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "lorad/common/files.h"
#include "lorad/common/status_macros.h"
#include "lorad/model/safetensors.h"
#include "lorad/model/tiny_model.h"
#include "nlohmann/json.hpp"

namespace lorad::server {
namespace {

constexpr int kMaxRank = 1024;
constexpr char kPrefix[] = "base_model.model.model.layers.";

struct Linear {
  const char* name;
  const char* path;
  int64_t in = 0;
  int64_t out = 0;
};

std::vector<Linear> BlockLinears(const model::ModelConfig& c) {
  const int64_t h = c.hidden_size, q = c.num_attention_heads * c.head_dim,
                kv = c.num_key_value_heads * c.head_dim,
                inter = c.intermediate_size;
  return {{"q_proj", "self_attn.q_proj", h, q},
          {"k_proj", "self_attn.k_proj", h, kv},
          {"v_proj", "self_attn.v_proj", h, kv},
          {"o_proj", "self_attn.o_proj", q, h},
          {"gate_proj", "mlp.gate_proj", h, inter},
          {"up_proj", "mlp.up_proj", h, inter},
          {"down_proj", "mlp.down_proj", inter, h}};
}

std::string ModuleNames(const std::vector<Linear>& linears) {
  return absl::StrJoin(linears, ", ", [](std::string* out, const Linear& l) {
    out->append(l.name);
  });
}

absl::Status Bad(absl::string_view file, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(file, ": ", what));
}

absl::StatusOr<AdapterFacts> ReadConfig(const std::string& dir,
                                        const std::vector<Linear>& linears) {
  absl::StatusOr<std::string> text =
      ReadFile(absl::StrCat(dir, "/", kAdapterConfigFile));
  if (!text.ok()) return Bad(kAdapterConfigFile, "missing");
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Bad(kAdapterConfigFile, "not a JSON object");
  }
  if (j.contains("peft_type") &&
      (!j["peft_type"].is_string() || j["peft_type"] != "LORA")) {
    return Bad(kAdapterConfigFile,
               absl::StrCat("peft_type must be \"LORA\", got ",
                            j["peft_type"].dump()));
  }
  AdapterFacts facts;
  if (!j.contains("r") || !j["r"].is_number_integer() ||
      j["r"].get<int64_t>() < 1 || j["r"].get<int64_t>() > kMaxRank) {
    return Bad(kAdapterConfigFile,
               absl::StrCat("key \"r\" must be an integer in [1, ", kMaxRank,
                            "], got ", j.value("r", nlohmann::json()).dump()));
  }
  facts.rank = j["r"].get<int32_t>();
  facts.alpha = facts.rank;
  if (j.contains("lora_alpha")) {
    if (!j["lora_alpha"].is_number() || !(j["lora_alpha"].get<double>() > 0)) {
      return Bad(kAdapterConfigFile,
                 absl::StrCat("key \"lora_alpha\" must be a number > 0, got ",
                              j["lora_alpha"].dump()));
    }
    facts.alpha = j["lora_alpha"].get<double>();
  }
  if (j.contains("base_model_name_or_path") &&
      j["base_model_name_or_path"].is_string()) {
    facts.base_model_name_or_path = j["base_model_name_or_path"];
  }
  std::set<std::string> targets;
  const nlohmann::json modules = j.value("target_modules", nlohmann::json());
  if (modules.is_string() && modules == "all-linear") {
    for (const Linear& l : linears) targets.insert(l.name);
  } else if (modules.is_array() && !modules.empty()) {
    for (const nlohmann::json& m : modules) {
      bool known = false;
      for (const Linear& l : linears) known |= m.is_string() && m == l.name;
      if (!known) {
        return Bad(
            kAdapterConfigFile,
            absl::StrCat("key \"target_modules\": unknown module ", m.dump(),
                         " (the base model has ", ModuleNames(linears), ")"));
      }
      targets.insert(m.get<std::string>());
    }
  } else {
    return Bad(kAdapterConfigFile,
               absl::StrCat("key \"target_modules\" must be a non-empty list "
                            "of module names, got ",
                            modules.dump()));
  }
  facts.target_modules.assign(targets.begin(), targets.end());
  return facts;
}

// "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight" (PEFT may
// keep ".default" before ".weight") -> layer 3, q_proj, 'A'.
struct TensorKey {
  int64_t layer = -1;
  const Linear* linear = nullptr;
  char half = 0;
};

absl::StatusOr<TensorKey> ParseKey(absl::string_view name,
                                   const std::vector<Linear>& linears,
                                   int64_t num_layers) {
  absl::string_view rest = name;
  auto bad = [&](absl::string_view why) {
    return Bad(kAdapterWeightsFile, absl::StrCat("key \"", name, "\": ", why));
  };
  if (!absl::ConsumePrefix(&rest, kPrefix)) {
    return bad("not a LoRA weight of a decoder block");
  }
  size_t dot = rest.find('.');
  TensorKey key;
  if (dot == absl::string_view::npos ||
      !absl::SimpleAtoi(rest.substr(0, dot), &key.layer)) {
    return bad("no layer number");
  }
  rest.remove_prefix(dot + 1);
  if (key.layer < 0 || key.layer >= num_layers) {
    return bad(absl::StrCat("layer ", key.layer,
                            " does not exist (the base model has ", num_layers,
                            " layers)"));
  }
  if (!absl::ConsumeSuffix(&rest, ".weight")) return bad("not a .weight");
  absl::ConsumeSuffix(&rest, ".default");
  if (absl::ConsumeSuffix(&rest, ".lora_A")) {
    key.half = 'A';
  } else if (absl::ConsumeSuffix(&rest, ".lora_B")) {
    key.half = 'B';
  } else {
    return bad("neither lora_A nor lora_B");
  }
  for (const Linear& l : linears) {
    if (rest == l.path) key.linear = &l;
  }
  if (key.linear == nullptr) {
    return bad(absl::StrCat("module \"", rest,
                            "\" does not exist in the base model (it has ",
                            ModuleNames(linears), ")"));
  }
  return key;
}

}  // namespace

absl::StatusOr<model::ModelConfig> BaseModelConfig(const std::string& model) {
  if (model.empty() || model == model::kTinyModelName) {
    return model::TinyModelConfig();
  }
  return model::ModelConfig::FromDir(model);
}

absl::StatusOr<AdapterFacts> CheckPeftAdapter(const std::string& dir,
                                              const model::ModelConfig& base) {
  const std::vector<Linear> linears = BlockLinears(base);
  LORAD_ASSIGN_OR_RETURN(AdapterFacts facts, ReadConfig(dir, linears));
  const std::string weights_path = absl::StrCat(dir, "/", kAdapterWeightsFile);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(weights_path, ec)) {
    return Bad(kAdapterWeightsFile, "missing");
  }
  absl::StatusOr<std::unique_ptr<model::SafetensorsFile>> file =
      model::SafetensorsFile::Open(weights_path);
  if (!file.ok()) {
    // The reader names the full server path; the client knows the file name.
    std::string why(file.status().message());
    if (absl::StartsWith(why, weights_path)) {
      why = why.substr(weights_path.size());
      absl::string_view trimmed = why;
      absl::ConsumePrefix(&trimmed, ":");
      why = std::string(absl::StripLeadingAsciiWhitespace(trimmed));
    }
    return Bad(kAdapterWeightsFile,
               absl::StrCat("not a valid safetensors file (", why, ")"));
  }
  const std::set<std::string> targets(facts.target_modules.begin(),
                                      facts.target_modules.end());
  std::map<std::pair<int64_t, std::string>, int> halves;
  for (const model::TensorInfo& t : (*file)->tensors()) {
    LORAD_ASSIGN_OR_RETURN(TensorKey key,
                           ParseKey(t.name, linears, base.num_hidden_layers));
    const Linear& l = *key.linear;
    if (!targets.count(l.name)) {
      return Bad(kAdapterWeightsFile,
                 absl::StrCat("key \"", t.name, "\": module ", l.name,
                              " is not in adapter_config.json's "
                              "target_modules"));
    }
    if (t.dtype != model::DType::kF32 && t.dtype != model::DType::kF16 &&
        t.dtype != model::DType::kBF16) {
      return Bad(kAdapterWeightsFile,
                 absl::StrCat("key \"", t.name, "\": dtype ",
                              std::string(model::DTypeName(t.dtype)),
                              " (want F32, F16 or BF16)"));
    }
    const std::vector<int64_t> want =
        key.half == 'A' ? std::vector<int64_t>{facts.rank, l.in}
                        : std::vector<int64_t>{l.out, facts.rank};
    if (t.shape != want) {
      return Bad(
          kAdapterWeightsFile,
          absl::StrCat("key \"", t.name, "\": shape [",
                       absl::StrJoin(t.shape, ", "), "] does not fit ",
                       "the base model (want [", absl::StrJoin(want, ", "),
                       "] for r=", facts.rank, ")"));
    }
    halves[{key.layer, l.path}] |= key.half == 'A' ? 1 : 2;
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
  for (const char* f : {kAdapterConfigFile, kAdapterWeightsFile}) {
    facts.size_bytes += static_cast<int64_t>(
        std::filesystem::file_size(absl::StrCat(dir, "/", f), ec));
  }
  return facts;
}

}  // namespace lorad::server
