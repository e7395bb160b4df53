#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "lorad/common/hyperparameter_defaults.h"
#include "request_flags.h"

namespace lorad::client {
namespace {

// The hyperparameters loractl fills when it sends any.
lorad::v1::Hyperparameters* WithDefaults(lorad::v1::Hyperparameters* hp) {
  hp->set_rank(kDefaultRank);
  hp->set_learning_rate(kDefaultLearningRate);
  hp->set_dropout(kDefaultDropout);
  hp->set_max_grad_norm(kDefaultMaxGradNorm);
  return hp;
}

absl::StatusOr<FineTuneOptions> ParseFineTune(
    const std::vector<std::string>& args) {
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, FineTuneFlags());
  if (!parsed.ok()) return parsed.status();
  return ParseFineTuneOptions(*parsed);
}

absl::StatusOr<lorad::v1::GenerateRequest> ParseGenerate(
    const std::vector<std::string>& args) {
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, GenerateFlags());
  if (!parsed.ok()) return parsed.status();
  return ParseGenerateRequest(*parsed, "hello");
}

TEST(FineTuneFlagsTest, OnlyTrainGivenSetsNothingElse) {
  auto options = ParseFineTune({"--train", "data.jsonl"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->train, "data.jsonl");
  EXPECT_TRUE(options->validation.empty());
  EXPECT_TRUE(options->follow);
  // The server fills defaults: an empty request on the wire.
  EXPECT_EQ(options->request.ByteSizeLong(), 0u);
  EXPECT_FALSE(options->request.has_hyperparameters());
}

TEST(FineTuneFlagsTest, TrainMayBePositional) {
  auto options = ParseFineTune({"ds-0123456789abcdef", "--no-follow"});
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->train, "ds-0123456789abcdef");
  EXPECT_FALSE(options->follow);
  EXPECT_FALSE(ParseFineTune({}).ok());
  EXPECT_FALSE(ParseFineTune({"a", "b"}).ok());
  EXPECT_FALSE(ParseFineTune({"--train", "a", "b"}).ok());
}

