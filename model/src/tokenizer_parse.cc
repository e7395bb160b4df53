// Reading tokenizer.json: the model, normalizer, pre-tokenizer, decoder and
// added tokens (the post-processor is tokenizer_post.cc).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "lorad/common/status_macros.h"
#include "tokenizer_internal.h"

namespace lorad::model::tokenizer_internal {
namespace {

using nlohmann::json;

// The number of code points in valid UTF-8 `text`, or -1 if it is not.
int CountChars(std::string_view text) {
  int count = 0;
  for (size_t pos = 0; pos < text.size(); ++count) {
    size_t length;
    if (!DecodeUtf8(text, pos, &length).has_value()) return -1;
    pos += length;
  }
  return count;
}

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
    if (auto it = root.find("decoder"); it != root.end() && !it->is_null()) {
      model_->decoder.emplace();
      LORAD_RETURN_IF_ERROR(ParseDecoder(*it));
    }
    if (auto it = root.find("added_tokens"); it != root.end()) {
      LORAD_RETURN_IF_ERROR(ParseAddedTokens(*it));
    }
    if (auto it = root.find("post_processor"); it != root.end()) {
      LORAD_RETURN_IF_ERROR(ParsePostProcessor(*it, where_, &model_->prefix_ids,
                                               &model_->suffix_ids));
      ReadTrimOffsets(*it, &model_->trim_offsets,
                      &model_->trim_add_prefix_space);
    }
    IndexAddedTokens(model_);
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

  // A string field that must be present.
  absl::StatusOr<std::string> String(const json& j, const char* key,
                                     const std::string& section) const {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) {
      return Error(section, ": field \"", key, "\" missing or not a string");
    }
    return it->get<std::string>();
  }

  // A field holding exactly one character.
  absl::StatusOr<std::string> Char(const json& j, const char* key,
                                   const std::string& section) const {
    LORAD_ASSIGN_OR_RETURN(std::string text, String(j, key, section));
    if (CountChars(text) != 1) {
      return Error(section, ": field \"", key, "\" is not one character");
    }
    return text;
  }

  // A pattern object {"String": "..."}; Regex patterns are refused.
  absl::StatusOr<std::string> StringPattern(const json& j,
                                            const std::string& section) const {
    auto pattern = j.find("pattern");
    if (pattern == j.end() || !pattern->is_object()) {
      return Error(section, ": field \"pattern\" missing or not an object");
    }
    auto literal = pattern->find("String");
    if (literal == pattern->end() || !literal->is_string() ||
        literal->get<std::string>().empty()) {
      return Error(section, ": pattern ", pattern->dump(),
                   " is not supported (only a non-empty String is)");
    }
    return literal->get<std::string>();
  }

  // The "type" of a component object, or an error.
  absl::StatusOr<std::string> Type(const json& j,
                                   const std::string& section) const {
    if (!j.is_object()) return Error(section, " is not an object");
    return String(j, "type", section);
  }

  // The items of a Sequence component's `key` array.
  absl::StatusOr<const json*> List(const json& j, const char* key,
                                   const std::string& section) const {
    auto list = j.find(key);
    if (list == j.end() || !list->is_array()) {
      return Error(section, ": Sequence without a \"", key, "\" array");
    }
    return &*list;
  }

  absl::StatusOr<PrependScheme> Scheme(const json& j,
                                       const std::string& section) const {
    auto it = j.find("prepend_scheme");
    if (it == j.end() || it->is_null()) {
      // Files older than prepend_scheme say add_prefix_space.
      LORAD_ASSIGN_OR_RETURN(bool add,
                             Bool(j, "add_prefix_space", true, section));
      return add ? PrependScheme::kAlways : PrependScheme::kNever;
    }
    if (*it == "always") return PrependScheme::kAlways;
    if (*it == "first") return PrependScheme::kFirst;
    if (*it == "never") return PrependScheme::kNever;
    return Error(section, ": prepend_scheme ", it->dump(),
                 " is not always, first or never");
  }

