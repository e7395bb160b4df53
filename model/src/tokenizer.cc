// Tokenizer: reading tokenizer.json and the public entry points.
#include "lorad/model/tokenizer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "lorad/common/bounded_json.h"
#include "lorad/common/files.h"
#include "lorad/common/status_macros.h"
#include "nlohmann/json.hpp"
#include "tokenizer_internal.h"

namespace lorad::model {
namespace tokenizer_internal {

namespace {

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

using nlohmann::json;
using tokenizer_internal::TokenizerModel;

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
    LORAD_RETURN_IF_ERROR(
        tokenizer_internal::ParseTokenizerJson(root, where, &impl->model));
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

std::vector<int32_t> Tokenizer::EncodeWithOffsets(
    std::string_view text,
    std::vector<std::pair<size_t, size_t>>* offsets) const {
  return impl_->Encode(text, offsets);
}

std::vector<int32_t> Tokenizer::EncodeWithSpecialTokens(
    std::string_view text) const {
  const TokenizerModel& model = impl_->model;
  std::vector<int32_t> ids = model.prefix_ids;
  std::vector<int32_t> body = impl_->Encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  ids.insert(ids.end(), model.suffix_ids.begin(), model.suffix_ids.end());
  return ids;
}

const std::vector<int32_t>& Tokenizer::PrefixIds() const {
  return impl_->model.prefix_ids;
}

const std::vector<int32_t>& Tokenizer::SuffixIds() const {
  return impl_->model.suffix_ids;
}

std::string Tokenizer::Decode(std::span<const int32_t> ids,
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
      // BOS in front of every text, as Llama 3's tokenizer does.
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single",
         {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"pair",
         {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
          {{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 1}}}},
          {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
        {"special_tokens",
         {{"<|begin_of_text|>",
           {{"id", "<|begin_of_text|>"},
            {"ids", {256}},
            {"tokens", {"<|begin_of_text|>"}}}}}}}},
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
