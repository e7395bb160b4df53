// JSON Schema (the subset json_constraint.h lists) to a Grammar. Keywords
// that would constrain values and are not in the subset are refused, never
// ignored; every error names the keyword's JSON pointer.
#include <algorithm>
#include <bitset>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "json_grammar.h"
#include "lorad/common/bounded_json.h"
#include "nlohmann/json.hpp"

namespace lorad::model::json_internal {
namespace {

using Json = nlohmann::ordered_json;

// JSON kinds a value may have, for oneOf's disjointness test.
enum KindBit : uint32_t {
  kObjectBit = 1,
  kArrayBit = 2,
  kStringBit = 4,
  kNumberBit = 8,
  kBoolBit = 16,
  kNullBit = 32,
  kAllBits = 63,
};

// Keywords that only annotate, and those the subset supports.
const absl::flat_hash_set<std::string>& Annotations() {
  static const auto* const kSet = new absl::flat_hash_set<std::string>{
      "description", "title", "default",    "$schema",    "format",
      "examples",    "$id",   "$comment",   "deprecated", "readOnly",
      "writeOnly",   "$defs", "definitions"};
  return *kSet;
}
const absl::flat_hash_set<std::string>& Supported() {
  static const auto* const kSet = new absl::flat_hash_set<std::string>{
      "type",  "properties", "required", "additionalProperties",
      "items", "minItems",   "maxItems", "enum",
      "const", "anyOf",      "oneOf",    "$ref"};
  return *kSet;
}

std::string Escape(std::string_view token) {
  std::string out;
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Where(const std::string& pointer) {
  return pointer.empty() ? "/" : pointer;
}

absl::Status Error(const std::string& pointer, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("json_schema at ", Where(pointer), ": ", std::string(what)));
}

uint32_t KindOf(const Json& value) {
  if (value.is_object()) return kObjectBit;
  if (value.is_array()) return kArrayBit;
  if (value.is_string()) return kStringBit;
  if (value.is_number()) return kNumberBit;
  if (value.is_boolean()) return kBoolBit;
  return kNullBit;
}

bool TypeAdmits(const std::string& type, const Json& value) {
  if (type == "integer") {
    return value.is_number_integer() ||
           (value.is_number_float() &&
            std::trunc(value.get<double>()) == value.get<double>());
  }
  static const std::pair<const char*, uint32_t> kTypes[] = {
      {"object", kObjectBit}, {"array", kArrayBit},  {"string", kStringBit},
      {"number", kNumberBit}, {"boolean", kBoolBit}, {"null", kNullBit}};
  for (const auto& [name, bit] : kTypes) {
    if (type == name) return (KindOf(value) & bit) != 0;
  }
  return false;
}

class Compiler {
 public:
  Compiler(const Json& root, const std::bitset<256>& single_byte)
      : root_(root), single_byte_(single_byte) {
    grammar_ = AnyObjectGrammar();
    kinds_[grammar_.root] = kObjectBit;
    kinds_[grammar_.any_literal] = kBoolBit | kNullBit;
  }

  absl::StatusOr<Grammar> Run() {
    absl::StatusOr<int32_t> root = Compile(root_, "", 0);
    if (!root.ok()) return root.status();
    grammar_.root = *root;
    const int64_t shortest = grammar_.nodes[*root].min_top;
    if (shortest > kMaxMinBytes) {
      return Error(
          "", absl::StrCat("its shortest output is ", shortest,
                           " bytes, more than the ", kMaxMinBytes, " allowed"));
    }
    ComputeMaxJump(grammar_);
    return std::move(grammar_);
  }

 private:
  static constexpr int kMaxDepth = 64;

  int32_t Add(Node node, uint32_t kinds) {
    grammar_.nodes.push_back(std::move(node));
    const auto index = static_cast<int32_t>(grammar_.nodes.size() - 1);
    kinds_[index] = kinds;
    ComputeNodeCosts(grammar_, index);
    return index;
  }

