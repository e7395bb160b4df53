#include "jobs/job_validation.h"

#include <cmath>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lorad/common/excerpt.h"
#include "lorad/common/status_macros.h"
#include "lorad/model/block_linears.h"
#include "lorad/model/model_config.h"
#include "lorad/model/tiny_model.h"

namespace lorad::server {
namespace {

constexpr const char* kSchedulers[] = {"cosine", "linear", "constant"};
constexpr const char* kComputeDtypes[] = {"auto", "float32", "bfloat16"};
constexpr const char* kOptimizers[] = {"adamw", "adamw_8bit", "paged_adamw",
                                       "paged_adamw_8bit"};
constexpr const char* kMethods[] = {"sft", "dpo"};
constexpr const char* kDpoLossTypes[] = {"sigmoid", "ipo"};
constexpr const char* kQuantizations[] = {"nf4", "int8"};

template <typename T>
absl::Status Invalid(absl::string_view field, const T& value,
                     absl::string_view expected) {
  return absl::InvalidArgumentError(absl::StrCat(
      "hyperparameters.", field, " must be ", expected, ", got ", value));
}

template <typename Names>
bool OneOf(const std::string& value, const Names& allowed) {
  for (const char* a : allowed) {
    if (value == a) return true;
  }
  return false;
}

template <typename Names>
std::string Quoted(const Names& allowed) {
  return absl::StrJoin(allowed, ", ");
}

void FillDefaults(bool present, v1::Hyperparameters& hp) {
  if (!present) {
    hp.set_rank(kDefaultRank);
    hp.set_learning_rate(kDefaultLearningRate);
    hp.set_dropout(kDefaultDropout);
    hp.set_max_grad_norm(kDefaultMaxGradNorm);
  }
  if (hp.alpha() == 0) hp.set_alpha(16);
  if (hp.target_modules().empty()) {
    for (const char* m : model::kBlockLinearNames) hp.add_target_modules(m);
  }
  if (hp.epochs() == 0) hp.set_epochs(1);
  if (hp.batch_size() == 0) hp.set_batch_size(4);
  if (hp.gradient_accumulation() == 0) hp.set_gradient_accumulation(1);
  if (hp.lr_scheduler().empty()) hp.set_lr_scheduler("cosine");
  if (hp.max_seq_len() == 0) hp.set_max_seq_len(512);
  if (hp.seed() == 0) hp.set_seed(42);
  if (hp.checkpoint_every() == 0) hp.set_checkpoint_every(50);
  if (hp.compute_dtype().empty()) hp.set_compute_dtype("auto");
  if (hp.optimizer().empty()) hp.set_optimizer("adamw");
  if (hp.method().empty()) hp.set_method("sft");
  if (hp.method() == "dpo") {
    if (hp.dpo_beta() == 0) hp.set_dpo_beta(kDefaultDpoBeta);
    if (hp.dpo_loss_type().empty()) hp.set_dpo_loss_type("sigmoid");
  }
  if (hp.quantization().empty()) hp.set_quantization("nf4");
}

std::string Num(float v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return absl::StrCat(v);
}

bool FiniteIn(float v, float lo, float hi) {
  return std::isfinite(v) && v >= lo && v <= hi;
}

// DPO trains on preference pairs, SFT on everything else.
absl::Status CheckDatasetFitsMethod(const char* field,
                                    const v1::Dataset& dataset,
                                    const std::string& method) {
  const bool preference = dataset.format() == kPreferenceDatasetFormat;
  if (method == "dpo" && !preference) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": dataset ", dataset.id(), " is in format \"", dataset.format(),
        "\", but method \"dpo\" needs format \"", kPreferenceDatasetFormat,
        "\" (lines of {\"prompt\",\"chosen\",\"rejected\"})"));
  }
  if (method != "dpo" && preference) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": dataset ", dataset.id(), " is in format \"",
                     kPreferenceDatasetFormat,
                     "\", which needs method \"dpo\"; method \"", method,
                     "\" trains on format \"text\", \"prompt_completion\", "
                     "\"instruction\" or \"chat\""));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateName(absl::string_view field, absl::string_view value) {
  bool ok = !value.empty() && value.size() <= kMaxNameBytes &&
            value[0] != '.' && value[0] != '-';
  for (char c : value) {
    ok = ok && (absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                c == '.' || c == '_' || c == '-');
  }
  if (ok) return absl::OkStatus();
  if (value.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      field, " ", QuotedExcerpt(std::string_view(value.data(), value.size())),
      " (", value.size(), " bytes) must be 1 to ", kMaxNameBytes,
      " letters, digits, '.', '_' or '-', not starting with '.' or '-'"));
}

absl::Status ValidateFilename(absl::string_view field,
                              absl::string_view value) {
  bool ok = value.size() <= kMaxFilenameBytes &&
            IsValidUtf8(std::string_view(value.data(), value.size()));
  for (char c : value) {
    const unsigned char u = static_cast<unsigned char>(c);
    ok = ok && u >= 0x20 && u != 0x7F && c != '/' && c != '\\';
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      field, " ", QuotedExcerpt(std::string_view(value.data(), value.size())),
      " (", value.size(), " bytes) must be at most ", kMaxFilenameBytes,
      " bytes of UTF-8 without control characters, '/' or '\\'"));
}

