// Tokenizer: reading tokenizer.json and the public entry points.
#include "lorad/model/tokenizer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "lorad/common/bounded_json.h"
#include "lorad/common/files.h"
#include "lorad/common/status_macros.h"
#include "nlohmann/json.hpp"
#include "tokenizer_internal.h"

namespace lorad::model {
namespace tokenizer_internal {

namespace {

// Real tokenizer.json files reach tens of MiB (a 256k vocabulary and its
// merges) but nest only a few levels.
constexpr JsonLimits kTokenizerJsonLimits{size_t{256} << 20, 32,
                                          int64_t{64} << 20};

bool MapsToItself(int byte) {
  return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) ||
         (byte >= 0xAE && byte <= 0xFF);
}

const std::array<char32_t, 256>& ByteTable() {
  static const auto* const kTable = [] {
    auto* table = new std::array<char32_t, 256>();
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) (*table)[b] = MapsToItself(b) ? b : next++;
    return table;
  }();
  return *kTable;
}

}  // namespace

char32_t ByteToUnicode(uint8_t byte) { return ByteTable()[byte]; }

std::optional<uint8_t> UnicodeToByte(char32_t cp) {
  if (cp < 256) {
    if (MapsToItself(static_cast<int>(cp))) return static_cast<uint8_t>(cp);
    return std::nullopt;
  }
  const auto& table = ByteTable();
  for (int b = 0; b < 256; ++b) {
    if (table[b] == cp) return static_cast<uint8_t>(b);
  }
  return std::nullopt;
}

}  // namespace tokenizer_internal

namespace {

using nlohmann::json;
using tokenizer_internal::AddedToken;
using tokenizer_internal::PreTokenizerStep;
using tokenizer_internal::SplitBehavior;
using tokenizer_internal::TokenizerModel;

// Reads tokenizer.json sections into a TokenizerModel; every failure names
// the file and the section.
class Parser {
 public:
  Parser(std::string_view where, TokenizerModel* model)
      : where_(where), model_(model) {}

  absl::Status Parse(const json& root) {
    if (!root.is_object()) return Error("top level is not a JSON object");
    auto model = root.find("model");
    if (model == root.end() || !model->is_object()) {
      return Error("field \"model\" missing or not an object");
    }
    LORAD_RETURN_IF_ERROR(ParseModel(*model));
    if (auto it = root.find("normalizer"); it != root.end()) {
      LORAD_RETURN_IF_ERROR(ParseNormalizer(*it));
    }
    if (auto it = root.find("pre_tokenizer"); it != root.end()) {
      LORAD_RETURN_IF_ERROR(ParsePreTokenizer(*it));
    }
    if (auto it = root.find("decoder"); it != root.end()) {
      LORAD_RETURN_IF_ERROR(ParseDecoder(*it));
    }
    if (auto it = root.find("added_tokens"); it != root.end()) {
      LORAD_RETURN_IF_ERROR(ParseAddedTokens(*it));
    }
    return absl::OkStatus();
  }

 private:
  template <typename... Args>
  absl::Status Error(const Args&... args) const {
    return absl::InvalidArgumentError(absl::StrCat(where_, ": ", args...));
  }

