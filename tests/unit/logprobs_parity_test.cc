// lorad's logprobs and top_logprobs against log_softmax of HF transformers'
// logits, step by step through a greedy generation of a small random Llama
// that transformers saved.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "lorad/common/files.h"
#include "lorad/model/tokenizer.h"
#include "lorad/worker/generator.h"
#include "lorad/worker/llama_model.h"
#include "nlohmann/json.hpp"

namespace lorad::worker {
namespace {

const std::string kSource = LORAD_SOURCE_DIR;

bool HavePython() {
  return std::filesystem::exists(LORAD_PYTHON) &&
         std::system((std::string(LORAD_PYTHON) +
                      " -c 'import transformers' 2>/dev/null")
                         .c_str()) == 0;
}

// The byte-level tokenizer's token text: ASCII bytes are themselves, the
// special tokens (256 and up) are left out of the text. (A byte of a
// multi-byte character decodes as U+FFFD or not depending on its
// neighbours.)
void ExpectTokenText(int32_t id, const std::string& text) {
  if (id < 128) {
    EXPECT_EQ(text, std::string(1, static_cast<char>(id))) << id;
  } else if (id >= 256) {
    EXPECT_EQ(text, "") << id;
  }
}

TEST(LogprobsParityTest, GreedyLogprobsAndTopFiveMatchTransformers) {
  if (!HavePython()) GTEST_SKIP() << "venv with transformers missing";
  const std::string dir = ::testing::TempDir() + "/logprobs_parity_llama";
  std::filesystem::remove_all(dir);
  const std::string make = std::string(LORAD_PYTHON) + " " + kSource +
                           "/tests/golden/hf_parity.py make-model llama " + dir;
  ASSERT_EQ(std::system(make.c_str()), 0) << make;
  ASSERT_TRUE(WriteFileAtomic(dir + "/tokenizer.json",
                              model::MakeByteLevelTokenizerJson())
                  .ok());
  LoadOptions o;
  o.quantize = false;
  auto model = LlamaModel::Load(dir, o);
  ASSERT_TRUE(model.ok()) << model.status();
  const model::Tokenizer& tokenizer = (*model)->tokenizer();

  constexpr int kSteps = 12;
  constexpr int kTop = 5;
  lorad::worker::v1::Sampling request;
  request.set_prompt("Hello, worl");
  request.set_max_new_tokens(kSteps);
  request.set_logprobs(true);
  request.set_top_logprobs(kTop);
  std::vector<int32_t> tokens;
  std::vector<lorad::worker::v1::TokenLogprob> got;
  absl::Status status = Generate(
      **model, nullptr, request,
      [&](const lorad::worker::v1::GenerateChunk& chunk) {
        EXPECT_EQ(chunk.logprobs_size(), chunk.token_ids_size());
        tokens.insert(tokens.end(), chunk.token_ids().begin(),
                      chunk.token_ids().end());
        got.insert(got.end(), chunk.logprobs().begin(), chunk.logprobs().end());
        return true;
      });
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_FALSE(got.empty());

  const std::vector<int32_t> prompt =
      tokenizer.EncodeWithSpecialTokens("Hello, worl");
  const std::string out = dir + "/logprobs.json";
  const std::string peer = std::string(LORAD_PYTHON) + " " + kSource +
                           "/tests/golden/logprobs_peer.py greedy " + dir +
                           " " + out + " " + absl::StrJoin(prompt, ",") + " " +
                           std::to_string(kSteps) + " " + std::to_string(kTop);
  ASSERT_EQ(std::system(peer.c_str()), 0) << peer;
  absl::StatusOr<std::string> text = ReadFile(out);
  ASSERT_TRUE(text.ok()) << text.status();
  const nlohmann::json want = nlohmann::json::parse(*text);

  ASSERT_EQ(got.size(), want.size());
  constexpr float kTol = 1e-4f;
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE("step " + std::to_string(i));
    const nlohmann::json& w = want[i];
    EXPECT_EQ(got[i].token_id(), w["token_id"].get<int32_t>());
    EXPECT_EQ(tokens[i], got[i].token_id());
    EXPECT_NEAR(got[i].logprob(), w["logprob"].get<float>(), kTol);
    ExpectTokenText(got[i].token_id(), got[i].token());
    ASSERT_EQ(got[i].top_logprobs_size(), kTop);
    for (int j = 0; j < kTop; ++j) {
      const auto& top = got[i].top_logprobs(j);
      EXPECT_EQ(top.token_id(), w["top_ids"][j].get<int32_t>()) << j;
      EXPECT_NEAR(top.logprob(), w["top_logprobs"][j].get<float>(), kTol) << j;
      ExpectTokenText(top.token_id(), top.token());
      if (j > 0) EXPECT_LE(top.logprob(), got[i].top_logprobs(j - 1).logprob());
    }
    // Greedy: the chosen token is the most likely one.
    EXPECT_EQ(got[i].top_logprobs(0).token_id(), got[i].token_id());
  }
}

}  // namespace
}  // namespace lorad::worker