  absl::Status ParseModel(const json& j) {
    auto type = j.find("type");
    if (type != j.end() && type->is_string() && *type == "Unigram") {
      return ParseUnigram(j);
    }
    if (type != j.end() && (!type->is_string() || *type != "BPE")) {
      return Error("model type ", type->dump(),
                   " is not supported (BPE and Unigram are)");
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
    LORAD_ASSIGN_OR_RETURN(model_->byte_fallback,
                           Bool(j, "byte_fallback", false, "model"));
    for (int b = 0; b < 256; ++b) {
      auto it = model_->vocab.find(absl::StrFormat("<0x%02X>", b));
      model_->byte_ids[b] = it == model_->vocab.end() ? -1 : it->second;
    }
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
      model_->merges.try_emplace(PairKey(a->second, b->second),
                                 Merge{rank, merged->second});
      ++rank;
    }
    return absl::OkStatus();
  }

  // Unigram: "vocab" is [[piece, score], ...] with the id as index.
  absl::Status ParseUnigram(const json& j) {
    model_->kind = TokenizerModel::Kind::kUnigram;
    auto vocab = j.find("vocab");
    if (vocab == j.end() || !vocab->is_array() || vocab->empty()) {
      return Error("model: Unigram \"vocab\" missing, empty or not an array");
    }
    double min_score = 0;
    for (const json& entry : *vocab) {
      const int32_t id = static_cast<int32_t>(model_->unigram_scores.size());
      if (!entry.is_array() || entry.size() != 2 || !entry[0].is_string() ||
          !entry[1].is_number()) {
        return Error("model.vocab[", id, "]: ", entry.dump().substr(0, 80),
                     " is not [piece, score]");
      }
      const std::string piece = entry[0].get<std::string>();
      const double score = entry[1].get<double>();
      model_->vocab[piece] = id;
      model_->id_to_token[id] = piece;
      model_->unigram_scores.push_back(score);
      min_score = id == 0 ? score : std::min(min_score, score);
    }
    model_->vocab_size = static_cast<int64_t>(model_->unigram_scores.size());
    model_->unigram_pieces.assign(model_->vocab.begin(), model_->vocab.end());
    std::sort(model_->unigram_pieces.begin(), model_->unigram_pieces.end());
    model_->unk_score = min_score - 10.0;
    if (auto it = j.find("unk_id"); it != j.end() && !it->is_null()) {
      if (!it->is_number_integer() || it->get<int64_t>() < 0 ||
          it->get<int64_t>() >= model_->vocab_size) {
        return Error("model: unk_id ", it->dump(),
                     " is not an id of the vocab");
      }
      model_->unk_id = it->get<int32_t>();
    }
    LORAD_ASSIGN_OR_RETURN(model_->byte_fallback,
                           Bool(j, "byte_fallback", false, "model"));
    for (int b = 0; b < 256; ++b) {
      auto it = model_->vocab.find(absl::StrFormat("<0x%02X>", b));
      model_->byte_ids[b] = it == model_->vocab.end() ? -1 : it->second;
    }
    return absl::OkStatus();
  }

  absl::Status ParseNormalizer(const json& j) {
    if (j.is_null()) return absl::OkStatus();
    const std::string section = "normalizer";
    LORAD_ASSIGN_OR_RETURN(std::string type, Type(j, section));
    NormalizerStep step;
    if (type == "Sequence") {
      LORAD_ASSIGN_OR_RETURN(const json* list, List(j, "normalizers", section));
      for (const json& item : *list) {
        LORAD_RETURN_IF_ERROR(ParseNormalizer(item));
      }
      return absl::OkStatus();
    }
    if (type == "NFC") {
      step.kind = NormalizerStep::Kind::kNfc;
    } else if (type == "Prepend") {
      step.kind = NormalizerStep::Kind::kPrepend;
      LORAD_ASSIGN_OR_RETURN(step.text,
                             String(j, "prepend", "normalizer Prepend"));
    } else if (type == "Replace") {
      step.kind = NormalizerStep::Kind::kReplace;
      LORAD_ASSIGN_OR_RETURN(step.text, StringPattern(j, "normalizer Replace"));
      LORAD_ASSIGN_OR_RETURN(step.content,
                             String(j, "content", "normalizer Replace"));
    } else {
      return Error("normalizer type \"", type,
                   "\" is not supported (NFC, Prepend, Replace and Sequence "
                   "are)");
    }
    model_->normalizer.push_back(std::move(step));
    return absl::OkStatus();
  }

