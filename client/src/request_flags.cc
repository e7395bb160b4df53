#include "request_flags.h"

#include <limits>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "lorad/common/status_macros.h"

namespace lorad::client {
namespace {

constexpr int32_t kIntMax = std::numeric_limits<int32_t>::max();

// Assigns a parsed optional flag value through `setter` when present.
#define LORAD_SET_IF_GIVEN(expr, setter)           \
  do {                                             \
    auto flag_or_ = (expr);                        \
    if (!flag_or_.ok()) return flag_or_.status();  \
    if (flag_or_->has_value()) setter(**flag_or_); \
  } while (0)

absl::Status CheckOneOf(const ParsedArgs& args, std::string_view name,
                        const std::vector<std::string>& allowed) {
  std::optional<std::string> value = args.Get(name);
  if (!value.has_value()) return absl::OkStatus();
  for (const std::string& a : allowed) {
    if (*value == a) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--", std::string(name), ": expected one of ",
                   absl::StrJoin(allowed, ", "), ", got \"", *value, "\""));
}

}  // namespace

const std::vector<FlagSpec>& FineTuneFlags() {
  static const auto* flags = new std::vector<FlagSpec>{
      {"train", true, false, "FILE|ID", "training JSONL file or dataset id"},
      {"validation", true, false, "FILE|ID",
       "validation JSONL file or dataset id"},
      {"model", true, false, "NAME", "base model (server default: tiny)"},
      {"rank", true, false, "N", "LoRA rank r (8)"},
      {"alpha", true, false, "X", "LoRA alpha (16)"},
      {"dropout", true, false, "X", "LoRA dropout (0.05)"},
      {"targets", true, false, "LIST",
       "comma-separated modules (q_proj,k_proj,v_proj,o_proj,...)"},
      {"lr", true, false, "X", "learning rate (2e-4)"},
      {"epochs", true, false, "N", "epochs (1)"},
      {"max-steps", true, false, "N", "optimizer steps; 0 = from epochs"},
      {"batch-size", true, false, "N", "sequences per micro-batch (4)"},
      {"grad-accum", true, false, "N", "micro-batches per step (1)"},
      {"max-seq-len", true, false, "N", "tokens per sequence (512)"},
      {"warmup", true, false, "N", "warmup steps (0)"},
      {"scheduler", true, false, "NAME", "cosine | linear | constant"},
      {"max-grad-norm", true, false, "X", "gradient clipping norm (1.0)"},
      {"weight-decay", true, false, "X", "AdamW weight decay (0)"},
      {"compute-dtype", true, false, "NAME", "auto | float32 | bfloat16"},
      {"quantization", true, false, "NAME",
       "how the base is held: nf4 (default) | int8 (LLM.int8)"},
      {"packing", false, false, "", "pack examples to --max-seq-len"},
      {"gradient-checkpointing", false, false, "",
       "recompute each block in backward (default: on unless the job fits "
       "without it)"},
      {"no-gradient-checkpointing", false, false, "", "never recompute blocks"},
      {"optimizer", true, false, "NAME", "adamw | adamw_8bit"},
      {"early-stopping-patience", true, false, "N",
       "stop after N evaluations without a lower eval loss; keep the best "
       "adapter"},
      {"train-on-prompt", false, false, "", "loss on prompt tokens too"},
      {"seed", true, false, "N", "random seed (42)"},
      {"eval-every", true, false, "N", "eval every N steps; 0 = at the end"},
      {"checkpoint-every", true, false, "N", "checkpoint every N steps (50)"},
      {"validation-split", true, false, "X",
       "fraction held out when no --validation"},
      {"suffix", true, false, "S", "adapter name suffix"},
      {"no-follow", false, false, "", "return once the job is created"},
      {"plot", false, false, "", "draw the loss curve when the job ends"},
  };
  return *flags;
}