  // A boolean field; `fallback` when absent or null.
  absl::StatusOr<bool> Bool(const json& j, const char* key, bool fallback,
                            const std::string& section) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) {
      return Error(section, ": field \"", key, "\" is not a boolean");
    }
    return it->get<bool>();
  }

  // The "type" of a component object, or an error.
  absl::StatusOr<std::string> Type(const json& j,
                                   const std::string& section) const {
    if (!j.is_object()) return Error(section, " is not an object");
    auto it = j.find("type");
    if (it == j.end() || !it->is_string()) {
      return Error(section, ": field \"type\" missing or not a string");
    }
    return it->get<std::string>();
  }

  absl::Status ParseModel(const json& j) {
    auto type = j.find("type");
    if (type != j.end() && (!type->is_string() || *type != "BPE")) {
      return Error("model type ", type->dump(),
                   " is not supported (only BPE is)");
    }
    auto vocab = j.find("vocab");
    if (vocab == j.end() || !vocab->is_object()) {
      return Error("model: field \"vocab\" missing or not an object");
    }
    for (const auto& [token, id] : vocab->items()) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
          id.get<int64_t>() > INT32_MAX) {
        return Error("model.vocab: id of ", json(token).dump(),
                     " is not a non-negative 32-bit integer");
      }
      const int32_t value = id.get<int32_t>();
      model_->vocab[token] = value;
      model_->id_to_token[value] = token;
      model_->vocab_size = std::max<int64_t>(model_->vocab_size, value + 1);
    }
    LORAD_ASSIGN_OR_RETURN(model_->ignore_merges,
                           Bool(j, "ignore_merges", false, "model"));
    LORAD_ASSIGN_OR_RETURN(model_->fuse_unk,
                           Bool(j, "fuse_unk", false, "model"));
    LORAD_ASSIGN_OR_RETURN(bool byte_fallback,
                           Bool(j, "byte_fallback", false, "model"));
    if (byte_fallback) return Error("model: byte_fallback is not supported");
    for (const char* key :
         {"continuing_subword_prefix", "end_of_word_suffix"}) {
      auto it = j.find(key);
      if (it != j.end() && !it->is_null() &&
          !(it->is_string() && it->get<std::string>().empty())) {
        return Error("model: ", key, " is not supported");
      }
    }
    if (auto it = j.find("unk_token"); it != j.end() && !it->is_null()) {
      if (!it->is_string()) return Error("model: unk_token is not a string");
      auto unk = model_->vocab.find(it->get<std::string>());
      if (unk == model_->vocab.end()) {
        return Error("model: unk_token ", it->dump(), " is not in the vocab");
      }
      model_->unk_id = unk->second;
    }
    auto merges = j.find("merges");
    if (merges == j.end() || merges->is_null()) return absl::OkStatus();
    if (!merges->is_array()) return Error("model: merges is not an array");
    int32_t rank = 0;
    for (const json& merge : *merges) {
      std::string left, right;
      if (merge.is_string()) {
        std::vector<std::string> parts =
            absl::StrSplit(merge.get<std::string>(), ' ');
        if (parts.size() != 2) {
          return Error("model.merges[", rank, "]: ", merge.dump(),
                       " is not two tokens separated by one space");
        }
        left = std::move(parts[0]);
        right = std::move(parts[1]);
      } else if (merge.is_array() && merge.size() == 2 &&
                 merge[0].is_string() && merge[1].is_string()) {
        left = merge[0].get<std::string>();
        right = merge[1].get<std::string>();
      } else {
        return Error("model.merges[", rank, "]: ", merge.dump(),
                     " is neither \"a b\" nor [\"a\", \"b\"]");
      }
      auto a = model_->vocab.find(left);
      auto b = model_->vocab.find(right);
      auto merged = model_->vocab.find(left + right);
      if (a == model_->vocab.end() || b == model_->vocab.end() ||
          merged == model_->vocab.end()) {
        return Error("model.merges[", rank, "]: ", merge.dump(),
                     " uses or makes a token that is not in the vocab");
      }
      // A pair listed twice keeps its first (best) rank.
      model_->merges.try_emplace(
          tokenizer_internal::PairKey(a->second, b->second),
          tokenizer_internal::Merge{rank, merged->second});
      ++rank;
    }
    return absl::OkStatus();
  }

  absl::Status ParseNormalizer(const json& j) {
    if (j.is_null()) return absl::OkStatus();
    LORAD_ASSIGN_OR_RETURN(std::string type, Type(j, "normalizer"));
    if (type == "NFC") {
      model_->nfc = true;
      return absl::OkStatus();
    }
    if (type == "Sequence") {
      auto list = j.find("normalizers");
      if (list == j.end() || !list->is_array()) {
        return Error("normalizer: Sequence without a \"normalizers\" array");
      }
      for (const json& item : *list) {
        LORAD_RETURN_IF_ERROR(ParseNormalizer(item));
      }
      return absl::OkStatus();
    }
    return Error("normalizer type \"", type,
                 "\" is not supported (NFC and Sequence are)");
  }

  absl::Status ParsePreTokenizer(const json& j) {
    if (j.is_null()) return absl::OkStatus();
    LORAD_ASSIGN_OR_RETURN(std::string type, Type(j, "pre_tokenizer"));
    PreTokenizerStep step;
    if (type == "Sequence") {
      auto list = j.find("pretokenizers");
      if (list == j.end() || !list->is_array()) {
        return Error(
            "pre_tokenizer: Sequence without a \"pretokenizers\" array");
      }
      for (const json& item : *list) {
        LORAD_RETURN_IF_ERROR(ParsePreTokenizer(item));
      }
      return absl::OkStatus();
    }
    if (type == "ByteLevel") {
      step.kind = PreTokenizerStep::Kind::kByteLevel;
      LORAD_ASSIGN_OR_RETURN(
          step.add_prefix_space,
          Bool(j, "add_prefix_space", true, "pre_tokenizer ByteLevel"));
      LORAD_ASSIGN_OR_RETURN(step.use_regex, Bool(j, "use_regex", true,
                                                  "pre_tokenizer ByteLevel"));
      model_->pre_tokenizer.push_back(std::move(step));
      return absl::OkStatus();
    }
    if (type != "Split") {
      return Error("pre_tokenizer type \"", type,
                   "\" is not supported (ByteLevel, Split and Sequence are)");
    }
    step.kind = PreTokenizerStep::Kind::kSplit;
    LORAD_ASSIGN_OR_RETURN(bool invert,
                           Bool(j, "invert", false, "pre_tokenizer Split"));
    if (invert) return Error("pre_tokenizer Split: invert is not supported");
    auto pattern = j.find("pattern");
    if (pattern == j.end() || !pattern->is_object()) {
      return Error("pre_tokenizer Split: field \"pattern\" missing");
    }
    if (auto regex = pattern->find("Regex");
        regex != pattern->end() && regex->is_string()) {
      step.pattern =
          tokenizer_internal::RecognizeSplitPattern(regex->get<std::string>());
      if (!step.pattern.has_value()) {
        return Error("pre_tokenizer Split: regex ", regex->dump(),
                     " is not supported (only the GPT-2, Llama-3 and Qwen2 "
                     "patterns are)");
      }
    } else if (auto literal = pattern->find("String");
               literal != pattern->end() && literal->is_string() &&
               !literal->get<std::string>().empty()) {
      step.literal = literal->get<std::string>();
    } else {
      return Error("pre_tokenizer Split: pattern ", pattern->dump(),
                   " is neither a Regex nor a non-empty String");
    }
    auto behavior = j.find("behavior");
    const std::string name = behavior != j.end() && behavior->is_string()
                                 ? behavior->get<std::string>()
                                 : "";
    static constexpr std::pair<std::string_view, SplitBehavior> kBehaviors[] = {
        {"Removed", SplitBehavior::kRemoved},
        {"Isolated", SplitBehavior::kIsolated},
        {"MergedWithPrevious", SplitBehavior::kMergedWithPrevious},
        {"MergedWithNext", SplitBehavior::kMergedWithNext},
        {"Contiguous", SplitBehavior::kContiguous},
    };
    auto known = std::find_if(std::begin(kBehaviors), std::end(kBehaviors),
                              [&](const auto& b) { return b.first == name; });
    if (known == std::end(kBehaviors)) {
      return Error("pre_tokenizer Split: behavior \"", name,
                   "\" is not supported");
    }
    step.behavior = known->second;
    model_->pre_tokenizer.push_back(std::move(step));
    return absl::OkStatus();
  }

  absl::Status ParseDecoder(const json& j) {
    if (j.is_null()) return absl::OkStatus();
    LORAD_ASSIGN_OR_RETURN(std::string type, Type(j, "decoder"));
    if (type != "ByteLevel") {
      return Error("decoder type \"", type,
                   "\" is not supported (ByteLevel is)");
    }
    model_->byte_level_decoder = true;
    return absl::OkStatus();
  }

  absl::Status ParseAddedTokens(const json& j) {
    if (j.is_null()) return absl::OkStatus();
    if (!j.is_array()) return Error("added_tokens is not an array");
    for (const json& item : j) {
      const std::string section =
          absl::StrCat("added_tokens[", model_->added.size(), "]");
      if (!item.is_object()) return Error(section, " is not an object");
      auto id = item.find("id");
      auto content = item.find("content");
      if (id == item.end() || !id->is_number_integer() ||
          id->get<int64_t>() < 0 || id->get<int64_t>() > INT32_MAX) {
        return Error(section, ": id missing or not a non-negative integer");
      }
      if (content == item.end() || !content->is_string() ||
          content->get<std::string>().empty()) {
        return Error(section, ": content missing or empty");
      }
      AddedToken token;
      token.id = id->get<int32_t>();
      token.content = content->get<std::string>();
      LORAD_ASSIGN_OR_RETURN(token.special,
                             Bool(item, "special", false, section));
      LORAD_ASSIGN_OR_RETURN(token.lstrip,
                             Bool(item, "lstrip", false, section));
      LORAD_ASSIGN_OR_RETURN(token.rstrip,
                             Bool(item, "rstrip", false, section));
      LORAD_ASSIGN_OR_RETURN(token.single_word,
                             Bool(item, "single_word", false, section));
      const int32_t index = static_cast<int32_t>(model_->added.size());
      model_->added_by_content[token.content] = index;
      model_->added_by_id[token.id] = index;
      model_->vocab_size =
          std::max<int64_t>(model_->vocab_size, int64_t{token.id} + 1);
      model_->added.push_back(std::move(token));
    }
    model_->added_by_first_byte.assign(256, {});
    for (int32_t i = 0; i < static_cast<int32_t>(model_->added.size()); ++i) {
      const std::string& content = model_->added[i].content;
      model_->added_by_first_byte[static_cast<unsigned char>(content[0])]
          .push_back(i);
    }
    for (auto& list : model_->added_by_first_byte) {
      std::stable_sort(list.begin(), list.end(), [&](int32_t a, int32_t b) {
        return model_->added[a].content.size() >
               model_->added[b].content.size();
      });
    }
    return absl::OkStatus();
  }

  std::string where_;
  TokenizerModel* model_;
};

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(
    std::string_view text, std::string_view where) {
  absl::StatusOr<json> parsed =
      ParseBoundedJson(text, tokenizer_internal::kTokenizerJsonLimits);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(where), ": ", parsed.status().message()));
  }
  const json& root = *parsed;
  auto impl = std::make_unique<Impl>();
  try {
    LORAD_RETURN_IF_ERROR(Parser(where, &impl->model).Parse(root));
  } catch (const json::exception& e) {
    // The parser checks types before reading; this is a safety net.
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(where), ": ", e.what()));
  }
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(
    const std::string& path) {
  LORAD_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return FromJson(text, path);
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text) const {
  return impl_->Encode(text);
}

