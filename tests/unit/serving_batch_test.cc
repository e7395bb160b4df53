// The serving engine: continuous batching with mixed adapters gives every
// request the output it gets alone; sampling, stop strings, chat, cancel;
// hot replace under load; training and serving sharing the device.
#include <torch/torch.h>

#include <atomic>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "lorad/worker/adapter_pool.h"
#include "lorad/worker/engine.h"
#include "lorad/worker/trainer.h"
#include "serving_test_util.h"

namespace lorad::worker {
namespace {

using testing::AllTargets;
using testing::WriteAdapter;

struct Result {
  absl::Status status;
  std::vector<int32_t> tokens;
  std::string text;
  std::string finish;
  lorad::worker::v1::GenerateUsage usage;
};

Result Drain(GenerationStream& stream) {
  Result r;
  lorad::worker::v1::GenerateChunk m;
  for (;;) {
    auto e = stream.Next(&m, absl::Seconds(60));
    if (e == GenerationStream::Event::kEnd) break;
    if (e == GenerationStream::Event::kTimeout) {
      r.status = absl::DeadlineExceededError("no message in 60 s");
      return r;
    }
    r.text += m.text();
    for (int32_t t : m.token_ids()) r.tokens.push_back(t);
    if (!m.finish_reason().empty()) {
      r.finish = m.finish_reason();
      r.usage = m.usage();
    }
  }
  r.status = stream.status();
  return r;
}

lorad::worker::v1::Sampling Greedy(const std::string& prompt, int max_new) {
  lorad::worker::v1::Sampling r;
  r.set_prompt(prompt);
  r.set_max_new_tokens(max_new);
  return r;
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::TestRoot("engine");
    model_ = testing::LoadTiny(root_);
    ASSERT_NE(model_, nullptr);
    AdapterPoolOptions o;
    o.max_device_adapters = 3;
    o.base_model_names = {"tiny"};
    pool_ = std::make_unique<AdapterPool>(model_.get(), o);
    const model::ModelConfig& c = model_->config();
    struct Spec {
      const char* name;
      int64_t rank;
      double alpha;
      std::vector<std::string> targets;
    } specs[] = {{"all4", 4, 8, AllTargets()},
                 {"qv8", 8, 8, {"q_proj", "v_proj"}},
                 {"mlp2", 2, 6, {"gate_proj", "up_proj", "down_proj"}},
                 {"ko16", 16, 16, {"k_proj", "o_proj"}}};
    uint64_t seed = 100;
    for (const Spec& s : specs) {
      std::string dir = root_ + "/adapters/" + s.name;
      WriteAdapter(dir, c, s.rank, s.alpha, s.targets, seed++);
      ASSERT_TRUE(pool_->Load(s.name, 1, dir, false).ok());
    }
  }

  std::shared_ptr<const AdapterSet> Get(const std::string& name) {
    if (name.empty()) return nullptr;
    auto a = pool_->Acquire(name);
    EXPECT_TRUE(a.ok()) << a.status();
    return a.ok() ? *a : nullptr;
  }

  Result RunAlone(Engine& engine, const lorad::worker::v1::Sampling& req,
                  const std::string& adapter) {
    auto s = engine.Submit(req, Get(adapter));
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? Drain(**s) : Result{s.status()};
  }