absl::StatusOr<FineTuneOptions> ParseFineTuneOptions(const ParsedArgs& args) {
  FineTuneOptions options;
  if (std::optional<std::string> train = args.Get("train")) {
    if (!args.positional().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected argument \"", args.positional()[0], "\" with --train"));
    }
    options.train = *train;
  } else if (args.positional().size() == 1) {
    options.train = args.positional()[0];
  } else if (args.positional().empty()) {
    return absl::InvalidArgumentError("--train: required");
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument \"", args.positional()[1], "\""));
  }
  if (options.train.empty()) {
    return absl::InvalidArgumentError("--train: must not be empty");
  }
  options.validation = args.Get("validation").value_or("");
  if (args.Has("validation") && options.validation.empty()) {
    return absl::InvalidArgumentError("--validation: must not be empty");
  }
  options.follow = !args.Switch("no-follow");

  lorad::v1::CreateFineTuneJobRequest& req = options.request;
  if (std::optional<std::string> model = args.Get("model")) {
    if (model->empty()) {
      return absl::InvalidArgumentError("--model: must not be empty");
    }
    req.set_model(*model);
  }
  if (std::optional<std::string> suffix = args.Get("suffix")) {
    req.set_suffix(*suffix);
  }

  // Only touch hyperparameters when a flag names one, so that a request
  // without any carries no Hyperparameters message at all.
  lorad::v1::Hyperparameters hp;
  LORAD_SET_IF_GIVEN(IntFlag(args, "rank", 1, kIntMax), hp.set_rank);
  LORAD_SET_IF_GIVEN(FloatFlag(args, "alpha", 1e-6, 1e6), hp.set_alpha);
  LORAD_SET_IF_GIVEN(FloatFlag(args, "dropout", 0, 0.99), hp.set_dropout);
  LORAD_SET_IF_GIVEN(FloatFlag(args, "lr", 1e-12, 10), hp.set_learning_rate);
  LORAD_SET_IF_GIVEN(IntFlag(args, "epochs", 1, kIntMax), hp.set_epochs);
  LORAD_SET_IF_GIVEN(IntFlag(args, "max-steps", 0, kIntMax), hp.set_max_steps);
  LORAD_SET_IF_GIVEN(IntFlag(args, "batch-size", 1, kIntMax),
                     hp.set_batch_size);
  LORAD_SET_IF_GIVEN(IntFlag(args, "grad-accum", 1, kIntMax),
                     hp.set_gradient_accumulation);
  LORAD_SET_IF_GIVEN(IntFlag(args, "max-seq-len", 1, kIntMax),
                     hp.set_max_seq_len);
  LORAD_SET_IF_GIVEN(IntFlag(args, "warmup", 0, kIntMax), hp.set_warmup_steps);
  LORAD_SET_IF_GIVEN(FloatFlag(args, "max-grad-norm", 0, 1e6),
                     hp.set_max_grad_norm);
  LORAD_SET_IF_GIVEN(FloatFlag(args, "weight-decay", 0, 10),
                     hp.set_weight_decay);
  LORAD_SET_IF_GIVEN(Uint64Flag(args, "seed"), hp.set_seed);
  LORAD_SET_IF_GIVEN(IntFlag(args, "eval-every", 0, kIntMax),
                     hp.set_eval_every);
  LORAD_SET_IF_GIVEN(IntFlag(args, "checkpoint-every", 0, kIntMax),
                     hp.set_checkpoint_every);
  LORAD_SET_IF_GIVEN(FloatFlag(args, "validation-split", 0, 0.99),
                     hp.set_validation_split);
  LORAD_RETURN_IF_ERROR(
      CheckOneOf(args, "scheduler", {"cosine", "linear", "constant"}));
  if (std::optional<std::string> s = args.Get("scheduler")) {
    hp.set_lr_scheduler(*s);
  }
  LORAD_RETURN_IF_ERROR(
      CheckOneOf(args, "compute-dtype", {"auto", "float32", "bfloat16"}));
  if (std::optional<std::string> s = args.Get("compute-dtype")) {
    hp.set_compute_dtype(*s);
  }
  LORAD_RETURN_IF_ERROR(CheckOneOf(args, "quantization", {"nf4", "int8"}));
  if (std::optional<std::string> s = args.Get("quantization")) {
    hp.set_quantization(*s);
  }
  if (std::optional<std::string> targets = args.Get("targets")) {
    for (absl::string_view t : absl::StrSplit(*targets, ',')) {
      t = absl::StripAsciiWhitespace(t);
      if (!t.empty()) hp.add_target_modules(std::string(t));
    }
    if (hp.target_modules_size() == 0) {
      return absl::InvalidArgumentError("--targets: no module names given");
    }
  }
  hp.set_packing(args.Switch("packing"));
  if (args.Switch("gradient-checkpointing") &&
      args.Switch("no-gradient-checkpointing")) {
    return absl::InvalidArgumentError(
        "--gradient-checkpointing and --no-gradient-checkpointing exclude "
        "each other");
  }
  // Neither: unset, and the server chooses from its memory estimate.
  if (args.Switch("gradient-checkpointing")) {
    hp.set_gradient_checkpointing(true);
  } else if (args.Switch("no-gradient-checkpointing")) {
    hp.set_gradient_checkpointing(false);
  }
  LORAD_RETURN_IF_ERROR(CheckOneOf(args, "optimizer", {"adamw", "adamw_8bit"}));
  if (std::optional<std::string> s = args.Get("optimizer")) {
    hp.set_optimizer(*s);
  }
  LORAD_SET_IF_GIVEN(IntFlag(args, "early-stopping-patience", 0, kIntMax),
                     hp.set_early_stopping_patience);
  hp.set_train_on_prompt(args.Switch("train-on-prompt"));
  if (hp.ByteSizeLong() > 0) *req.mutable_hyperparameters() = std::move(hp);

  // proto3 cannot send an explicit zero: these reach the server as unset.
  if (args.Has("dropout") && req.hyperparameters().dropout() == 0) {
    options.warnings.push_back(
        "--dropout 0 is sent as unset; the server applies its default");
  }
  if (args.Has("seed") && req.hyperparameters().seed() == 0) {
    options.warnings.push_back(
        "--seed 0 is sent as unset; the server applies its default");
  }
  return options;
}

