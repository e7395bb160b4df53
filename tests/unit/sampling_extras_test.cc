// The OpenAI sampling extras in DecodeState, Generate() and the Engine's
// batch: a TokenConstraint's mask, Accept and Complete (greedy, sampled, and
// beside an unconstrained row); presence and frequency penalties against the
// formula computed here from the model's own logits; logprobs of the
// penalised distribution; the worker's refusals.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lorad/model/chat_template.h"
#include "lorad/model/token_constraint.h"
#include "lorad/worker/engine.h"
#include "lorad/worker/generator.h"
#include "serving_test_util.h"

namespace lorad::worker {
namespace {

using lorad::worker::v1::GenerateChunk;
using lorad::worker::v1::Sampling;

// What a TestConstraint saw, kept after the request that owned it ended.
struct ConstraintLog {
  std::vector<int64_t> remaining;  // per Mask() call
  std::vector<int32_t> accepted;
};

// Only `ids` may come; the output is complete after `length` tokens.
class TestConstraint : public model::TokenConstraint {
 public:
  TestConstraint(std::vector<int32_t> ids, size_t length,
                 std::shared_ptr<ConstraintLog> log)
      : ids_(std::move(ids)), length_(length), log_(std::move(log)) {}

  void Mask(int64_t remaining, std::vector<uint8_t>& allowed) override {
    log_->remaining.push_back(remaining);
    for (size_t j = 0; j < allowed.size(); ++j) {
      if (!Allows(static_cast<int32_t>(j))) allowed[j] = 0;
    }
  }
  absl::Status Accept(int32_t token) override {
    if (!Allows(token)) {
      return absl::InvalidArgumentError(absl::StrCat("token ", token));
    }
    log_->accepted.push_back(token);
    return absl::OkStatus();
  }
  bool Complete() const override { return log_->accepted.size() >= length_; }

 private:
  bool Allows(int32_t id) const {
    return std::find(ids_.begin(), ids_.end(), id) != ids_.end();
  }
  const std::vector<int32_t> ids_;
  const size_t length_;
  std::shared_ptr<ConstraintLog> log_;
};

const std::vector<int32_t> kAllowed = {'a', 'b', 'c'};
constexpr size_t kLength = 4;

struct Output {
  absl::Status status;
  std::vector<int32_t> tokens;
  std::vector<lorad::worker::v1::TokenLogprob> logprobs;
  std::string text;
  std::string finish;
};

void Collect(const GenerateChunk& chunk, Output& out) {
  EXPECT_TRUE(chunk.logprobs_size() == 0 ||
              chunk.logprobs_size() == chunk.token_ids_size());
  out.tokens.insert(out.tokens.end(), chunk.token_ids().begin(),
                    chunk.token_ids().end());
  out.logprobs.insert(out.logprobs.end(), chunk.logprobs().begin(),
                      chunk.logprobs().end());
  out.text += chunk.text();
  if (!chunk.finish_reason().empty()) out.finish = chunk.finish_reason();
}

Output Drain(GenerationStream& stream) {
  Output out;
  GenerateChunk chunk;
  for (;;) {
    auto e = stream.Next(&chunk, absl::Seconds(60));
    if (e == GenerationStream::Event::kEnd) break;
    if (e == GenerationStream::Event::kTimeout) {
      out.status = absl::DeadlineExceededError("no message in 60 s");
      return out;
    }
    Collect(chunk, out);
  }
  out.status = stream.status();
  return out;
}

Sampling Request(const std::string& prompt, int max_new) {
  Sampling r;
  r.set_prompt(prompt);
  r.set_max_new_tokens(max_new);
  return r;
}

Sampling Json(Sampling r) {
  r.mutable_response_format()->set_type("json_object");
  return r;
}

bool AllAllowed(const std::vector<int32_t>& tokens) {
  return std::all_of(tokens.begin(), tokens.end(), [](int32_t t) {
    return std::find(kAllowed.begin(), kAllowed.end(), t) != kAllowed.end();
  });
}

class SamplingExtrasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::TestRoot("sampling_extras");
    model_ = testing::LoadTiny(root_, /*quantize=*/false);
    ASSERT_NE(model_, nullptr);
    log_ = std::make_shared<ConstraintLog>();
    maker_ = [log = log_](const lorad::worker::v1::ResponseFormat& f)
        -> absl::StatusOr<std::unique_ptr<model::TokenConstraint>> {
      EXPECT_EQ(f.type(), "json_object");
      *log = ConstraintLog();
      return std::make_unique<TestConstraint>(kAllowed, kLength, log);
    };
  }

  Output RunGenerate(const Sampling& r, const ConstraintMaker* maker) {
    Output out;
    out.status = Generate(
        *model_, nullptr, r,
        [&out](const GenerateChunk& c) {
          Collect(c, out);
          return true;
        },
        maker);
    return out;
  }