  std::string root_;
  std::unique_ptr<LlamaModel> model_;
  std::unique_ptr<AdapterPool> pool_;
};

TEST_F(EngineTest, MixedBatchGivesEveryRequestItsAloneTokens) {
  Engine engine(model_.get(), EngineOptions());
  struct Case {
    std::string prompt, adapter;
  };
  std::vector<Case> cases = {
      {"The quick brown fox", ""},
      {"The quick brown fox", "all4"},
      {"The quick brown fox", "qv8"},
      {"The quick brown fox", "mlp2"},
      {"The quick brown fox", "ko16"},
      {"hello", "all4"},
      {"a much longer prompt that has many more tokens in it", "qv8"},
      {"x", ""},
      {"0123456789", "mlp2"},
      {"Zebra", "ko16"}};
  std::vector<Result> alone;
  for (const Case& c : cases) {
    alone.push_back(RunAlone(engine, Greedy(c.prompt, 20), c.adapter));
    ASSERT_TRUE(alone.back().status.ok()) << alone.back().status;
    ASSERT_EQ(alone.back().tokens.size(),
              static_cast<size_t>(alone.back().usage.completion_tokens()));
  }
  // Each adapter changes the output of the shared prompt.
  for (int i = 1; i <= 4; ++i) {
    EXPECT_NE(alone[i].tokens, alone[0].tokens) << cases[i].adapter;
  }
  std::vector<std::shared_ptr<GenerationStream>> streams;
  for (const Case& c : cases) {
    auto s = engine.Submit(Greedy(c.prompt, 20), Get(c.adapter));
    ASSERT_TRUE(s.ok());
    streams.push_back(*s);
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    Result mixed = Drain(*streams[i]);
    ASSERT_TRUE(mixed.status.ok()) << mixed.status;
    EXPECT_EQ(mixed.tokens, alone[i].tokens)
        << cases[i].prompt << " / " << cases[i].adapter;
    EXPECT_EQ(mixed.text, alone[i].text);
  }
  EXPECT_GE(engine.stats().largest_batch, 5);
}

TEST_F(EngineTest, RequestsJoinARunningBatch) {
  Engine engine(model_.get(), EngineOptions());
  Result alone = RunAlone(engine, Greedy("late joiner", 8), "qv8");
  auto first = engine.Submit(Greedy("first", 60), Get("all4"));
  ASSERT_TRUE(first.ok());
  // Wait until the first request is decoding, then join it.
  lorad::worker::v1::GenerateChunk m;
  ASSERT_EQ((*first)->Next(&m, absl::Seconds(60)),
            GenerationStream::Event::kMessage);
  auto late = engine.Submit(Greedy("late joiner", 8), Get("qv8"));
  ASSERT_TRUE(late.ok());
  Result joined = Drain(**late);
  ASSERT_TRUE(joined.status.ok());
  EXPECT_EQ(joined.tokens, alone.tokens);
  Result rest = Drain(**first);
  ASSERT_TRUE(rest.status.ok());
  EXPECT_EQ(static_cast<int>(rest.tokens.size()) + m.token_ids_size(),
            rest.usage.completion_tokens());
  EXPECT_GE(engine.stats().largest_batch, 2);
}

TEST_F(EngineTest, EngineMatchesFullRecomputeWithoutCache) {
  Engine engine(model_.get(), EngineOptions());
  for (const std::string adapter : {"", "all4", "ko16"}) {
    Result r = RunAlone(engine, Greedy("Once upon", 12), adapter);
    ASSERT_TRUE(r.status.ok());
    auto set = Get(adapter);
    std::vector<int64_t> ids = {model_->config().bos_token_id};
    for (int32_t t : model_->tokenizer().Encode("Once upon")) ids.push_back(t);
    std::vector<int32_t> want;
    torch::NoGradGuard no_grad;
    ForwardOptions fo;
    fo.adapter = set.get();
    for (int i = 0; i < 12; ++i) {
      torch::Tensor logits =
          model_->Forward(torch::tensor(ids).unsqueeze(0), fo)[0][-1];
      const int64_t next = logits.argmax().item<int64_t>();
      if (next == model_->config().eos_token_ids[0]) break;
      want.push_back(static_cast<int32_t>(next));
      ids.push_back(next);
    }
    EXPECT_EQ(r.tokens, want) << "adapter " << adapter;
  }
}

TEST_F(EngineTest, SampledOutputDependsOnSeedNotOnBatch) {
  Engine engine(model_.get(), EngineOptions());
  auto sampled = [](uint64_t seed) {
    lorad::worker::v1::Sampling r = Greedy("Sample me", 16);
    r.set_temperature(0.9f);
    r.set_top_k(40);
    r.set_top_p(0.95f);
    r.set_repetition_penalty(1.3f);
    r.set_seed(seed);
    return r;
  };
  Result a = RunAlone(engine, sampled(7), "all4");
  Result b = RunAlone(engine, sampled(7), "all4");
  Result c = RunAlone(engine, sampled(8), "all4");
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_NE(a.tokens, c.tokens);
  std::vector<std::shared_ptr<GenerationStream>> streams;
  for (const char* adapter : {"", "qv8", "all4", "mlp2"}) {
    auto s = engine.Submit(sampled(adapter == std::string("all4") ? 7 : 3),
                           Get(adapter));
    ASSERT_TRUE(s.ok());
    streams.push_back(*s);
  }
  std::vector<Result> results;
  for (auto& s : streams) results.push_back(Drain(*s));
  EXPECT_EQ(results[2].tokens, a.tokens);
}

TEST_F(EngineTest, StopStringsMaxTokensAndUsage) {
  Engine engine(model_.get(), EngineOptions());
  Result full = RunAlone(engine, Greedy("stop test", 30), "all4");
  ASSERT_TRUE(full.status.ok());
  EXPECT_EQ(full.finish, "length");
  EXPECT_EQ(full.usage.prompt_tokens(), 1 + 9);
  EXPECT_EQ(full.usage.completion_tokens(), 30);
  EXPECT_GT(full.usage.time_to_first_token_seconds(), 0);
  EXPECT_LE(full.usage.time_to_first_token_seconds(),
            full.usage.total_seconds());
  // Stop on a piece of what it would say.
  ASSERT_GE(full.text.size(), 8u);
  std::string stop = full.text.substr(5, 2);
  lorad::worker::v1::Sampling req = Greedy("stop test", 30);
  req.add_stop(stop);
  Result stopped = RunAlone(engine, req, "all4");
  ASSERT_TRUE(stopped.status.ok());
  EXPECT_EQ(stopped.finish, "stop");
  EXPECT_EQ(stopped.text, full.text.substr(0, full.text.find(stop)));
  EXPECT_LT(stopped.usage.completion_tokens(), 30);

  lorad::worker::v1::Sampling bad = Greedy("x", 4);
  bad.set_top_p(2);
  EXPECT_TRUE(absl::IsInvalidArgument(engine.Submit(bad, nullptr).status()));
  bad = Greedy("x", 5000);
  EXPECT_TRUE(absl::IsInvalidArgument(engine.Submit(bad, nullptr).status()));
}

TEST_F(EngineTest, ChatMessagesRenderWithTheTemplateOrPlainFallback) {
  std::vector<model::ChatTurn> turns = {{"system", "Be brief."},
                                        {"user", "Hi"}};
  auto plain = model::RenderChat(model::ChatTemplate(), turns);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, "system: Be brief.\nuser: Hi\nassistant:");
  // Templates are executed (tests/unit/chat_template_test.cc has the
  // transformers goldens); the token closing a turn is found in them.
  auto llama3 = model::ChatTemplate::FromTemplateText(
      "{% for m in messages %}<|start_header_id|>{{ m.role }}"
      "<|end_header_id|>\n\n{{ m.content|trim }}<|eot_id|>{% endfor %}"
      "{% if add_generation_prompt %}<|start_header_id|>assistant"
      "<|end_header_id|>\n\n{% endif %}");
  ASSERT_TRUE(llama3.ok()) << llama3.status();
  EXPECT_EQ(llama3->end_of_turn, "<|eot_id|>");
  EXPECT_EQ(*model::RenderChat(*llama3, turns),
            "<|start_header_id|>system<|end_header_id|>\n\nBe "
            "brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|"
            "eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_TRUE(absl::IsInvalidArgument(model::RenderChat(*llama3, {}).status()));

  // The tiny model has no tokenizer_config.json: the plain form is used.
  Engine engine(model_.get(), EngineOptions());
  lorad::worker::v1::Sampling req;
  req.set_max_new_tokens(3);
  auto* m = req.add_messages();
  m->set_role("user");
  m->set_content("hi");
  Result r = RunAlone(engine, req, "");
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.usage.prompt_tokens(), 1 + 19);  // "user: hi\nassistant:"
  req.set_prompt("both");
  EXPECT_TRUE(absl::IsInvalidArgument(engine.Submit(req, nullptr).status()));
}