DatasetArgKind ClassifyDatasetArg(const std::string& arg, bool file_exists) {
  if (file_exists) return DatasetArgKind::kFile;
  if (arg.starts_with("ds-")) return DatasetArgKind::kDatasetId;
  return DatasetArgKind::kMissingFile;
}

const std::vector<FlagSpec>& GenerateFlags() {
  static const auto* flags = new std::vector<FlagSpec>{
      {"adapter", true, false, "NAME",
       "a registered adapter's name, or a succeeded fine-tune job's id"},
      {"max-tokens", true, false, "N", "new tokens at most (64)"},
      {"temperature", true, false, "X", "0 = greedy (default)"},
      {"top-k", true, false, "N", "0 = off"},
      {"top-p", true, false, "X", "1 = off"},
      {"seed", true, false, "N", "sampling seed"},
      {"stop", true, true, "S", "stop string (repeatable)"},
      {"repetition-penalty", true, false, "X", "1 = off"},
      {"presence-penalty", true, false, "X",
       "-2..2: lowers the logit of every token already generated (0 = off)"},
      {"frequency-penalty", true, false, "X",
       "-2..2: lowers a token's logit by this times its count so far"},
  };
  return *flags;
}

absl::StatusOr<lorad::v1::GenerateRequest> ParseGenerateRequest(
    const ParsedArgs& args, std::string prompt) {
  lorad::v1::GenerateRequest req;
  req.set_prompt(std::move(prompt));
  if (std::optional<std::string> adapter = args.Get("adapter")) {
    req.set_adapter(*adapter);
  }
  LORAD_SET_IF_GIVEN(IntFlag(args, "max-tokens", 1, kIntMax),
                     req.set_max_new_tokens);
  LORAD_SET_IF_GIVEN(FloatFlag(args, "temperature", 0, 100),
                     req.set_temperature);
  LORAD_SET_IF_GIVEN(IntFlag(args, "top-k", 0, kIntMax), req.set_top_k);
  LORAD_SET_IF_GIVEN(FloatFlag(args, "top-p", 0, 1), req.set_top_p);
  LORAD_SET_IF_GIVEN(Uint64Flag(args, "seed"), req.set_seed);
  LORAD_SET_IF_GIVEN(FloatFlag(args, "repetition-penalty", 0, 100),
                     req.set_repetition_penalty);
  LORAD_SET_IF_GIVEN(FloatFlag(args, "presence-penalty", -2, 2),
                     req.set_presence_penalty);
  LORAD_SET_IF_GIVEN(FloatFlag(args, "frequency-penalty", -2, 2),
                     req.set_frequency_penalty);
  for (std::string& stop : args.GetAll("stop")) {
    if (stop.empty()) {
      return absl::InvalidArgumentError("--stop: must not be empty");
    }
    req.add_stop(std::move(stop));
  }
  return req;
}

#undef LORAD_SET_IF_GIVEN

}  // namespace lorad::client
