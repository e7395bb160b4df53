// Special tokens as a loaded model directory adds them: Tokenizer::
// FromModelDir + EncodeWithSpecialTokens against transformers'
// AutoTokenizer.from_pretrained(dir)(text).input_ids (model directories
// written at test time by tests/golden/tokenizer_spm_peer.py), and the
// post-processors' prefix and suffix ids.
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lorad/common/files.h"
#include "lorad/model/tokenizer.h"
#include "nlohmann/json.hpp"
#include "tokenizer_peer.h"

namespace lorad::model {
namespace {

using nlohmann::json;
using tokenizer_peer::Peer;
using tokenizer_peer::ReadExpected;
using tokenizer_peer::StreamAll;

class ModelDirTest : public testing::TestWithParam<std::string> {};

TEST_P(ModelDirTest, InputIdsAndDecodesMatchTransformers) {
  LORAD_REQUIRE_PEER();
  const std::string dir = Peer().dir + "/dir_" + GetParam();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      Tokenizer::FromModelDir(dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const Tokenizer& tok = **tokenizer;
  const json expected = ReadExpected(dir);
  ASSERT_TRUE(expected.contains("cases")) << dir;
  SCOPED_TRACE(expected["class"].dump());
  std::vector<int32_t> wrap = tok.PrefixIds();
  wrap.insert(wrap.end(), tok.SuffixIds().begin(), tok.SuffixIds().end());
  EXPECT_EQ(wrap, expected["empty_ids"].get<std::vector<int32_t>>());
  ASSERT_GT(expected["cases"].size(), 30u);
  for (const json& c : expected["cases"]) {
    const std::string text = c["text"].get<std::string>();
    SCOPED_TRACE(json(text).dump());
    const auto ids = c["input_ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.EncodeWithSpecialTokens(text), ids);
    EXPECT_EQ(tok.Decode(ids, false), c["decoded"].get<std::string>());
    EXPECT_EQ(tok.Decode(ids, true), c["decoded_skip"].get<std::string>());
    EXPECT_EQ(StreamAll(tok, ids, true), c["decoded_skip"].get<std::string>());
  }
}

INSTANTIATE_TEST_SUITE_P(Dirs, ModelDirTest,
                         testing::Values("llama2", "llama2_legacy",
                                         "llama2_no_prefix", "mistral", "gemma",
                                         "backend_template", "backend_no_post",
                                         "backend_bos_eos", "qwen2", "llama3",
                                         "llama3_declared_llama"));

std::unique_ptr<Tokenizer> WithPostProcessor(const json& post) {
  json root = {{"model",
                {{"type", "BPE"},
                 {"vocab", {{"<s>", 0}, {"</s>", 1}, {"<x>", 2}, {"a", 3}}},
                 {"merges", json::array()}}},
               {"post_processor", post}};
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      Tokenizer::FromJson(root.dump(), "post.json");
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? *std::move(tokenizer) : nullptr;
}

json Template(std::vector<json> single, json specials) {
  return {{"type", "TemplateProcessing"},
          {"single", single},
          {"pair", json::array()},
          {"special_tokens", specials}};
}

json Special(const std::string& id) {
  return {{"SpecialToken", {{"id", id}, {"type_id", 0}}}};
}

const json kSequenceA = {{"Sequence", {{"id", "A"}, {"type_id", 0}}}};

TEST(PostProcessorTest, TemplateWithMultiIdSpecialsAndSuffix) {
  const json specials = {
      {"<s>", {{"id", "<s>"}, {"ids", {0, 2}}, {"tokens", {"<s>", "<x>"}}}},
      {"</s>", {{"id", "</s>"}, {"ids", {1}}, {"tokens", {"</s>"}}}}};
  auto tok = WithPostProcessor(
      Template({Special("<s>"), kSequenceA, Special("</s>")}, specials));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->PrefixIds(), (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(tok->SuffixIds(), (std::vector<int32_t>{1}));
  EXPECT_EQ(tok->EncodeWithSpecialTokens("aa"),
            (std::vector<int32_t>{0, 2, 3, 3, 1}));
  EXPECT_EQ(tok->Encode("aa"), (std::vector<int32_t>{3, 3}));
}

TEST(PostProcessorTest, SequenceWrapsInOrder) {
  const json specials = {
      {"<x>", {{"id", "<x>"}, {"ids", {2}}, {"tokens", {"<x>"}}}}};
  // Roberta makes <s> A </s>; the template then wraps that in <x>.
  auto tok = WithPostProcessor(
      {{"type", "Sequence"},
       {"processors",
        {{{"type", "ByteLevel"}, {"trim_offsets", true}},
         {{"type", "RobertaProcessing"},
          {"sep", {"</s>", 1}},
          {"cls", {"<s>", 0}}},
         Template({Special("<x>"), kSequenceA, Special("<x>")}, specials)}}});
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->EncodeWithSpecialTokens("a"),
            (std::vector<int32_t>{2, 0, 3, 1, 2}));
}

TEST(PostProcessorTest, NoneAndByteLevelAddNothing) {
  for (const json& post : {json(), json{{"type", "ByteLevel"}}}) {
    auto tok = WithPostProcessor(post);
    ASSERT_NE(tok, nullptr);
    EXPECT_TRUE(tok->PrefixIds().empty());
    EXPECT_TRUE(tok->SuffixIds().empty());
    EXPECT_EQ(tok->EncodeWithSpecialTokens("a"), std::vector<int32_t>{3});
  }
}

TEST(ModelDirErrorsTest, MissingTokenizerJsonIsNotFound) {
  const std::string dir = testing::TempDir() + "/no_tokenizer_dir";
  std::filesystem::create_directories(dir);
  EXPECT_EQ(Tokenizer::FromModelDir(dir).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ModelDirErrorsTest, MalformedConfigIsInvalidArgumentNamingTheFile) {
  const std::string dir = testing::TempDir() + "/bad_tokenizer_config_dir";
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(
      WriteFileAtomic(dir + "/tokenizer.json", MakeByteLevelTokenizerJson())
          .ok());
  ASSERT_TRUE(
      WriteFileAtomic(dir + "/tokenizer_config.json", "{\"add_bos").ok());
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      Tokenizer::FromModelDir(dir);
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(tokenizer.status().message().find("tokenizer_config.json"),
            std::string::npos)
      << tokenizer.status();
}

}  // namespace
}  // namespace lorad::model