TEST_F(EngineTest, CancelledRequestLeavesTheOthersRunning) {
  Engine engine(model_.get(), EngineOptions());
  Result alone = RunAlone(engine, Greedy("keep going", 20), "mlp2");
  auto doomed = engine.Submit(Greedy("doomed", 200), Get("all4"));
  auto kept = engine.Submit(Greedy("keep going", 20), Get("mlp2"));
  ASSERT_TRUE(doomed.ok() && kept.ok());
  (*doomed)->Cancel();
  Result r = Drain(**kept);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.tokens, alone.tokens);
  Result d = Drain(**doomed);
  EXPECT_TRUE(absl::IsCancelled(d.status)) << d.status;
}

TEST_F(EngineTest, ReplaceAndUnloadWhileRequestsStream) {
  Engine engine(model_.get(), EngineOptions());
  const model::ModelConfig& c = model_->config();
  std::string v1 = root_ + "/adapters/x1", v2 = root_ + "/adapters/x2";
  WriteAdapter(v1, c, 4, 8, AllTargets(), 501);
  WriteAdapter(v2, c, 8, 8, {"q_proj", "down_proj"}, 502);
  ASSERT_TRUE(pool_->Load("x", 1, v1, false).ok());
  Result want1 = RunAlone(engine, Greedy("swap", 10), "x");
  ASSERT_TRUE(pool_->Load("x", 2, v2, false).ok());
  Result want2 = RunAlone(engine, Greedy("swap", 10), "x");
  ASSERT_NE(want1.tokens, want2.tokens);

  std::atomic<bool> stop{false};
  std::thread swapper([&] {
    for (int i = 3; !stop; ++i) {
      ASSERT_TRUE(pool_->Load("x", i, i % 2 ? v1 : v2, false).ok());
      // Churn the LRU too: other adapters come and go from the device.
      ASSERT_TRUE(pool_->Acquire(i % 3 ? "qv8" : "ko16").ok());
    }
  });
  std::vector<std::shared_ptr<GenerationStream>> streams;
  std::vector<Result> results;
  for (int i = 0; i < 24; ++i) {
    auto s = engine.Submit(Greedy("swap", 10), Get("x"));
    ASSERT_TRUE(s.ok());
    streams.push_back(*s);
    if (i % 4 == 0) results.push_back(Drain(*streams.back()));
  }
  for (int i = 0; i < 24; ++i) {
    if (i % 4 != 0) results.push_back(Drain(*streams[i]));
  }
  int v1_seen = 0, v2_seen = 0;
  for (const Result& r : results) {
    ASSERT_TRUE(r.status.ok()) << r.status;
    v1_seen += r.tokens == want1.tokens;
    v2_seen += r.tokens == want2.tokens;
  }
  stop = true;
  swapper.join();
  EXPECT_EQ(v1_seen + v2_seen, 24) << "a request saw a mixed adapter";

  // Unload while a request runs: it finishes, then nothing holds the adapter.
  std::weak_ptr<const AdapterSet> weak = Get("x");
  auto running = engine.Submit(Greedy("swap", 10), Get("x"));
  ASSERT_TRUE(running.ok());
  ASSERT_TRUE(pool_->Unload("x").ok());
  Result r = Drain(**running);
  ASSERT_TRUE(r.status.ok());
  // The engine drops the finished row and its batch plan in the turn that
  // finished it; a request that runs after that turn marks its end.
  auto after = engine.Submit(Greedy("after", 1), nullptr);
  ASSERT_TRUE(after.ok());
  ASSERT_TRUE(Drain(**after).status.ok());
  EXPECT_TRUE(weak.expired());
}