absl::Status FillDefaultsAndValidate(bool present, v1::Hyperparameters& hp) {
  FillDefaults(present, hp);
  if (hp.rank() < 1 || hp.rank() > 1024) {
    return Invalid("rank", hp.rank(), "in [1, 1024]");
  }
  if (!FiniteIn(hp.alpha(), 0, kMaxAlpha) || hp.alpha() == 0) {
    return Invalid("alpha", Num(hp.alpha()),
                   absl::StrCat("a finite number in (0, ", kMaxAlpha, "]"));
  }
  if (!(hp.dropout() >= 0 && hp.dropout() < 1)) {
    return Invalid("dropout", Num(hp.dropout()), "in [0, 1)");
  }
  absl::flat_hash_set<std::string> seen;
  for (const std::string& m : hp.target_modules()) {
    if (!model::BlockLinearIndex(m).has_value()) {
      return Invalid("target_modules", QuotedExcerpt(m),
                     absl::StrCat("among ", model::BlockLinearNameList()));
    }
    if (!seen.insert(m).second) {
      return Invalid("target_modules", absl::StrCat(QuotedExcerpt(m), " twice"),
                     "distinct module names");
    }
  }
  if (!(hp.learning_rate() > 0 && hp.learning_rate() <= 1)) {
    return Invalid("learning_rate", Num(hp.learning_rate()), "in (0, 1]");
  }
  if (hp.epochs() < 0 || hp.epochs() > kMaxEpochs) {
    return Invalid("epochs", hp.epochs(),
                   absl::StrCat("in [1, ", kMaxEpochs, "]"));
  }
  if (hp.max_steps() < 0 || hp.max_steps() > kMaxSteps) {
    return Invalid("max_steps", hp.max_steps(),
                   absl::StrCat("in [0, ", kMaxSteps, "]"));
  }
  if (hp.batch_size() < 0 || hp.batch_size() > 1024) {
    return Invalid("batch_size", hp.batch_size(), "in [1, 1024]");
  }
  if (hp.gradient_accumulation() < 0 || hp.gradient_accumulation() > 4096) {
    return Invalid("gradient_accumulation", hp.gradient_accumulation(),
                   "in [1, 4096]");
  }
  if (!FiniteIn(hp.max_grad_norm(), 0, kMaxGradNorm)) {
    return Invalid("max_grad_norm", Num(hp.max_grad_norm()),
                   absl::StrCat("a finite number in [0, ", kMaxGradNorm, "]"));
  }
  if (!FiniteIn(hp.weight_decay(), 0, kMaxWeightDecay)) {
    return Invalid(
        "weight_decay", Num(hp.weight_decay()),
        absl::StrCat("a finite number in [0, ", kMaxWeightDecay, "]"));
  }
  if (hp.warmup_steps() < 0 || hp.warmup_steps() > kMaxSteps) {
    return Invalid("warmup_steps", hp.warmup_steps(),
                   absl::StrCat("in [0, ", kMaxSteps, "]"));
  }
  if (!OneOf(hp.lr_scheduler(), kSchedulers)) {
    return Invalid("lr_scheduler", QuotedExcerpt(hp.lr_scheduler()),
                   absl::StrCat("one of ", Quoted(kSchedulers)));
  }
  if (hp.max_seq_len() < 8 || hp.max_seq_len() > 131072) {
    return Invalid("max_seq_len", hp.max_seq_len(), "in [8, 131072]");
  }
  if (hp.eval_every() < 0 || hp.eval_every() > kMaxSteps) {
    return Invalid("eval_every", hp.eval_every(),
                   absl::StrCat("in [0, ", kMaxSteps, "]"));
  }
  if (hp.checkpoint_every() < 0 || hp.checkpoint_every() > kMaxSteps) {
    return Invalid("checkpoint_every", hp.checkpoint_every(),
                   absl::StrCat("in [0, ", kMaxSteps, "]"));
  }
  if (!(hp.validation_split() >= 0 && hp.validation_split() <= 0.5f)) {
    return Invalid("validation_split", Num(hp.validation_split()),
                   "in [0, 0.5]");
  }
  if (!OneOf(hp.compute_dtype(), kComputeDtypes)) {
    return Invalid("compute_dtype", QuotedExcerpt(hp.compute_dtype()),
                   absl::StrCat("one of ", Quoted(kComputeDtypes)));
  }
  if (!OneOf(hp.optimizer(), kOptimizers)) {
    return Invalid("optimizer", QuotedExcerpt(hp.optimizer()),
                   absl::StrCat("one of ", Quoted(kOptimizers)));
  }
  if (hp.early_stopping_patience() < 0 ||
      hp.early_stopping_patience() > kMaxSteps) {
    return Invalid("early_stopping_patience", hp.early_stopping_patience(),
                   absl::StrCat("in [0, ", kMaxSteps, "]"));
  }
  if (hp.early_stopping_patience() > 0 && hp.eval_every() == 0) {
    return Invalid("early_stopping_patience", hp.early_stopping_patience(),
                   "0 unless eval_every > 0 (early stopping compares "
                   "evaluations)");
  }
  if (!OneOf(hp.method(), kMethods)) {
    return Invalid("method", QuotedExcerpt(hp.method()),
                   absl::StrCat("one of ", Quoted(kMethods)));
  }
  if (hp.method() != "dpo" && hp.dpo_beta() != 0) {
    return Invalid("dpo_beta", Num(hp.dpo_beta()),
                   "unset unless method is dpo");
  }
  if (hp.method() != "dpo" && !hp.dpo_loss_type().empty()) {
    return Invalid("dpo_loss_type", QuotedExcerpt(hp.dpo_loss_type()),
                   "unset unless method is dpo");
  }
  if (hp.method() == "dpo") {
    if (!FiniteIn(hp.dpo_beta(), 0, kMaxDpoBeta) || hp.dpo_beta() == 0) {
      return Invalid("dpo_beta", Num(hp.dpo_beta()),
                     absl::StrCat("a finite number in (0, ", kMaxDpoBeta, "]"));
    }
    if (!OneOf(hp.dpo_loss_type(), kDpoLossTypes)) {
      return Invalid("dpo_loss_type", QuotedExcerpt(hp.dpo_loss_type()),
                     absl::StrCat("one of ", Quoted(kDpoLossTypes)));
    }
    if (hp.packing()) {
      return Invalid("packing", "true",
                     "false with method dpo (each pair is its own sequence)");
    }
  }
  if (!OneOf(hp.quantization(), kQuantizations)) {
    return Invalid("quantization", QuotedExcerpt(hp.quantization()),
                   absl::StrCat("one of ", Quoted(kQuantizations)));
  }
  return absl::OkStatus();
}