TEST(FineTuneFlagsTest, EveryFlagReachesItsField) {
  auto options = ParseFineTune({"--train",
                                "t.jsonl",
                                "--validation",
                                "ds-1",
                                "--model",
                                "tiny",
                                "--rank",
                                "16",
                                "--alpha",
                                "32",
                                "--dropout",
                                "0.1",
                                "--targets",
                                "q_proj, v_proj,,",
                                "--lr",
                                "1e-4",
                                "--epochs",
                                "3",
                                "--max-steps",
                                "100",
                                "--batch-size",
                                "8",
                                "--grad-accum",
                                "2",
                                "--max-seq-len",
                                "256",
                                "--warmup",
                                "10",
                                "--scheduler",
                                "linear",
                                "--packing",
                                "--gradient-checkpointing",
                                "--seed",
                                "7",
                                "--eval-every",
                                "20",
                                "--checkpoint-every",
                                "25",
                                "--validation-split",
                                "0.1",
                                "--suffix",
                                "mine",
                                "--max-grad-norm",
                                "0.5",
                                "--weight-decay",
                                "0.01",
                                "--compute-dtype",
                                "bfloat16",
                                "--train-on-prompt",
                                "--optimizer",
                                "adamw_8bit",
                                "--early-stopping-patience",
                                "3"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->validation, "ds-1");
  const auto& req = options->request;
  EXPECT_EQ(req.model(), "tiny");
  EXPECT_EQ(req.suffix(), "mine");
  EXPECT_TRUE(req.training_file().empty());  // Set once resolved.
  const auto& hp = req.hyperparameters();
  EXPECT_EQ(hp.rank(), 16);
  EXPECT_FLOAT_EQ(hp.alpha(), 32);
  EXPECT_FLOAT_EQ(hp.dropout(), 0.1f);
  ASSERT_EQ(hp.target_modules_size(), 2);
  EXPECT_EQ(hp.target_modules(0), "q_proj");
  EXPECT_EQ(hp.target_modules(1), "v_proj");
  EXPECT_FLOAT_EQ(hp.learning_rate(), 1e-4f);
  EXPECT_EQ(hp.epochs(), 3);
  EXPECT_EQ(hp.max_steps(), 100);
  EXPECT_EQ(hp.batch_size(), 8);
  EXPECT_EQ(hp.gradient_accumulation(), 2);
  EXPECT_EQ(hp.max_seq_len(), 256);
  EXPECT_EQ(hp.warmup_steps(), 10);
  EXPECT_EQ(hp.lr_scheduler(), "linear");
  EXPECT_TRUE(hp.packing());
  EXPECT_TRUE(hp.gradient_checkpointing());
  EXPECT_TRUE(hp.train_on_prompt());
  EXPECT_EQ(hp.seed(), 7u);
  EXPECT_EQ(hp.eval_every(), 20);
  EXPECT_EQ(hp.checkpoint_every(), 25);
  EXPECT_FLOAT_EQ(hp.validation_split(), 0.1f);
  EXPECT_FLOAT_EQ(hp.max_grad_norm(), 0.5f);
  EXPECT_FLOAT_EQ(hp.weight_decay(), 0.01f);
  EXPECT_EQ(hp.compute_dtype(), "bfloat16");
  EXPECT_EQ(hp.optimizer(), "adamw_8bit");
  EXPECT_EQ(hp.early_stopping_patience(), 3);
}

// Gradient checkpointing has three states on the wire: on, off, and unset
// (the server chooses from its memory estimate).
TEST(FineTuneFlagsTest, GradientCheckpointingOnOffOrLeftToTheServer) {
  auto unset = ParseFineTune({"--train", "t", "--rank", "4"});
  ASSERT_TRUE(unset.ok());
  EXPECT_FALSE(unset->request.hyperparameters().has_gradient_checkpointing());
  auto off = ParseFineTune({"--train", "t", "--no-gradient-checkpointing"});
  ASSERT_TRUE(off.ok());
  EXPECT_TRUE(off->request.hyperparameters().has_gradient_checkpointing());
  EXPECT_FALSE(off->request.hyperparameters().gradient_checkpointing());
  auto both = ParseFineTune({"--train", "t", "--gradient-checkpointing",
                             "--no-gradient-checkpointing"});
  ASSERT_FALSE(both.ok());
  EXPECT_TRUE(absl::StrContains(both.status().message(), "exclude"));
  auto bad = ParseFineTune({"--train", "t", "--optimizer", "sgd"});
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "--optimizer"));
}

