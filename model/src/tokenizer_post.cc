// Reading tokenizer.json's post_processor: the ids a single sequence gets
// before and after it (TemplateProcessing, ByteLevel, RobertaProcessing,
// BertProcessing, Sequence).
#include "absl/strings/str_cat.h"
#include "lorad/common/status_macros.h"
#include "tokenizer_internal.h"

namespace lorad::model::tokenizer_internal {
namespace {

using nlohmann::json;

// The ids of one special token in a post-processor: [token, id] (Roberta
// and Bert's cls/sep).
absl::StatusOr<int32_t> PairId(const json& j, const char* key,
                               const std::string& where,
                               const std::string& section) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array() || it->size() != 2 ||
      !(*it)[0].is_string() || !(*it)[1].is_number_integer() ||
      (*it)[1].get<int64_t>() < 0 || (*it)[1].get<int64_t>() > INT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": post_processor ",
                                                   section, ": field \"", key,
                                                   "\" is not [token, id]"));
  }
  return (*it)[1].get<int32_t>();
}

absl::Status ParseTemplate(const json& j, const std::string& where,
                           std::vector<int32_t>* prefix,
                           std::vector<int32_t>* suffix) {
  const auto error = [&](const auto&... args) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": post_processor TemplateProcessing: ", args...));
  };
  auto single = j.find("single");
  if (single == j.end() || !single->is_array()) {
    return error("field \"single\" missing or not an array");
  }
  auto specials = j.find("special_tokens");
  if (specials != j.end() && !specials->is_null() && !specials->is_object()) {
    return error("special_tokens is not an object");
  }
  bool seen_sequence = false;
  for (const json& item : *single) {
    if (!item.is_object() || item.size() != 1) {
      return error("single item ", item.dump(), " is not one object");
    }
    if (auto seq = item.find("Sequence"); seq != item.end()) {
      if (!seq->is_object() || seq->value("id", "") != "A" || seen_sequence) {
        return error("single must hold the sequence A exactly once, not ",
                     item.dump());
      }
      seen_sequence = true;
      continue;
    }
    auto special = item.find("SpecialToken");
    if (special == item.end() || !special->is_object() ||
        !special->contains("id") || !(*special)["id"].is_string()) {
      return error("single item ", item.dump(),
                   " is neither Sequence nor SpecialToken");
    }
    const std::string name = (*special)["id"].get<std::string>();
    if (specials == j.end() || !specials->is_object() ||
        !specials->contains(name)) {
      return error("special token \"", name, "\" is not in special_tokens");
    }
    const json& entry = (*specials)[name];
    auto ids = entry.is_object() ? entry.find("ids") : entry.end();
    if (!entry.is_object() || ids == entry.end() || !ids->is_array()) {
      return error("special_tokens[\"", name, "\"] has no ids array");
    }
    std::vector<int32_t>* out = seen_sequence ? suffix : prefix;
    for (const json& id : *ids) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
          id.get<int64_t>() > INT32_MAX) {
        return error("special_tokens[\"", name, "\"] id ", id.dump(),
                     " is not a non-negative 32-bit integer");
      }
      out->push_back(id.get<int32_t>());
    }
  }
  if (!seen_sequence) return error("single has no Sequence A");
  return absl::OkStatus();
}

}  // namespace

void ReadTrimOffsets(const json& j, bool* trim, bool* add_prefix_space) {
  if (!j.is_object()) return;
  const std::string type = j.value("type", "");
  if (type == "Sequence") {
    auto list = j.find("processors");
    if (list == j.end() || !list->is_array()) return;
    for (const json& item : *list)
      ReadTrimOffsets(item, trim, add_prefix_space);
    return;
  }
  if (type != "ByteLevel" && type != "RobertaProcessing") return;
  // Both default to true in HF tokenizers.
  const auto flag = [&](const char* key) {
    auto it = j.find(key);
    return it == j.end() || !it->is_boolean() || it->get<bool>();
  };
  if (flag("trim_offsets")) {
    *trim = true;
    *add_prefix_space = flag("add_prefix_space");
  }
}

absl::Status ParsePostProcessor(const json& j, std::string_view where_view,
                                std::vector<int32_t>* prefix,
                                std::vector<int32_t>* suffix) {
  if (j.is_null()) return absl::OkStatus();
  const std::string where(where_view);
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": post_processor is not an object with a string \"type\""));
  }
  const std::string type = j["type"].get<std::string>();
  if (type == "ByteLevel") return absl::OkStatus();  // offsets only
  if (type == "Sequence") {
    auto list = j.find("processors");
    if (list == j.end() || !list->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": post_processor Sequence without a \"processors\" array"));
    }
    // Each processor wraps what the previous ones made.
    for (const json& item : *list) {
      std::vector<int32_t> before, after;
      LORAD_RETURN_IF_ERROR(ParsePostProcessor(item, where, &before, &after));
      prefix->insert(prefix->begin(), before.begin(), before.end());
      suffix->insert(suffix->end(), after.begin(), after.end());
    }
    return absl::OkStatus();
  }
  if (type == "TemplateProcessing") {
    std::vector<int32_t> before, after;
    LORAD_RETURN_IF_ERROR(ParseTemplate(j, where, &before, &after));
    prefix->insert(prefix->begin(), before.begin(), before.end());
    suffix->insert(suffix->end(), after.begin(), after.end());
    return absl::OkStatus();
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    LORAD_ASSIGN_OR_RETURN(int32_t cls, PairId(j, "cls", where, type));
    LORAD_ASSIGN_OR_RETURN(int32_t sep, PairId(j, "sep", where, type));
    prefix->insert(prefix->begin(), cls);
    suffix->push_back(sep);
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(where, ": post_processor type \"", type,
                   "\" is not supported (TemplateProcessing, ByteLevel, "
                   "RobertaProcessing, BertProcessing and Sequence are)"));
}

}  // namespace lorad::model::tokenizer_internal
