// SentencePiece-style BPE tokenizers (byte fallback, Prepend/Replace
// normalizers, Metaspace, the SentencePiece decoders) against HF
// `tokenizers`, built at test time by tests/golden/tokenizer_spm_peer.py:
// ids with and without special tokens, decodes both ways, streaming decode,
// and errors for what is not supported.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lorad/model/tokenizer.h"
#include "nlohmann/json.hpp"
#include "tokenizer_peer.h"

namespace lorad::model {
namespace {

using nlohmann::json;
using tokenizer_peer::Peer;
using tokenizer_peer::ReadExpected;
using tokenizer_peer::StreamAll;

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

class SpmKindTest : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    LORAD_REQUIRE_PEER();
    dir_ = Peer().dir + "/" + GetParam();
    absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
        Tokenizer::FromFile(dir_ + "/tokenizer.json");
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = *std::move(tokenizer);
    expected_ = ReadExpected(dir_);
    ASSERT_TRUE(expected_.contains("cases")) << dir_;
  }

  std::string dir_;
  std::unique_ptr<Tokenizer> tokenizer_;
  json expected_;
};

TEST_P(SpmKindTest, EncodeMatchesTokenizers) {
  ASSERT_GT(expected_["cases"].size(), 30u);
  for (const json& c : expected_["cases"]) {
    const std::string text = c["text"].get<std::string>();
    SCOPED_TRACE(json(text).dump());
    EXPECT_EQ(tokenizer_->Encode(text), c["ids"].get<std::vector<int32_t>>());
    EXPECT_EQ(tokenizer_->EncodeWithSpecialTokens(text),
              c["ids_special"].get<std::vector<int32_t>>());
  }
}

TEST_P(SpmKindTest, DecodeMatchesTokenizers) {
  for (const json& c : expected_["cases"]) {
    const auto ids = c["ids_special"].get<std::vector<int32_t>>();
    SCOPED_TRACE(c["text"].dump());
    EXPECT_EQ(tokenizer_->Decode(ids, false), c["decoded"].get<std::string>());
    EXPECT_EQ(tokenizer_->Decode(ids, true),
              c["decoded_skip"].get<std::string>());
  }
  ASSERT_GT(expected_["decode_only"].size(), 5u);
  for (const json& c : expected_["decode_only"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    SCOPED_TRACE(c["ids"].dump());
    EXPECT_EQ(tokenizer_->Decode(ids, false), c["decoded"].get<std::string>());
    EXPECT_EQ(tokenizer_->Decode(ids, true),
              c["decoded_skip"].get<std::string>());
  }
}

TEST_P(SpmKindTest, PostProcessorIdsWrapTheSequence) {
  const std::vector<int32_t> body = tokenizer_->Encode("Hello world");
  std::vector<int32_t> want = tokenizer_->PrefixIds();
  want.insert(want.end(), body.begin(), body.end());
  want.insert(want.end(), tokenizer_->SuffixIds().begin(),
              tokenizer_->SuffixIds().end());
  EXPECT_EQ(tokenizer_->EncodeWithSpecialTokens("Hello world"), want);
}

// Streaming gives the full decode for every text that decodes to valid
// UTF-8, one id at a time, both with and without special tokens.
TEST_P(SpmKindTest, StreamingDecodeEqualsFullDecode) {
  int streamed = 0;
  const auto check = [&](const std::vector<int32_t>& ids) {
    for (bool skip : {false, true}) {
      const std::string full = tokenizer_->Decode(ids, skip);
      if (full.find(kReplacementChar) != std::string::npos) continue;
      EXPECT_EQ(StreamAll(*tokenizer_, ids, skip), full)
          << json(ids).dump() << " skip=" << skip;
      ++streamed;
    }
  };
  for (const json& c : expected_["cases"]) {
    check(c["ids_special"].get<std::vector<int32_t>>());
  }
  for (const json& c : expected_["decode_only"]) {
    check(c["ids"].get<std::vector<int32_t>>());
  }
  EXPECT_GT(streamed, 60);
}

// Step by step, StreamDecoder hands out what HF's DecodeStream does.
TEST_P(SpmKindTest, StreamingStepsMatchDecodeStream) {
  int compared = 0;
  const auto check = [&](const json& c, const std::vector<int32_t>& ids) {
    for (bool skip : {false, true}) {
      const json& want = c[skip ? "stream_skip" : "stream"];
      if (want.is_null()) continue;  // HF refuses; covered by the test above
      StreamDecoder stream(*tokenizer_, skip);
      std::vector<std::string> got;
      for (int32_t id : ids) got.push_back(stream.Add(id));
      EXPECT_EQ(got, want.get<std::vector<std::string>>())
          << json(ids).dump() << " skip=" << skip;
      ++compared;
    }
  };
  for (const json& c : expected_["cases"]) {
    check(c, c["ids_special"].get<std::vector<int32_t>>());
  }
  for (const json& c : expected_["decode_only"]) {
    check(c, c["ids"].get<std::vector<int32_t>>());
  }
  EXPECT_GT(compared, 60);
}

INSTANTIATE_TEST_SUITE_P(Kinds, SpmKindTest,
                         testing::Values("llama2", "metaspace_first",
                                         "metaspace_always_split",
                                         "metaspace_never", "gemma",
                                         "unk_no_fallback", "unk_missing_bytes",
                                         "unigram", "unigram_no_fallback"));

// A hand-written byte-fallback tokenizer: "a", "▁a", "▁" and the bytes
// (ids 4 + byte).
std::string ByteFallbackJson(std::string_view decoder) {
  json vocab = {{"<unk>", 0},
                {"a", 1},
                {"\xE2\x96\x81"
                 "a",
                 2},
                {"\xE2\x96\x81", 3}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = 4 + b;
  }
  json root = {
      {"model",
       {{"type", "BPE"},
        {"vocab", vocab},
        {"merges", json::array({json::array({"\xE2\x96\x81", "a"})})},
        {"unk_token", "<unk>"},
        {"byte_fallback", true}}},
      {"pre_tokenizer",
       {{"type", "Metaspace"},
        {"replacement", "\xE2\x96\x81"},
        {"prepend_scheme", "first"},
        {"split", true}}},
      {"decoder", json::parse(decoder)},
  };
  return root.dump();
}

TEST(SpmTest, UnknownCharactersFallBackToBytes) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      Tokenizer::FromJson(ByteFallbackJson(R"({"type": "Sequence",
          "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"},
                       {"type": "Metaspace", "replacement": "\u2581",
                        "prepend_scheme": "first"}]})"),
                          "bf.json");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  // "▁a", then "é" = C3 A9 as <0xC3> <0xA9>.
  const std::vector<int32_t> ids = (*tokenizer)->Encode("a\xC3\xA9");
  EXPECT_EQ(ids, (std::vector<int32_t>{2, 4 + 0xC3, 4 + 0xA9}));
  EXPECT_EQ((*tokenizer)->Decode(ids, false), "a\xC3\xA9");
  // A cut character decodes as one U+FFFD per byte, as HF's ByteFallback.
  EXPECT_EQ((*tokenizer)->Decode({4 + 0xE6, 4 + 0x97}, false),
            "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(SpmTest, StreamHoldsBackACutCharacterUntilItIsWhole) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromJson(
      ByteFallbackJson(
          R"({"type": "Sequence", "decoders": [{"type": "ByteFallback"},
              {"type": "Fuse"}]})"),
      "bf.json");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  StreamDecoder stream(**tokenizer, /*skip_special_tokens=*/true);
  EXPECT_EQ(stream.Add(1), "a");
  EXPECT_EQ(stream.Add(4 + 0xE6), "");  // 日 = E6 97 A5
  EXPECT_EQ(stream.Add(4 + 0x97), "");
  EXPECT_EQ(stream.Add(4 + 0xA5), "\xE6\x97\xA5");
  EXPECT_EQ(stream.Add(1), "a");
  EXPECT_EQ(stream.Add(4 + 0xF0), "");  // 😀 cut short at the end
  EXPECT_EQ(stream.Finish(), "\xEF\xBF\xBD");
}