std::string Tokenizer::Decode(const std::vector<int32_t>& ids,
                              bool skip_special_tokens) const {
  return impl_->Decode(ids, skip_special_tokens);
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  const TokenizerModel& model = impl_->model;
  if (auto it = model.added_by_content.find(tokenizer_internal::AsAbsl(token));
      it != model.added_by_content.end()) {
    return model.added[it->second].id;
  }
  if (auto it = model.vocab.find(tokenizer_internal::AsAbsl(token));
      it != model.vocab.end()) {
    return it->second;
  }
  return std::nullopt;
}

int64_t Tokenizer::vocab_size() const { return impl_->model.vocab_size; }

bool Tokenizer::IsSpecial(int32_t id) const {
  const TokenizerModel& model = impl_->model;
  auto it = model.added_by_id.find(id);
  return it != model.added_by_id.end() && model.added[it->second].special;
}

std::string MakeByteLevelTokenizerJson() {
  using ordered = nlohmann::ordered_json;
  const char* const kSpecials[] = {"<|begin_of_text|>", "<|end_of_text|>",
                                   "<|pad|>"};
  ordered vocab = ordered::object();
  for (int b = 0; b < 256; ++b) {
    std::string token;
    tokenizer_internal::AppendUtf8(
        tokenizer_internal::ByteToUnicode(static_cast<uint8_t>(b)), &token);
    vocab[token] = b;
  }
  ordered added = ordered::array();
  int id = 256;
  for (const char* special : kSpecials) {
    vocab[special] = id;
    added.push_back({{"id", id},
                     {"content", special},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
    ++id;
  }
  const ordered byte_level = {{"type", "ByteLevel"},
                              {"add_prefix_space", false},
                              {"trim_offsets", true},
                              {"use_regex", true}};
  ordered root = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", byte_level},
      {"post_processor", nullptr},
      {"decoder", byte_level},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", ordered::array()}}},
  };
  return root.dump(2);
}

}  // namespace lorad::model