  // The last position's fp32 logits for `ids`, recomputed from scratch.
  torch::Tensor LastLogits(const std::vector<int32_t>& ids) const {
    torch::NoGradGuard no_grad;
    std::vector<int64_t> v(ids.begin(), ids.end());
    return model_
        ->Forward(torch::tensor(v, torch::kLong).unsqueeze(0), ForwardOptions())
        .select(0, 0)
        .select(0, -1)
        .to(torch::kFloat32)
        .contiguous();
  }

  std::vector<int32_t> Prompt(const std::string& text) const {
    return model_->tokenizer().EncodeWithSpecialTokens(text);
  }

  std::string root_;
  std::unique_ptr<LlamaModel> model_;
  std::shared_ptr<ConstraintLog> log_;
  ConstraintMaker maker_;
};

TEST_F(SamplingExtrasTest, GreedyTakesTheBestAllowedTokenAndStopsWhenComplete) {
  const std::string prompt = "The quick brown fox";
  Output free = RunGenerate(Request(prompt, 10), nullptr);
  ASSERT_TRUE(free.status.ok()) << free.status;
  ASSERT_FALSE(AllAllowed(free.tokens)) << "the mask would change nothing";

  Output got = RunGenerate(Json(Request(prompt, 10)), &maker_);
  ASSERT_TRUE(got.status.ok()) << got.status;
  EXPECT_EQ(got.finish, "stop");
  ASSERT_EQ(got.tokens.size(), kLength);
  EXPECT_EQ(log_->accepted, got.tokens);
  EXPECT_EQ(log_->remaining, (std::vector<int64_t>{10, 9, 8, 7}));
  EXPECT_EQ(got.text, model_->tokenizer().Decode(got.tokens, true));
  // Each step: the argmax of the model's logits over the allowed ids alone.
  std::vector<int32_t> ids = Prompt(prompt);
  for (int32_t token : got.tokens) {
    torch::Tensor logits = LastLogits(ids);
    int32_t best = kAllowed[0];
    for (int32_t a : kAllowed) {
      if (logits[a].item<float>() > logits[best].item<float>()) best = a;
    }
    EXPECT_EQ(token, best);
    ids.push_back(token);
  }
}

TEST_F(SamplingExtrasTest, SampledRowsStayInsideTheMaskWithTheirLogprobs) {
  for (uint64_t seed : {1, 2, 3}) {
    Sampling r = Json(Request("Sample me", 12));
    r.set_temperature(1.5f);
    r.set_seed(seed);
    r.set_logprobs(true);
    r.set_top_logprobs(5);
    Output got = RunGenerate(r, &maker_);
    ASSERT_TRUE(got.status.ok()) << got.status;
    EXPECT_EQ(got.finish, "stop");
    ASSERT_EQ(got.tokens.size(), kLength);
    EXPECT_TRUE(AllAllowed(got.tokens));
    EXPECT_EQ(log_->accepted, got.tokens);
    ASSERT_EQ(got.logprobs.size(), got.tokens.size());
    for (const auto& lp : got.logprobs) {
      // Forbidden tokens have no probability: the three allowed ones share
      // all of it, and only they are listed.
      ASSERT_EQ(lp.top_logprobs_size(), 3);
      double total = 0;
      for (const auto& top : lp.top_logprobs()) {
        EXPECT_TRUE(AllAllowed({top.token_id()}));
        total += std::exp(top.logprob());
      }
      EXPECT_NEAR(total, 1.0, 1e-4);
    }
  }
}

TEST_F(SamplingExtrasTest, ConstrainedRowBesideAnUnconstrainedOneInTheBatch) {
  EngineOptions options;
  options.make_constraint = maker_;
  Engine engine(model_.get(), options);
  auto run = [&](const Sampling& r) {
    auto s = engine.Submit(r, nullptr);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? Drain(**s) : Output{s.status()};
  };
  const Sampling free_request = Request("The quick brown fox", 24);
  const Sampling json_request = Json(Request("Once upon", 10));
  Output free_alone = run(free_request);
  Output json_alone = run(json_request);
  ASSERT_TRUE(free_alone.status.ok()) << free_alone.status;
  ASSERT_TRUE(json_alone.status.ok()) << json_alone.status;
  ASSERT_EQ(json_alone.tokens.size(), kLength);
  EXPECT_TRUE(AllAllowed(json_alone.tokens));
  EXPECT_EQ(json_alone.finish, "stop");

  auto free_stream = engine.Submit(free_request, nullptr);
  auto json_stream = engine.Submit(json_request, nullptr);
  ASSERT_TRUE(free_stream.ok() && json_stream.ok());
  Output free_batched = Drain(**free_stream);
  Output json_batched = Drain(**json_stream);
  ASSERT_TRUE(free_batched.status.ok()) << free_batched.status;
  ASSERT_TRUE(json_batched.status.ok()) << json_batched.status;
  EXPECT_EQ(free_batched.tokens, free_alone.tokens);
  EXPECT_EQ(free_batched.text, free_alone.text);
  EXPECT_EQ(free_batched.finish, free_alone.finish);
  EXPECT_EQ(json_batched.tokens, json_alone.tokens);
  EXPECT_EQ(json_batched.finish, "stop");
  EXPECT_GE(engine.stats().largest_batch, 2);
}

