// Tokenizer::FromModelDir: what transformers' AutoTokenizer.from_pretrained
// makes of a model directory (tokenizer.json + tokenizer_config.json +
// config.json): which tokenizer class rebuilds the pipeline around the
// file's vocabulary. The post-processor stays the file's: with a
// tokenizer.json present, transformers 5 drops add_bos_token / add_eos_token
// from tokenizer_config.json before building the tokenizer.
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "lorad/common/files.h"
#include "lorad/common/status_macros.h"
#include "lorad/model/tokenizer.h"
#include "tokenizer_internal.h"

namespace lorad::model {
namespace {

using nlohmann::json;
using tokenizer_internal::DecoderStep;
using tokenizer_internal::NormalizerStep;
using tokenizer_internal::PrependScheme;
using tokenizer_internal::PreTokenizerStep;
using tokenizer_internal::TokenizerModel;

constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // U+2581

// Replace U+2581 by a space, then byte fallback and fuse: the decoder
// transformers gives its rebuilt SentencePiece-style tokenizers.
std::vector<DecoderStep> SentencePieceDecoder() {
  std::vector<DecoderStep> decoder(3);
  decoder[0].kind = DecoderStep::Kind::kReplace;
  decoder[0].pattern = std::string(kMetaspace);
  decoder[0].content = " ";
  decoder[1].kind = DecoderStep::Kind::kByteFallback;
  decoder[2].kind = DecoderStep::Kind::kFuse;
  return decoder;
}

// The tokenizer classes whose transformers __init__ rebuilds the pipeline.
enum class Rebuild { kNone, kLlama, kGemma };

// A JSON file in `dir`, or null when it does not exist.
absl::StatusOr<json> ReadOptionalJson(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return json();
  LORAD_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  absl::StatusOr<json> parsed =
      ParseBoundedJson(text, tokenizer_internal::kTokenizerJsonLimits);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", parsed.status().message()));
  }
  if (!parsed->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": top level is not a JSON object"));
  }
  return *std::move(parsed);
}