absl::Status ValidateModel(const std::string& model) {
  if (model == model::kTinyModelName) return absl::OkStatus();
  if (model.size() > kMaxModelPathBytes || !IsValidUtf8(model) ||
      model.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("model ", QuotedExcerpt(model), " (", model.size(),
                     " bytes) must be \"tiny\" or a directory path of at most ",
                     kMaxModelPathBytes, " bytes of UTF-8"));
  }
  const std::string shown = Excerpt(model, 256);
  std::error_code ec;
  if (!std::filesystem::exists(model, ec)) {
    return absl::NotFoundError(
        absl::StrCat("model path ", shown, " does not exist"));
  }
  if (!std::filesystem::is_directory(model, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat("model ", shown,
                     " is not a directory (want a Hugging Face model "
                     "directory or \"tiny\")"));
  }
  auto config = model::ModelConfig::FromDir(model);
  if (!config.ok()) {
    return absl::Status(
        config.status().code(),
        absl::StrCat("model ", shown, ": ", config.status().message()));
  }
  return absl::OkStatus();
}

absl::Status ValidateJob(DatasetStore& datasets, bool hyperparameters_present,
                         v1::FineTuneJob& job) {
  if (job.model().empty()) job.set_model(model::kTinyModelName);
  LORAD_RETURN_IF_ERROR(ValidateModel(job.model()));
  LORAD_RETURN_IF_ERROR(ValidateName("training_file", job.training_file()));
  if (!job.validation_file().empty()) {
    LORAD_RETURN_IF_ERROR(
        ValidateName("validation_file", job.validation_file()));
  }
  if (!job.suffix().empty()) {
    LORAD_RETURN_IF_ERROR(ValidateName("suffix", job.suffix()));
  }
  const std::pair<const char*, const std::string*> files[] = {
      {"training_file", &job.training_file()},
      {"validation_file", &job.validation_file()}};
  std::vector<std::pair<const char*, v1::Dataset>> found;
  for (const auto& [field, id] : files) {
    if (id->empty()) continue;
    auto dataset = datasets.GetDataset(*id);
    if (absl::IsNotFound(dataset.status())) {
      return absl::NotFoundError(absl::StrCat(field, ": dataset ", *id,
                                              " not found (upload it first)"));
    }
    LORAD_RETURN_IF_ERROR(dataset.status());
    found.emplace_back(field, *std::move(dataset));
  }
  LORAD_RETURN_IF_ERROR(FillDefaultsAndValidate(
      hyperparameters_present, *job.mutable_hyperparameters()));
  const v1::Hyperparameters& hp = job.hyperparameters();
  for (const auto& [field, dataset] : found) {
    LORAD_RETURN_IF_ERROR(CheckDatasetFitsMethod(field, dataset, hp.method()));
  }
  if (hp.early_stopping_patience() > 0 && job.validation_file().empty() &&
      hp.validation_split() == 0) {
    return Invalid("early_stopping_patience", hp.early_stopping_patience(),
                   "0 without validation data (give validation_file or "
                   "validation_split)");
  }
  return absl::OkStatus();
}

}  // namespace lorad::server
