#include "job_view.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "format.h"
#include "table.h"

namespace lorad::client {
namespace {

using lorad::v1::FineTuneJob;

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

std::string StepOfTotal(const FineTuneJob& job) {
  if (job.total_steps() <= 0) return absl::StrCat(job.step(), "/?");
  return absl::StrCat(job.step(), "/", job.total_steps());
}

std::string Loss(float loss, bool known) {
  return known ? absl::StrFormat("%.4f", loss) : "-";
}

std::string Hyperparameters(const lorad::v1::Hyperparameters& hp) {
  std::vector<std::string> parts = {
      absl::StrFormat("rank %d", hp.rank()),
      absl::StrFormat("alpha %g", hp.alpha()),
      absl::StrFormat("dropout %g", hp.dropout()),
      absl::StrFormat("lr %g", hp.learning_rate()),
      absl::StrFormat("epochs %d", hp.epochs()),
      absl::StrFormat("max_steps %d", hp.max_steps()),
      absl::StrFormat("batch %d", hp.batch_size()),
      absl::StrFormat("grad_accum %d", hp.gradient_accumulation()),
      absl::StrFormat("max_seq_len %d", hp.max_seq_len()),
      absl::StrFormat("warmup %d", hp.warmup_steps()),
      absl::StrCat("scheduler ", OrDash(hp.lr_scheduler())),
      absl::StrFormat("seed %d", hp.seed()),
  };
  if (hp.packing()) parts.push_back("packing");
  if (hp.gradient_checkpointing()) parts.push_back("gradient_checkpointing");
  if (!hp.optimizer().empty()) {
    parts.push_back(absl::StrCat("optimizer ", hp.optimizer()));
  }
  if (hp.quantization() == "int8") parts.push_back("quantization int8");
  if (hp.early_stopping_patience() > 0) {
    parts.push_back(absl::StrFormat("early_stopping_patience %d",
                                    hp.early_stopping_patience()));
  }
  if (hp.train_on_prompt()) parts.push_back("train_on_prompt");
  if (!hp.compute_dtype().empty()) {
    parts.push_back(absl::StrCat("dtype ", hp.compute_dtype()));
  }
  return absl::StrJoin(parts, ", ");
}

// "sft", "dpo beta 0.1 sigmoid", with ", int8" for an LLM.int8 base (nf4,
// the default, is not shown).
std::string Method(const lorad::v1::Hyperparameters& hp) {
  std::string text = hp.method().empty() ? "sft" : hp.method();
  if (hp.method() == "dpo") {
    absl::StrAppendFormat(&text, " beta %g %s", hp.dpo_beta(),
                          OrDash(hp.dpo_loss_type()));
  }
  if (hp.quantization() == "int8") absl::StrAppend(&text, ", int8");
  return text;
}

// `loractl get`'s method row: "dpo (beta 0.1, loss sigmoid)" or "sft".
std::string MethodDetails(const lorad::v1::Hyperparameters& hp) {
  if (hp.method() != "dpo") return hp.method().empty() ? "sft" : hp.method();
  return absl::StrFormat("dpo (beta %g, loss %s)", hp.dpo_beta(),
                         OrDash(hp.dpo_loss_type()));
}

// Which evaluation's adapter the job kept (early stopping), "-" if none.
std::string BestEval(const FineTuneJob& job) {
  if (job.best_step() <= 0) return "-";
  return absl::StrFormat("step %d, eval loss %.4f (its adapter kept%s)",
                         job.best_step(), job.best_eval_loss(),
                         job.stopped_early() ? "; stopped early" : "");
}

std::string TargetModules(const lorad::v1::Hyperparameters& hp) {
  if (hp.target_modules().empty()) return "-";
  return absl::StrJoin(hp.target_modules(), ",");
}

std::string EstimateBreakdown(const lorad::v1::MemoryEstimate& m) {
  return absl::StrCat(
      HumanBytes(m.total_bytes()), " (resident ",
      HumanBytes(m.resident_bytes()), ", base ", HumanBytes(m.base_bytes()),
      ", adapter ", HumanBytes(m.adapter_bytes()), ", optimizer ",
      HumanBytes(m.optimizer_bytes()), ", gradients ",
      HumanBytes(m.gradient_bytes()), ", activations ",
      HumanBytes(m.activation_bytes()), "; activations without/with ",
      "checkpointing ", HumanBytes(m.activation_bytes_no_checkpoint()), "/",
      HumanBytes(m.activation_bytes_checkpoint()),
      m.pageable_bytes() > 0 ? absl::StrCat("; pageable optimizer state ",
                                            HumanBytes(m.pageable_bytes()))
                             : "",
      ")");
}

std::string KeyValues(
    const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t width = 0;
  for (const auto& [key, value] : rows) width = std::max(width, key.size());
  std::string out;
  for (const auto& [key, value] : rows) {
    absl::StrAppend(&out, key, std::string(width - key.size() + 2, ' '), value,
                    "\n");
  }
  return out;
}

std::string ErrorText(const lorad::v1::JobError& error) {
  if (error.code().empty()) return error.message();
  return absl::StrCat(error.code(), ": ", error.message());
}

}  // namespace

std::string RenderJobsTable(const lorad::v1::ListFineTuneJobsResponse& jobs) {
  Table table({"ID", "STATE", "MODEL", "METHOD", "STEP/TOTAL", "LOSS",
               "CREATED", "ADAPTER"});
  for (const FineTuneJob& job : jobs.jobs()) {
    table.AddRow({job.id(), JobStateName(job.state()), OrDash(job.model()),
                  Method(job.hyperparameters()), StepOfTotal(job),
                  Loss(job.last_loss(), job.step() > 0),
                  FormatUnixTime(job.created_at_unix()),
                  OrDash(job.adapter_path())});
  }
  return table.Render();
}

std::string RenderDatasetsTable(const lorad::v1::ListDatasetsResponse& list) {
  Table table({"ID", "FORMAT", "EXAMPLES", "SIZE", "CREATED", "FILENAME"});
  for (const lorad::v1::Dataset& d : list.datasets()) {
    table.AddRow({d.id(), OrDash(d.format()), absl::StrCat(d.num_examples()),
                  HumanBytes(d.size_bytes()),
                  FormatUnixTime(d.created_at_unix()), OrDash(d.filename())});
  }
  return table.Render();
}

std::string RenderPeakVsEstimate(const FineTuneJob& job) {
  int64_t peak = job.peak_memory_bytes();
  int64_t estimate = job.memory_estimate().total_bytes();
  if (peak <= 0 && estimate <= 0) return "-";
  if (peak <= 0) return absl::StrCat("estimate ", HumanBytes(estimate));
  if (estimate <= 0) return absl::StrCat("peak ", HumanBytes(peak));
  return absl::StrCat(
      "peak ", HumanBytes(peak), " (estimate ", HumanBytes(estimate), ", ",
      PercentDelta(static_cast<double>(peak), static_cast<double>(estimate)),
      ")");
}

std::string RenderJobDetails(const FineTuneJob& job) {
  std::vector<std::pair<std::string, std::string>> rows = {
      {"id", job.id()},
      {"state", JobStateName(job.state())},
      {"model", OrDash(job.model())},
      {"training", OrDash(job.training_file())},
      {"validation", OrDash(job.validation_file())},
      {"suffix", OrDash(job.suffix())},
      {"created", FormatUnixTime(job.created_at_unix())},
      {"started", FormatUnixTime(job.started_at_unix())},
      {"finished", FormatUnixTime(job.finished_at_unix())},
      {"step", StepOfTotal(job)},
      {"loss", Loss(job.last_loss(), job.step() > 0)},
      {"eval loss", Loss(job.last_eval_loss(), job.last_eval_loss() != 0)},
      {"best", BestEval(job)},
      {"attempts", absl::StrCat(job.attempts())},
      {"adapter", OrDash(job.adapter_path())},
      {"method", MethodDetails(job.hyperparameters())},
      {"hyperparameters", Hyperparameters(job.hyperparameters())},
      {"target modules", TargetModules(job.hyperparameters())},
  };
  if (job.hyperparameters().quantization() == "int8") {
    rows.push_back({"quantization", "int8 (LLM.int8 base)"});
  }
  if (job.has_memory_estimate()) {
    rows.push_back(
        {"memory estimate", EstimateBreakdown(job.memory_estimate())});
  }
  rows.push_back({"peak memory", job.peak_memory_bytes() > 0
                                     ? RenderPeakVsEstimate(job)
                                     : std::string("-")});
  if (job.base_bytes_per_param() > 0) {
    rows.push_back(
        {"base bytes/param",
         absl::StrFormat("%.4f (%.2f bits)", job.base_bytes_per_param(),
                         job.base_bytes_per_param() * 8)});
  }
  if (!job.error().code().empty() || !job.error().message().empty()) {
    rows.push_back({"error", ErrorText(job.error())});
  }
  return KeyValues(rows);
}

std::string RenderJobSummary(const FineTuneJob& job) {
  std::string duration;
  if (job.started_at_unix() > 0 &&
      job.finished_at_unix() >= job.started_at_unix()) {
    duration = absl::StrCat(
        " in ", FormatDuration(static_cast<double>(job.finished_at_unix() -
                                                   job.started_at_unix())));
  }
  std::vector<std::pair<std::string, std::string>> rows = {
      {"job", absl::StrCat(job.id(), " ", JobStateName(job.state()), duration)},
      {"step", StepOfTotal(job)},
      {"loss", Loss(job.last_loss(), job.step() > 0)},
  };
  if (job.last_eval_loss() != 0) {
    rows.push_back({"eval loss", Loss(job.last_eval_loss(), true)});
  }
  if (job.best_step() > 0) rows.push_back({"best", BestEval(job)});
  if (!job.adapter_path().empty()) {
    rows.push_back({"adapter", job.adapter_path()});
  }
  rows.push_back({"memory", RenderPeakVsEstimate(job)});
  if (!job.error().code().empty() || !job.error().message().empty()) {
    rows.push_back({"error", ErrorText(job.error())});
  }
  return KeyValues(rows);
}

std::string RenderStateChange(const lorad::v1::StateChange& change) {
  std::string line = absl::StrCat("state ", JobStateName(change.state()));
  if (!change.error().code().empty() || !change.error().message().empty()) {
    absl::StrAppend(&line, ": ", ErrorText(change.error()));
  } else if (!change.message().empty()) {
    absl::StrAppend(&line, ": ", change.message());
  }
  return line;
}

std::string RenderDataset(const lorad::v1::Dataset& d) {
  return KeyValues({
      {"id", d.id()},
      {"format", OrDash(d.format())},
      {"examples", absl::StrCat(d.num_examples())},
      {"size", HumanBytes(d.size_bytes())},
      {"sha256", OrDash(d.sha256())},
  });
}

}  // namespace lorad::client