  absl::Status ParsePreTokenizer(const json& j) {
    if (j.is_null()) return absl::OkStatus();
    LORAD_ASSIGN_OR_RETURN(std::string type, Type(j, "pre_tokenizer"));
    PreTokenizerStep step;
    if (type == "Sequence") {
      LORAD_ASSIGN_OR_RETURN(const json* list,
                             List(j, "pretokenizers", "pre_tokenizer"));
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
    if (type == "Metaspace") {
      const std::string section = "pre_tokenizer Metaspace";
      step.kind = PreTokenizerStep::Kind::kMetaspace;
      LORAD_ASSIGN_OR_RETURN(step.replacement, Char(j, "replacement", section));
      LORAD_ASSIGN_OR_RETURN(step.prepend_scheme, Scheme(j, section));
      LORAD_ASSIGN_OR_RETURN(step.split, Bool(j, "split", true, section));
      model_->pre_tokenizer.push_back(std::move(step));
      return absl::OkStatus();
    }
    if (type != "Split") {
      return Error("pre_tokenizer type \"", type,
                   "\" is not supported (ByteLevel, Split, Metaspace and "
                   "Sequence are)");
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
      step.pattern = RecognizeSplitPattern(regex->get<std::string>());
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
    const std::string section = "decoder";
    LORAD_ASSIGN_OR_RETURN(std::string type, Type(j, section));
    DecoderStep step;
    if (type == "Sequence") {
      LORAD_ASSIGN_OR_RETURN(const json* list, List(j, "decoders", section));
      for (const json& item : *list) {
        LORAD_RETURN_IF_ERROR(ParseDecoder(item));
      }
      return absl::OkStatus();
    }
    if (type == "ByteLevel") {
      step.kind = DecoderStep::Kind::kByteLevel;
    } else if (type == "ByteFallback") {
      step.kind = DecoderStep::Kind::kByteFallback;
    } else if (type == "Fuse") {
      step.kind = DecoderStep::Kind::kFuse;
    } else if (type == "Replace") {
      step.kind = DecoderStep::Kind::kReplace;
      LORAD_ASSIGN_OR_RETURN(step.pattern, StringPattern(j, "decoder Replace"));
      LORAD_ASSIGN_OR_RETURN(step.content,
                             String(j, "content", "decoder Replace"));
    } else if (type == "Strip") {
      step.kind = DecoderStep::Kind::kStrip;
      LORAD_ASSIGN_OR_RETURN(step.pattern, Char(j, "content", "decoder Strip"));
      for (auto [key, field] :
           {std::pair{"start", &step.start}, std::pair{"stop", &step.stop}}) {
        auto it = j.find(key);
        if (it == j.end() || !it->is_number_unsigned() ||
            it->get<uint64_t>() > 1024) {
          return Error("decoder Strip: field \"", key,
                       "\" missing or not a small non-negative integer");
        }
        *field = it->get<int>();
      }
    } else if (type == "Metaspace") {
      step.kind = DecoderStep::Kind::kMetaspace;
      LORAD_ASSIGN_OR_RETURN(step.pattern,
                             Char(j, "replacement", "decoder Metaspace"));
      LORAD_ASSIGN_OR_RETURN(step.prepend_scheme,
                             Scheme(j, "decoder Metaspace"));
    } else {
      return Error("decoder type \"", type,
                   "\" is not supported (ByteLevel, Replace, ByteFallback, "
                   "Fuse, Strip, Metaspace and Sequence are)");
    }
    model_->decoder->push_back(std::move(step));
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
      LORAD_ASSIGN_OR_RETURN(token.normalized,
                             Bool(item, "normalized", !token.special, section));
      model_->vocab_size =
          std::max<int64_t>(model_->vocab_size, int64_t{token.id} + 1);
      model_->added.push_back(std::move(token));
    }
    return absl::OkStatus();
  }

  std::string where_;
  TokenizerModel* model_;
};

}  // namespace

absl::Status ParseTokenizerJson(const json& root, std::string_view where,
                                TokenizerModel* model) {
  return Parser(where, model).Parse(root);
}

}  // namespace lorad::model::tokenizer_internal