std::string StringField(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// A special token in tokenizer_config.json: "<s>" or {"content": "<s>", ...}.
std::optional<std::string> TokenField(const json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") &&
      (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return std::nullopt;
}

// An optional boolean field; `fallback` when absent or null (the class
// default), else its Python truthiness.
bool Truthy(const json& config, const char* key, bool fallback) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return fallback;
  if (it->is_boolean()) return it->get<bool>();
  return true;
}

// Mirrors AutoTokenizer's choice of class for the families lorad knows.
Rebuild ChooseRebuild(const json& config, const std::string& model_type,
                      std::string_view tokenizer_json_text) {
  std::string cls = StringField(config, "tokenizer_class");
  if (cls.ends_with("Fast")) cls.resize(cls.size() - 4);
  const bool mistral_type =
      model_type == "mistral" || model_type == "mixtral" ||
      model_type == "ministral" || model_type == "mistral3";
  const bool gemma_type = model_type.starts_with("gemma");
  if (cls.empty()) return gemma_type ? Rebuild::kGemma : Rebuild::kNone;
  // A registered class for the model type other than the declared one:
  // Mistral's backend falls back to tokenizer.json as it is.
  if (mistral_type && cls != "MistralCommonBackend") return Rebuild::kNone;
  if (cls == "LlamaTokenizer") {
    // Byte-level files (Llama 3 style) are loaded as they are.
    if (tokenizer_json_text.find("\"ByteLevel\"") != std::string_view::npos) {
      return Rebuild::kNone;
    }
    return Rebuild::kLlama;
  }
  if (cls == "GemmaTokenizer") return Rebuild::kGemma;
  return Rebuild::kNone;
}

// transformers' LlamaTokenizer.__init__: byte-fallback BPE without an unk
// token, Metaspace with no split, and the SentencePiece decoder.
void RebuildLlama(const json& config, TokenizerModel* model) {
  const bool add_prefix_space = Truthy(config, "add_prefix_space", true);
  const bool legacy = Truthy(config, "legacy", false);
  model->unk_id.reset();
  model->fuse_unk = true;
  model->byte_fallback = true;
  model->ignore_merges = false;
  model->normalizer.clear();
  PreTokenizerStep metaspace;
  metaspace.kind = PreTokenizerStep::Kind::kMetaspace;
  metaspace.replacement = std::string(kMetaspace);
  metaspace.prepend_scheme = !add_prefix_space ? PrependScheme::kNever
                             : legacy          ? PrependScheme::kAlways
                                               : PrependScheme::kFirst;
  metaspace.split = false;
  model->pre_tokenizer = {metaspace};
  std::vector<DecoderStep> decoder = SentencePieceDecoder();
  if (add_prefix_space) {
    DecoderStep strip;
    strip.kind = DecoderStep::Kind::kStrip;
    strip.pattern = " ";
    strip.start = 1;
    decoder.push_back(strip);
  }
  model->decoder = std::move(decoder);
}

// transformers' GemmaTokenizer.__init__: byte-fallback BPE with the config's
// unk token, spaces replaced by U+2581 (no prefix), and the SentencePiece
// decoder without Strip.
void RebuildGemma(const json& config, TokenizerModel* model) {
  const std::string unk = TokenField(config, "unk_token").value_or("<unk>");
  auto unk_it = model->vocab.find(unk);
  model->unk_id = unk_it == model->vocab.end()
                      ? std::nullopt
                      : std::optional<int32_t>(unk_it->second);
  model->fuse_unk = true;
  model->byte_fallback = true;
  model->ignore_merges = false;
  NormalizerStep replace;
  replace.kind = NormalizerStep::Kind::kReplace;
  replace.text = " ";
  replace.content = std::string(kMetaspace);
  model->normalizer = {replace};
  PreTokenizerStep split;
  split.kind = PreTokenizerStep::Kind::kSplit;
  split.literal = " ";
  split.behavior = tokenizer_internal::SplitBehavior::kMergedWithPrevious;
  model->pre_tokenizer = {split};
  std::vector<DecoderStep> decoder = SentencePieceDecoder();
  model->decoder = std::move(decoder);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromModelDir(
    const std::string& dir) {
  const std::string path = dir + "/tokenizer.json";
  if (!std::filesystem::exists(path)) {
    // Only the slow tokenizer's files: transformers converts them when it
    // loads the directory; lorad reads the converted file.
    for (const char* slow : {"tokenizer.model", "tekken.json"}) {
      if (std::filesystem::exists(absl::StrCat(dir, "/", slow))) {
        return absl::InvalidArgumentError(absl::StrCat(
            dir, " has ", slow,
            " but no tokenizer.json; lorad reads tokenizer.json. Write it "
            "with transformers: AutoTokenizer.from_pretrained(DIR)"
            ".save_pretrained(DIR)"));
      }
    }
  }
  LORAD_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  absl::StatusOr<json> root =
      ParseBoundedJson(text, tokenizer_internal::kTokenizerJsonLimits);
  if (!root.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", root.status().message()));
  }
  const std::string config_path = dir + "/tokenizer_config.json";
  LORAD_ASSIGN_OR_RETURN(json config, ReadOptionalJson(config_path));
  if (config.is_null()) config = json::object();
  LORAD_ASSIGN_OR_RETURN(json model_config,
                         ReadOptionalJson(dir + "/config.json"));
  const std::string model_type = StringField(model_config, "model_type");

  auto impl = std::make_unique<Impl>();
  TokenizerModel& model = impl->model;
  try {
    LORAD_RETURN_IF_ERROR(
        tokenizer_internal::ParseTokenizerJson(*root, path, &model));
    const Rebuild rebuild = ChooseRebuild(config, model_type, text);
    if (rebuild != Rebuild::kNone &&
        model.kind == TokenizerModel::Kind::kUnigram) {
      return absl::InvalidArgumentError(absl::StrCat(
          config_path, ": tokenizer_class \"",
          StringField(config, "tokenizer_class"),
          "\" rebuilds a BPE tokenizer, but tokenizer.json holds a Unigram "
          "model; not supported"));
    }
    if (rebuild == Rebuild::kLlama) RebuildLlama(config, &model);
    if (rebuild == Rebuild::kGemma) RebuildGemma(config, &model);
    tokenizer_internal::IndexAddedTokens(&model);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(dir, ": ", e.what()));
  }
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

}  // namespace lorad::model