TEST(SpmTest, UnsupportedComponentsAreNamed) {
  const std::string model =
      R"("model": {"type": "BPE", "vocab": {"a": 0}, "merges": []})";
  const std::pair<std::string, std::string> cases[] = {
      {R"("normalizer": {"type": "Replace", "pattern": {"Regex": " +"},
          "content": "x"})",
       "Regex"},
      {R"("normalizer": {"type": "Lowercase"})", "Lowercase"},
      {R"("pre_tokenizer": {"type": "Metaspace", "replacement": "ab"})",
       "replacement"},
      {R"("pre_tokenizer": {"type": "Metaspace", "replacement": "_",
          "prepend_scheme": "sometimes"})",
       "sometimes"},
      {R"("decoder": {"type": "WordPiece"})", "WordPiece"},
      {R"("decoder": {"type": "Strip", "content": " ", "start": -1,
          "stop": 0})",
       "start"},
      {R"("post_processor": {"type": "TemplateProcessing",
          "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}}],
          "special_tokens": {}})",
       "<s>"},
      {R"("post_processor": {"type": "TemplateProcessing",
          "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}],
          "special_tokens": {"<s>": {"id": "<s>", "ids": [0],
                                     "tokens": ["<s>"]}}})",
       "Sequence A"},
      {R"("post_processor": {"type": "Whatever"})", "Whatever"},
  };
  for (const auto& [section, name] : cases) {
    SCOPED_TRACE(section);
    absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
        Tokenizer::FromJson("{" + model + ", " + section + "}", "t.json");
    EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(tokenizer.status().message().find(name), std::string::npos)
        << tokenizer.status();
  }
}

}  // namespace
}  // namespace lorad::model