TEST(FineTuneFlagsTest, DpoQuantizationAndPagedOptimizerFlags) {
  auto options =
      ParseFineTune({"--train", "pairs.jsonl", "--method", "dpo", "--dpo-beta",
                     "0.25", "--dpo-loss-type", "ipo", "--quantization", "int8",
                     "--optimizer", "paged_adamw_8bit"});
  ASSERT_TRUE(options.ok()) << options.status();
  const auto& hp = options->request.hyperparameters();
  EXPECT_EQ(hp.method(), "dpo");
  EXPECT_FLOAT_EQ(hp.dpo_beta(), 0.25f);
  EXPECT_EQ(hp.dpo_loss_type(), "ipo");
  EXPECT_EQ(hp.quantization(), "int8");
  EXPECT_EQ(hp.optimizer(), "paged_adamw_8bit");

  // Only --method: loractl gives the defaults the server would have given a
  // request without hyperparameters; the server fills beta and loss type.
  options = ParseFineTune({"--train", "t", "--method", "dpo"});
  ASSERT_TRUE(options.ok()) << options.status();
  lorad::v1::CreateFineTuneJobRequest expected;
  WithDefaults(expected.mutable_hyperparameters())->set_method("dpo");
  EXPECT_EQ(options->request.SerializeAsString(), expected.SerializeAsString());

  options = ParseFineTune({"--train", "t", "--optimizer", "paged_adamw"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->request.hyperparameters().optimizer(), "paged_adamw");
  options = ParseFineTune({"--train", "t", "--method", "sft"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->request.hyperparameters().method(), "sft");
}

TEST(FineTuneFlagsTest, HelpListsTheNewChoices) {
  auto help = [](const std::string& name) {
    for (const FlagSpec& f : FineTuneFlags()) {
      if (f.name == name) return std::string(f.help);
    }
    return std::string();
  };
  for (const char* optimizer :
       {"adamw", "adamw_8bit", "paged_adamw", "paged_adamw_8bit"}) {
    EXPECT_TRUE(absl::StrContains(help("optimizer"), optimizer)) << optimizer;
  }
  EXPECT_TRUE(absl::StrContains(help("method"), "dpo"));
  EXPECT_TRUE(absl::StrContains(help("dpo-loss-type"), "ipo"));
  EXPECT_TRUE(absl::StrContains(help("quantization"), "int8"));
  EXPECT_TRUE(absl::StrContains(help("dpo-beta"), "0.1"));
}

// One flag sets its field; the fields whose zero would mean "off" or
// "missing" once hyperparameters are sent take their defaults.
TEST(FineTuneFlagsTest, OneFlagSetsOneFieldAndTheDefaultsOfTheRest) {
  auto options = ParseFineTune({"--train", "t", "--rank", "4"});
  ASSERT_TRUE(options.ok());
  lorad::v1::CreateFineTuneJobRequest expected;
  WithDefaults(expected.mutable_hyperparameters())->set_rank(4);
  EXPECT_EQ(options->request.SerializeAsString(), expected.SerializeAsString());
  EXPECT_FLOAT_EQ(options->request.hyperparameters().dropout(), 0.05f);

  // Named zeros stay zeros (dropout and clipping off).
  options =
      ParseFineTune({"--train", "t", "--dropout", "0", "--max-grad-norm", "0"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->request.hyperparameters().dropout(), 0.0f);
  EXPECT_EQ(options->request.hyperparameters().max_grad_norm(), 0.0f);
  EXPECT_EQ(options->request.hyperparameters().rank(), kDefaultRank);

  // No flag: no hyperparameters at all.
  options = ParseFineTune({"--train", "t"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_FALSE(options->request.has_hyperparameters());
}

TEST(FineTuneFlagsTest, BadNumbersNameTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--rank", "abc"}, "--rank"},
      {{"--rank", "0"}, "--rank"},
      {{"--alpha", "-1"}, "--alpha"},
      {{"--dropout", "1.5"}, "--dropout"},
      {{"--lr", "fast"}, "--lr"},
      {{"--lr", "0"}, "--lr"},
      {{"--epochs", "1.5"}, "--epochs"},
      {{"--max-steps", "-3"}, "--max-steps"},
      {{"--batch-size", "99999999999"}, "--batch-size"},
      {{"--grad-accum", "0"}, "--grad-accum"},
      {{"--seed", "-1"}, "--seed"},
      {{"--validation-split", "1"}, "--validation-split"},
      {{"--scheduler", "step"}, "--scheduler"},
      {{"--targets", " , "}, "--targets"},
      {{"--compute-dtype", "fp8"}, "--compute-dtype"},
      {{"--method", "ppo"}, "--method"},
      {{"--dpo-beta", "0"}, "--dpo-beta"},
      {{"--dpo-beta", "-0.5"}, "--dpo-beta"},
      {{"--dpo-beta", "nan"}, "--dpo-beta"},
      {{"--dpo-beta", "101"}, "--dpo-beta"},
      {{"--dpo-loss-type", "hinge"}, "--dpo-loss-type"},
      {{"--quantization", "fp8"}, "--quantization"},
      {{"--optimizer", "paged_lion"}, "--optimizer"},
  };
  for (const auto& [flags, name] : cases) {
    std::vector<std::string> args = {"--train", "t"};
    args.insert(args.end(), flags.begin(), flags.end());
    auto options = ParseFineTune(args);
    ASSERT_FALSE(options.ok()) << flags[0] << " " << flags[1];
    EXPECT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(options.status().message(), name + ":"))
        << options.status().message();
  }
}

// --seed 0 cannot be told from unset; --dropout 0 can (it is "off" once
// hyperparameters are sent, and naming it sends them).
TEST(FineTuneFlagsTest, WarnsWhenZeroCannotBeSent) {
  auto options = ParseFineTune({"--train", "t", "--seed", "0"});
  ASSERT_TRUE(options.ok());
  ASSERT_EQ(options->warnings.size(), 1u);
  EXPECT_TRUE(absl::StrContains(options->warnings[0], "--seed 0"));
  options = ParseFineTune({"--train", "t", "--dropout", "0"});
  ASSERT_TRUE(options.ok());
  EXPECT_TRUE(options->warnings.empty());
  EXPECT_TRUE(options->request.has_hyperparameters());
}

TEST(DatasetArgTest, FilesWinOverIdLookingNames) {
  EXPECT_EQ(ClassifyDatasetArg("ds-abc", true), DatasetArgKind::kFile);
  EXPECT_EQ(ClassifyDatasetArg("ds-abc", false), DatasetArgKind::kDatasetId);
  EXPECT_EQ(ClassifyDatasetArg("x.jsonl", true), DatasetArgKind::kFile);
  EXPECT_EQ(ClassifyDatasetArg("x.jsonl", false), DatasetArgKind::kMissingFile);
}

TEST(GenerateFlagsTest, OnlyGivenFieldsAreSet) {
  auto request = ParseGenerate({});
  ASSERT_TRUE(request.ok());
  lorad::v1::GenerateRequest expected;
  expected.set_prompt("hello");
  EXPECT_EQ(request->SerializeAsString(), expected.SerializeAsString());

  request =
      ParseGenerate({"--adapter", "ft-1", "--max-tokens", "5", "--temperature",
                     "0.7", "--top-k", "40", "--top-p", "0.9", "--seed", "3",
                     "--stop", "\n", "--stop", "END"});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->adapter(), "ft-1");
  EXPECT_EQ(request->max_new_tokens(), 5);
  EXPECT_FLOAT_EQ(request->temperature(), 0.7f);
  EXPECT_EQ(request->top_k(), 40);
  EXPECT_FLOAT_EQ(request->top_p(), 0.9f);
  EXPECT_EQ(request->seed(), 3u);
  ASSERT_EQ(request->stop_size(), 2);
  EXPECT_EQ(request->stop(1), "END");
}

TEST(GenerateFlagsTest, OpenAiPenalties) {
  auto request = ParseGenerate(
      {"--presence-penalty", "-1.5", "--frequency-penalty", "0.25"});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_FLOAT_EQ(request->presence_penalty(), -1.5f);
  EXPECT_FLOAT_EQ(request->frequency_penalty(), 0.25f);
  EXPECT_TRUE(absl::StartsWith(
      ParseGenerate({"--presence-penalty", "3"}).status().message(),
      "--presence-penalty:"));
  EXPECT_TRUE(absl::StartsWith(
      ParseGenerate({"--frequency-penalty", "-2.5"}).status().message(),
      "--frequency-penalty:"));
}

TEST(GenerateFlagsTest, BadNumbersNameTheFlag) {
  EXPECT_TRUE(
      absl::StartsWith(ParseGenerate({"--max-tokens", "0"}).status().message(),
                       "--max-tokens:"));
  EXPECT_TRUE(absl::StartsWith(
      ParseGenerate({"--top-p", "2"}).status().message(), "--top-p:"));
  EXPECT_TRUE(absl::StartsWith(
      ParseGenerate({"--temperature", "hot"}).status().message(),
      "--temperature:"));
}

}  // namespace
}  // namespace lorad::client