  absl::Status CheckBytes(std::string_view text, const std::string& pointer) {
    for (char c : text) {
      if (!single_byte_[static_cast<uint8_t>(c)]) {
        return Error(pointer,
                     absl::StrFormat("the tokenizer has no token for the "
                                     "single byte 0x%02X, which a key or "
                                     "value here needs",
                                     static_cast<uint8_t>(c)));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int32_t> Literal(const std::vector<Json>& values,
                                  const std::string& pointer) {
    Node node;
    node.kind = NodeKind::kLiteral;
    uint32_t kinds = 0;
    for (const Json& value : values) {
      const std::string text = value.dump();
      if (absl::Status s = CheckBytes(text, pointer); !s.ok()) return s;
      node.literal.Insert(text);
      kinds |= KindOf(value);
    }
    const int32_t index = Add(std::move(node), kinds);
    literals_[index] = values;
    return index;
  }

  absl::StatusOr<int32_t> Compile(const Json& schema,
                                  const std::string& pointer, int depth) {
    if (depth > kMaxDepth) {
      return Error(pointer, "schemas nest deeper than 64 levels");
    }
    if (schema.is_boolean()) {
      if (schema.get<bool>()) return grammar_.any_node;
      return Error(pointer, "the schema false matches nothing");
    }
    if (!schema.is_object())
      return Error(pointer, "a schema must be an object");
    std::vector<std::string> constraining;
    for (const auto& [key, value] : schema.items()) {
      if (Annotations().contains(key)) continue;
      if (!Supported().contains(key)) {
        return Error(pointer + "/" + Escape(key),
                     absl::StrCat("unsupported keyword \"", key, "\""));
      }
      constraining.push_back(key);
    }
    const auto only = [&](std::string_view keyword) -> absl::Status {
      for (const std::string& other : constraining) {
        if (other != keyword) {
          return Error(
              pointer + "/" + Escape(other),
              absl::StrCat("\"", other, "\" beside \"", std::string(keyword),
                           "\" is not supported"));
        }
      }
      return absl::OkStatus();
    };
    if (schema.contains("$ref")) {
      if (absl::Status s = only("$ref"); !s.ok()) return s;
      return Ref(schema["$ref"], pointer + "/$ref", depth);
    }
    for (const char* keyword : {"anyOf", "oneOf"}) {
      if (!schema.contains(keyword)) continue;
      if (absl::Status s = only(keyword); !s.ok()) return s;
      return Union(schema[keyword], pointer + "/" + keyword, depth,
                   std::string_view(keyword) == "oneOf");
    }
    absl::StatusOr<std::vector<std::string>> types = Types(schema, pointer);
    if (!types.ok()) return types.status();
    if (schema.contains("enum") || schema.contains("const")) {
      return Enum(schema, pointer, *types, constraining);
    }
    if (types->empty()) return grammar_.any_node;
    std::vector<int32_t> branches;
    for (const std::string& type : *types) {
      absl::StatusOr<int32_t> branch = Typed(schema, pointer, type, depth);
      if (!branch.ok()) return branch.status();
      branches.push_back(*branch);
    }
    return Flatten(std::move(branches));
  }

  // The types `schema` allows: its "type", or what its keywords imply
  // (none: any value).
  absl::StatusOr<std::vector<std::string>> Types(const Json& schema,
                                                 const std::string& pointer) {
    std::vector<std::string> types;
    if (!schema.contains("type")) {
      const bool object = schema.contains("properties") ||
                          schema.contains("required") ||
                          schema.contains("additionalProperties");
      const bool array = schema.contains("items") ||
                         schema.contains("minItems") ||
                         schema.contains("maxItems");
      if (object) types.push_back("object");
      if (array) types.push_back("array");
      return types;
    }
    const Json& type = schema["type"];
    std::vector<Json> names;
    if (type.is_array()) {
      names.assign(type.begin(), type.end());
      if (names.empty()) {
        return Error(pointer + "/type", "an empty list of types");
      }
    } else {
      names.push_back(type);
    }
    static const char* const kNames[] = {
        "object", "array", "string", "number", "integer", "boolean", "null"};
    for (size_t i = 0; i < names.size(); ++i) {
      const std::string at =
          pointer + "/type" + (type.is_array() ? absl::StrCat("/", i) : "");
      if (!names[i].is_string() ||
          std::find(std::begin(kNames), std::end(kNames),
                    names[i].get<std::string>()) == std::end(kNames)) {
        return Error(at, absl::StrCat("unknown type ", names[i].dump()));
      }
      const std::string name = names[i].get<std::string>();
      if (std::find(types.begin(), types.end(), name) == types.end()) {
        types.push_back(name);
      }
    }
    // An integer is a number: keep the wider one.
    if (std::find(types.begin(), types.end(), "number") != types.end()) {
      std::erase(types, std::string("integer"));
    }
    return types;
  }

  absl::StatusOr<int32_t> Enum(const Json& schema, const std::string& pointer,
                               const std::vector<std::string>& types,
                               const std::vector<std::string>& constraining) {
    for (const std::string& other : constraining) {
      if (other != "enum" && other != "const" && other != "type") {
        return Error(
            pointer + "/" + Escape(other),
            absl::StrCat("\"", other, "\" beside enum/const is not supported"));
      }
    }
    if (schema.contains("enum") && schema.contains("const")) {
      return Error(pointer + "/const", "both enum and const");
    }
    std::vector<Json> values;
    std::string at = pointer + "/const";
    if (schema.contains("const")) {
      values.push_back(schema["const"]);
    } else {
      at = pointer + "/enum";
      const Json& list = schema["enum"];
      if (!list.is_array() || list.empty()) {
        return Error(at, "enum must be a non-empty list");
      }
      values.assign(list.begin(), list.end());
    }
    if (!types.empty() && schema.contains("type")) {
      std::erase_if(values, [&](const Json& value) {
        return std::none_of(types.begin(), types.end(), [&](const auto& t) {
          return TypeAdmits(t, value);
        });
      });
      if (values.empty()) return Error(at, "no value has the schema's type");
    }
    return Literal(values, at);
  }

  absl::StatusOr<int32_t> Typed(const Json& schema, const std::string& pointer,
                                const std::string& type, int depth) {
    Node node;
    if (type == "string") {
      node.kind = NodeKind::kString;
      return Add(std::move(node), kStringBit);
    }
    if (type == "number" || type == "integer") {
      node.kind = type == "number" ? NodeKind::kNumber : NodeKind::kInteger;
      return Add(std::move(node), kNumberBit);
    }
    if (type == "boolean") return Literal({Json(true), Json(false)}, pointer);
    if (type == "null") return Literal({Json(nullptr)}, pointer);
    if (type == "array") return Array(schema, pointer, depth);
    return Object(schema, pointer, depth);
  }

  absl::StatusOr<int64_t> Count(const Json& schema, const char* keyword,
                                const std::string& pointer, int64_t absent) {
    if (!schema.contains(keyword)) return absent;
    const Json& value = schema[keyword];
    if (!value.is_number_integer() || value.get<int64_t>() < 0) {
      return Error(pointer + "/" + keyword, "must be a non-negative integer");
    }
    return std::min(value.get<int64_t>(), kUnbounded);
  }

  absl::StatusOr<int32_t> Array(const Json& schema, const std::string& pointer,
                                int depth) {
    Node node;
    node.kind = NodeKind::kArray;
    absl::StatusOr<int64_t> min = Count(schema, "minItems", pointer, 0);
    if (!min.ok()) return min.status();
    absl::StatusOr<int64_t> max =
        Count(schema, "maxItems", pointer, kUnbounded);
    if (!max.ok()) return max.status();
    if (*min > *max) return Error(pointer + "/minItems", "above maxItems");
    node.min_items = *min;
    node.max_items = *max;
    node.items = grammar_.any_node;
    if (schema.contains("items")) {
      if (schema["items"].is_array()) {
        return Error(pointer + "/items",
                     "items as a list (a tuple) is not supported");
      }
      absl::StatusOr<int32_t> items =
          Compile(schema["items"], pointer + "/items", depth + 1);
      if (!items.ok()) return items.status();
      node.items = *items;
    }
    return Add(std::move(node), kArrayBit);
  }

  absl::StatusOr<int32_t> Object(const Json& schema, const std::string& pointer,
                                 int depth) {
    if (schema.contains("additionalProperties")) {
      const Json& extra = schema["additionalProperties"];
      if (!extra.is_boolean() && !(extra.is_object() && extra.empty())) {
        return Error(pointer + "/additionalProperties",
                     "only true or false is supported (no schema)");
      }
    }
    const bool closed = schema.contains("additionalProperties") &&
                        schema["additionalProperties"] == Json(false);
    const Json* properties =
        schema.contains("properties") ? &schema["properties"] : nullptr;
    if (properties != nullptr && !properties->is_object()) {
      return Error(pointer + "/properties", "must be an object");
    }
    std::vector<std::string> required;
    if (schema.contains("required")) {
      const Json& list = schema["required"];
      if (!list.is_array()) return Error(pointer + "/required", "not a list");
      for (size_t i = 0; i < list.size(); ++i) {
        const std::string at = absl::StrCat(pointer, "/required/", i);
        if (!list[i].is_string()) return Error(at, "not a string");
        const std::string name = list[i].get<std::string>();
        if (properties == nullptr || !properties->contains(name)) {
          return Error(at, absl::StrCat("required property \"", name,
                                        "\" is not in properties"));
        }
        required.push_back(name);
      }
    }
    if ((properties == nullptr || properties->empty()) && !closed) {
      return grammar_.root;  // AnyObjectGrammar's: any object
    }
    Node node;
    node.kind = NodeKind::kObject;
    if (properties != nullptr) {
      if (properties->size() > static_cast<size_t>(kMaxProperties)) {
        return Error(pointer + "/properties",
                     absl::StrCat("more than ", kMaxProperties, " properties"));
      }
      for (const auto& [name, sub] : properties->items()) {
        const std::string at = pointer + "/properties/" + Escape(name);
        Property p;
        p.key_json = Json(name).dump();
        if (absl::Status s = CheckBytes(p.key_json, at); !s.ok()) return s;
        absl::StatusOr<int32_t> value = Compile(sub, at, depth + 1);
        if (!value.ok()) return value.status();
        p.value = *value;
        p.required =
            std::find(required.begin(), required.end(), name) != required.end();
        node.properties.push_back(std::move(p));
      }
    }
    return Add(std::move(node), kObjectBit);
  }

  absl::StatusOr<int32_t> Union(const Json& list, const std::string& pointer,
                                int depth, bool one_of) {
    if (!list.is_array() || list.empty()) {
      return Error(pointer, "must be a non-empty list of schemas");
    }
    std::vector<int32_t> branches;
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string at = absl::StrCat(pointer, "/", i);
      absl::StatusOr<int32_t> branch = Compile(list[i], at, depth + 1);
      if (!branch.ok()) return branch.status();
      if (one_of) {
        for (size_t j = 0; j < branches.size(); ++j) {
          if (MayOverlap(branches[j], *branch)) {
            return Error(at, absl::StrCat("oneOf branches ", j, " and ", i,
                                          " may both match a value; use "
                                          "anyOf if that is meant"));
          }
        }
      }
      branches.push_back(*branch);
    }
    return Flatten(std::move(branches));
  }

  uint32_t Kinds(int32_t index) const {
    if (index == grammar_.any_node) return kAllBits;
    auto it = kinds_.find(index);
    return it == kinds_.end() ? kAllBits : it->second;
  }

  bool MayOverlap(int32_t a, int32_t b) const {
    if ((Kinds(a) & Kinds(b)) == 0) return false;
    auto la = literals_.find(a);
    auto lb = literals_.find(b);
    if (la == literals_.end() || lb == literals_.end()) return true;
    for (const Json& x : la->second) {
      for (const Json& y : lb->second) {
        if (x == y) return true;
        if (x.is_number() && y.is_number() &&
            x.get<double>() == y.get<double>()) {
          return true;
        }
      }
    }
    return false;
  }

  absl::StatusOr<int32_t> Flatten(std::vector<int32_t> branches) {
    std::vector<int32_t> flat;
    uint32_t kinds = 0;
    for (int32_t branch : branches) {
      kinds |= Kinds(branch);
      const Node& node = grammar_.nodes[branch];
      if (node.kind == NodeKind::kAnyOf) {
        flat.insert(flat.end(), node.branches.begin(), node.branches.end());
      } else {
        flat.push_back(branch);
      }
    }
    if (flat.size() == 1) return flat[0];
    Node node;
    node.kind = NodeKind::kAnyOf;
    node.branches = std::move(flat);
    return Add(std::move(node), kinds);
  }

  absl::StatusOr<int32_t> Ref(const Json& ref, const std::string& pointer,
                              int depth) {
    if (!ref.is_string()) return Error(pointer, "$ref must be a string");
    const std::string target = ref.get<std::string>();
    if (!target.starts_with("#/$defs/") &&
        !target.starts_with("#/definitions/")) {
      return Error(pointer, absl::StrCat("$ref \"", target,
                                         "\" is not supported (only "
                                         "#/$defs/... and #/definitions/...)"));
    }
    if (auto it = refs_.find(target); it != refs_.end()) return it->second;
    if (active_.contains(target)) {
      return Error(pointer, absl::StrCat("recursive $ref \"", target,
                                         "\" is not supported"));
    }
    const Json* at = &root_;
    std::string_view rest = std::string_view(target).substr(2);
    while (!rest.empty()) {
      const size_t slash = rest.find('/');
      std::string token(rest.substr(0, slash));
      rest = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
      std::string name;
      for (size_t i = 0; i < token.size(); ++i) {
        if (token[i] == '~' && i + 1 < token.size() &&
            (token[i + 1] == '0' || token[i + 1] == '1')) {
          name += token[i + 1] == '0' ? '~' : '/';
          ++i;
        } else {
          name += token[i];
        }
      }
      if (!at->is_object() || !at->contains(name)) {
        return Error(pointer,
                     absl::StrCat("$ref \"", target, "\" points at nothing"));
      }
      at = &(*at)[name];
    }
    active_.insert(target);
    absl::StatusOr<int32_t> node = Compile(*at, target.substr(1), depth + 1);
    active_.erase(target);
    if (!node.ok()) return node.status();
    refs_[target] = *node;
    return *node;
  }

  const Json& root_;
  const std::bitset<256>& single_byte_;
  Grammar grammar_;
  absl::flat_hash_map<int32_t, uint32_t> kinds_;
  absl::flat_hash_map<int32_t, std::vector<Json>> literals_;
  absl::flat_hash_map<std::string, int32_t> refs_;
  absl::flat_hash_set<std::string> active_;
};

}  // namespace

absl::StatusOr<Grammar> CompileSchema(std::string_view schema_json,
                                      const std::bitset<256>& single_byte) {
  absl::StatusOr<Json> schema =
      ParseBoundedJson<Json>(schema_json, kSmallJsonLimits);
  if (!schema.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("json_schema: ", schema.status().message()));
  }
  return Compiler(*schema, single_byte).Run();
}

}  // namespace lorad::model::json_internal