// Greedy with OpenAI's penalties, step by step against
// logit[j] -= count[j] * frequency + (count[j] > 0) * presence
// over the tokens generated so far, and the logprobs of that distribution.
TEST_F(SamplingExtrasTest, PenaltiesFollowTheFormula) {
  const std::string prompt = "abcabcabc";
  constexpr int kSteps = 24;
  Output plain = RunGenerate(Request(prompt, kSteps), nullptr);
  ASSERT_TRUE(plain.status.ok()) << plain.status;
  struct Case {
    float presence, frequency;
  };
  for (Case c :
       {Case{1.5f, 0}, Case{0, 0.9f}, Case{0.6f, 0.4f}, Case{-0.5f, 0.8f}}) {
    SCOPED_TRACE(
        absl::StrCat("presence ", c.presence, " frequency ", c.frequency));
    Sampling r = Request(prompt, kSteps);
    r.set_presence_penalty(c.presence);
    r.set_frequency_penalty(c.frequency);
    r.set_logprobs(true);
    Output got = RunGenerate(r, nullptr);
    ASSERT_TRUE(got.status.ok()) << got.status;
    std::vector<int32_t> ids = Prompt(prompt);
    std::map<int32_t, int> count;
    std::vector<int32_t> want;
    std::vector<float> want_logprob;
    for (int step = 0; step < kSteps; ++step) {
      torch::Tensor logits = LastLogits(ids);
      for (auto [id, n] : count) {
        logits[id] -= n * c.frequency + (n > 0 ? c.presence : 0.0f);
      }
      const int32_t next =
          static_cast<int32_t>(logits.argmax().item<int64_t>());
      if (next == model_->config().eos_token_ids[0]) break;
      want.push_back(next);
      want_logprob.push_back(logits.log_softmax(-1)[next].item<float>());
      ++count[next];
      ids.push_back(next);
    }
    EXPECT_EQ(got.tokens, want);
    ASSERT_EQ(got.logprobs.size(), want_logprob.size());
    for (size_t i = 0; i < want_logprob.size(); ++i) {
      EXPECT_NEAR(got.logprobs[i].logprob(), want_logprob[i], 1e-4) << i;
    }
    if (c.presence > 0 && c.frequency >= 0) {
      EXPECT_NE(got.tokens, plain.tokens) << "the penalty changed nothing";
    }
  }
}

TEST_F(SamplingExtrasTest, WorkerRefusesWhatItCannotDo) {
  const model::ChatTemplate& chat = model_->chat_template();
  auto refused = [&](const Sampling& r, const ConstraintMaker* maker,
                     const std::string& needle) {
    auto p = PrepareRequest(*model_, chat, r, maker);
    ASSERT_FALSE(p.ok()) << needle;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(p.status().message(), needle)) << p.status();
  };
  refused(Json(Request("x", 4)), nullptr, "not supported by this worker");
  const ConstraintMaker empty;
  refused(Json(Request("x", 4)), &empty, "not supported by this worker");
  Sampling r = Request("x", 4);
  r.mutable_response_format()->set_type("xml");
  refused(r, &maker_, "response_format.type");
  r = Request("x", 4);
  r.set_top_logprobs(3);
  refused(r, nullptr, "top_logprobs");
  r.set_logprobs(true);
  r.set_top_logprobs(21);
  refused(r, nullptr, "top_logprobs");
  r = Request("x", 4);
  r.set_presence_penalty(2.5f);
  refused(r, nullptr, "presence_penalty");
  r = Request("x", 4);
  r.set_frequency_penalty(std::nanf(""));
  refused(r, nullptr, "frequency_penalty");
  // A maker's refusal reaches the caller as it is.
  const ConstraintMaker bad = [](const lorad::worker::v1::ResponseFormat&)
      -> absl::StatusOr<std::unique_ptr<model::TokenConstraint>> {
    return absl::InvalidArgumentError("response_format.json_schema: bad");
  };
  refused(Json(Request("x", 4)), &bad, "response_format.json_schema: bad");
  // Text needs no maker.
  r = Request("x", 4);
  r.mutable_response_format()->set_type("text");
  EXPECT_TRUE(PrepareRequest(*model_, chat, r, nullptr).ok());
  EXPECT_TRUE(
      PrepareRequest(*model_, chat, Json(Request("x", 4)), &maker_).ok());
}

}  // namespace
}  // namespace lorad::worker