TEST_F(EngineTest, TrainingKeepsRunningWhileServing) {
  DeviceTurns turns(2);
  EngineOptions eo;
  eo.turns = &turns;
  Engine engine(model_.get(), eo);
  Result alone = RunAlone(engine, Greedy("served during training", 16), "qv8");

  std::string data;
  for (int i = 0; i < 16; ++i) {
    data += "{\"prompt\": \"item " + std::to_string(i) +
            "\", \"completion\": \" value\"}\n";
  }
  ASSERT_TRUE(WriteFileAtomic(root_ + "/train.jsonl", data).ok());
  TrainJob job;
  job.job_id = "bg";
  job.base_model_name = "tiny";
  job.training_path = root_ + "/train.jsonl";
  job.job_dir = root_ + "/job";
  job.adapter_dir = root_ + "/job/adapter";
  auto& hp = job.hp;
  hp.set_rank(4);
  hp.set_alpha(8);
  hp.add_target_modules("q_proj");
  hp.add_target_modules("v_proj");
  hp.set_learning_rate(1e-3f);
  hp.set_batch_size(4);
  hp.set_gradient_accumulation(1);
  hp.set_lr_scheduler("linear");
  hp.set_max_seq_len(32);
  hp.set_max_steps(100000);
  hp.set_seed(1);
  std::atomic<int> steps{0};
  std::atomic<bool> cancel{false};
  absl::Mutex mu;
  bool trainer_done = false;
  TrainCallbacks cb;
  cb.on_event = [&](const lorad::worker::v1::TrainEvent& e) {
    if (!e.has_step()) return;
    absl::MutexLock lock(&mu);
    ++steps;
  };
  cb.cancelled = [&] { return cancel.load(); };
  cb.device_turns = &turns;
  absl::Status train_status;
  std::thread trainer([&] {
    train_status = RunTraining(*model_, job, cb);
    absl::MutexLock lock(&mu);
    trainer_done = true;
  });
  {
    absl::MutexLock lock(&mu);
    auto two_steps_or_done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return steps >= 2 || trainer_done;
    };
    mu.Await(absl::Condition(&two_steps_or_done));
  }
  if (steps < 2) {
    trainer.join();
    FAIL() << "training ended before its second step: " << train_status;
  }

  const int steps_before = steps;
  std::vector<std::shared_ptr<GenerationStream>> streams;
  for (int i = 0; i < 6; ++i) {
    auto s = engine.Submit(Greedy("served during training", 16), Get("qv8"));
    ASSERT_TRUE(s.ok());
    streams.push_back(*s);
  }
  for (auto& s : streams) {
    Result r = Drain(*s);
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.tokens, alone.tokens);
  }
  const int steps_while_serving = steps - steps_before;
  cancel = true;
  trainer.join();
  EXPECT_TRUE(absl::IsCancelled(train_status)) << train_status;
  EXPECT_GT(turns.training_turns(), 0);
  // Serving 6 x 16 tokens took several engine turns, and training was
  // given one turn per two of them: it slowed down but did not stop.
  EXPECT_GE(steps_while_serving, 1);
}

}  // namespace
}  // namespace lorad::worker
