#include "openai/fine_tuning_json.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "jobs/job_validation.h"

namespace lorad::server::openai {
namespace {

using nlohmann::json;

const char* StatusName(v1::JobState s) {
  switch (s) {
    case v1::VALIDATING:
      return "validating_files";
    case v1::QUEUED:
      return "queued";
    case v1::RUNNING:
      return "running";
    case v1::SUCCEEDED:
      return "succeeded";
    case v1::FAILED:
      return "failed";
    case v1::CANCELLED:
      return "cancelled";
    default:
      return "queued";
  }
}

json OrNull(int64_t v) { return v > 0 ? json(v) : json(nullptr); }

// An OpenAI hyperparameter: a positive number or "auto" (0 here).
bool ReadAuto(const json& hp, const char* key, bool integer, double* out,
              std::string* message, std::string* param,
              const std::string& where) {
  auto it = hp.find(key);
  if (it == hp.end() || it->is_null() ||
      (it->is_string() && it->get<std::string>() == "auto")) {
    return true;
  }
  if (!it->is_number() || it->get<double>() <= 0 ||
      (integer && !it->is_number_integer())) {
    *message = absl::StrCat(
        "'", key, "' must be ",
        integer ? "a positive integer" : "a positive number", " or \"auto\"");
    *param = where + key;
    return false;
  }
  *out = it->get<double>();
  return true;
}

bool ReadHyperparameters(const json& hp, const std::string& where,
                         v1::Hyperparameters* out, std::string* message,
                         std::string* param) {
  if (!hp.is_object()) {
    *message = "'hyperparameters' must be an object";
    *param = where;
    return false;
  }
  double epochs = 0, batch = 0, multiplier = 0;
  if (!ReadAuto(hp, "n_epochs", true, &epochs, message, param, where) ||
      !ReadAuto(hp, "batch_size", true, &batch, message, param, where) ||
      !ReadAuto(hp, "learning_rate_multiplier", false, &multiplier, message,
                param, where)) {
    return false;
  }
  json rest = hp;
  for (const char* key : {"n_epochs", "batch_size", "learning_rate_multiplier"})
    rest.erase(key);
  // lorad's own fields, by their proto names; an unknown one is an error.
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  // Into a message of its own (parsing clears its target), then merged.
  v1::Hyperparameters fields;
  auto parsed = google::protobuf::util::JsonStringToMessage(rest.dump(),
                                                            &fields, options);
  if (!parsed.ok()) {
    *message = absl::StrCat("'", where.substr(0, where.size() - 1),
                            "': ", std::string(parsed.message()));
    *param = where.substr(0, where.size() - 1);
    return false;
  }
  out->MergeFrom(fields);
  if (epochs > 0) out->set_epochs(static_cast<int32_t>(epochs));
  if (batch > 0) out->set_batch_size(static_cast<int32_t>(batch));
  if (multiplier > 0) {
    const float base =
        out->learning_rate() > 0 ? out->learning_rate() : kDefaultLearningRate;
    out->set_learning_rate(base * static_cast<float>(multiplier));
  }
  return true;
}

// The job's method in the API's shape, with the hyperparameters the API
// shows under it.
json MethodObject(const v1::Hyperparameters& hp, const json& shown) {
  if (hp.method() != "dpo") {
    return {{"type", "supervised"},
            {"supervised", {{"hyperparameters", shown}}}};
  }
  json dpo = shown;
  dpo["beta"] = hp.dpo_beta() > 0 ? json(hp.dpo_beta()) : json("auto");
  return {{"type", "dpo"}, {"dpo", {{"hyperparameters", dpo}}}};
}

void AddDpo(const v1::DpoMetrics& dpo, json& data) {
  data["rewards_chosen"] = dpo.rewards_chosen();
  data["rewards_rejected"] = dpo.rewards_rejected();
  data["reward_margin"] = dpo.reward_margin();
  data["reward_accuracy"] = dpo.reward_accuracy();
}

// A lorad "method" field among the hyperparameters under method.<type>
// must agree with the type.
bool KeepsMethod(const std::string& method, const std::string& prefix,
                 const v1::Hyperparameters& hp, std::string* message,
                 std::string* param) {
  if (hp.method() == method) return true;
  *message = absl::StrCat("'", prefix, "method' (\"", hp.method(),
                          "\") contradicts method.type");
  *param = prefix + "method";
  return false;
}

// method.type (and its object) onto `hp`. `beta` is DPO's, taken out of
// method.dpo.hyperparameters before the rest is read as lorad's fields.
bool ReadMethod(const json& method, v1::Hyperparameters* hp,
                std::string* message, std::string* param) {
  if (!method.is_object()) {
    *message = "'method' must be an object";
    *param = "method";
    return false;
  }
  auto type_it = method.find("type");
  const std::string type = type_it != method.end() && type_it->is_string()
                               ? type_it->get<std::string>()
                               : "";
  if (type != "supervised" && type != "dpo") {
    *message =
        "'method.type' must be \"supervised\" or \"dpo\" (the methods "
        "lorad trains)";
    *param = "method.type";
    return false;
  }
  const char* other = type == "dpo" ? "supervised" : "dpo";
  if (auto o = method.find(other); o != method.end() && !o->is_null()) {
    *message = absl::StrCat("'method.", other,
                            "' does not go with method.type \"", type, "\"");
    *param = absl::StrCat("method.", other);
    return false;
  }
  const std::string lorad_method = type == "dpo" ? "dpo" : "sft";
  if (!hp->method().empty() && hp->method() != lorad_method) {
    *message = absl::StrCat("'hyperparameters.method' (\"", hp->method(),
                            "\") contradicts method.type \"", type, "\"");
    *param = "hyperparameters.method";
    return false;
  }
  hp->set_method(lorad_method);
  auto object = method.find(type);
  if (object == method.end() || object->is_null()) return true;
  const std::string where = absl::StrCat("method.", type);
  if (!object->is_object()) {
    *message = absl::StrCat("'", where, "' must be an object");
    *param = where;
    return false;
  }
  auto h = object->find("hyperparameters");
  if (h == object->end() || h->is_null()) return true;
  const std::string prefix = absl::StrCat(where, ".hyperparameters.");
  if (type == "supervised" || !h->is_object()) {
    return ReadHyperparameters(*h, prefix, hp, message, param) &&
           KeepsMethod(lorad_method, prefix, *hp, message, param);
  }
  double beta = 0;
  if (!ReadAuto(*h, "beta", false, &beta, message, param, prefix)) {
    return false;
  }
  if (beta > kMaxDpoBeta) {
    *message =
        absl::StrCat("'beta' must be at most ", kMaxDpoBeta, " (or \"auto\")");
    *param = prefix + "beta";
    return false;
  }
  json rest = *h;
  rest.erase("beta");
  if (!ReadHyperparameters(rest, prefix, hp, message, param) ||
      !KeepsMethod(lorad_method, prefix, *hp, message, param)) {
    return false;
  }
  if (beta > 0) {
    if (hp->dpo_beta() != 0 && hp->dpo_beta() != static_cast<float>(beta)) {
      *message =
          "'beta' contradicts the dpo_beta given with it; give one of them";
      *param = prefix + "beta";
      return false;
    }
    hp->set_dpo_beta(static_cast<float>(beta));
  }
  return true;
}

std::string EventId(const std::string& job_id, int64_t seq) {
  return absl::StrCat("ftevent-", job_id, "-", seq);
}

}  // namespace

json JobObject(const v1::FineTuneJob& job) {
  const v1::Hyperparameters& hp = job.hyperparameters();
  json error = nullptr;
  if (job.state() == v1::FAILED) {
    error = {{"code", job.error().code()},
             {"message", job.error().message()},
             {"param", nullptr}};
  }
  const std::string adapter = job.suffix().empty() ? job.id() : job.suffix();
  json shown = {
      {"n_epochs", hp.epochs() > 0 ? json(hp.epochs()) : json("auto")},
      {"batch_size",
       hp.batch_size() > 0 ? json(hp.batch_size()) : json("auto")},
      {"learning_rate_multiplier",
       hp.learning_rate() > 0 ? json(hp.learning_rate() / kDefaultLearningRate)
                              : json("auto")}};
  return {
      {"id", job.id()},
      {"object", "fine_tuning.job"},
      {"model", job.model()},
      {"created_at", job.created_at_unix()},
      {"finished_at", OrNull(job.finished_at_unix())},
      {"fine_tuned_model",
       job.state() == v1::SUCCEEDED ? json(adapter) : json(nullptr)},
      {"organization_id", "lorad"},
      {"result_files", json::array()},
      {"status", StatusName(job.state())},
      {"validation_file", job.validation_file().empty()
                              ? json(nullptr)
                              : json(job.validation_file())},
      {"training_file", job.training_file()},
      {"hyperparameters", shown},
      {"trained_tokens", nullptr},
      {"error", error},
      {"user_provided_suffix",
       job.suffix().empty() ? json(nullptr) : json(job.suffix())},
      {"seed", hp.seed()},
      {"estimated_finish", nullptr},
      {"integrations", json::array()},
      {"method", MethodObject(hp, shown)},
      // lorad's own view of the job.
      {"step", job.step()},
      {"total_steps", job.total_steps()},
      {"optimizer", hp.optimizer()},
      {"quantization", hp.quantization()},
      {"dpo_loss_type",
       hp.method() == "dpo" ? json(hp.dpo_loss_type()) : json(nullptr)},
      {"gradient_checkpointing", hp.gradient_checkpointing()},
      {"early_stopping_patience", hp.early_stopping_patience()},
      {"best_step",
       job.best_step() > 0 ? json(job.best_step()) : json(nullptr)},
      {"best_eval_loss",
       job.best_step() > 0 ? json(job.best_eval_loss()) : json(nullptr)},
      {"stopped_early", job.stopped_early()},
  };
}

bool ReadCreateJob(const json& body, const std::string& base_model,
                   v1::CreateFineTuneJobRequest* out, std::string* message,
                   std::string* param) {
  const auto str = [&](const char* key, bool required, std::string* value) {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) {
      if (!required) return true;
      *message = absl::StrCat("'", key, "' is required");
    } else if (it->is_string() &&
               (!required || !it->get<std::string>().empty())) {
      *value = it->get<std::string>();
      return true;
    } else {
      *message = absl::StrCat("'", key, "' must be a string");
    }
    *param = key;
    return false;
  };
  std::string model, training, validation, suffix;
  if (!str("model", true, &model) || !str("training_file", true, &training) ||
      !str("validation_file", false, &validation) ||
      !str("suffix", false, &suffix)) {
    return false;
  }
  out->set_model(model == base_model ? base_model : model);
  out->set_training_file(training);
  out->set_validation_file(validation);
  out->set_suffix(suffix);
  v1::Hyperparameters* hp = out->mutable_hyperparameters();
  if (auto it = body.find("hyperparameters");
      it != body.end() && !it->is_null()) {
    if (!ReadHyperparameters(*it, "hyperparameters.", hp, message, param)) {
      return false;
    }
  }
  if (auto it = body.find("method"); it != body.end() && !it->is_null()) {
    if (!ReadMethod(*it, hp, message, param)) return false;
  }
  // OpenAI's clients give a few hyperparameters, if any: the fields whose
  // zero lorad takes literally once hyperparameters are present get their
  // defaults unless the body names them.
  if (out->has_hyperparameters()) {
    auto named = [&body](const char* key) {
      const json* objects[] = {&body, nullptr, nullptr};
      if (auto m = body.find("method"); m != body.end() && m->is_object()) {
        if (auto s = m->find("supervised"); s != m->end() && s->is_object()) {
          objects[1] = &*s;
        }
        if (auto d = m->find("dpo"); d != m->end() && d->is_object()) {
          objects[2] = &*d;
        }
      }
      for (const json* o : objects) {
        if (o == nullptr) continue;
        auto h = o->find("hyperparameters");
        if (h != o->end() && h->is_object() && h->contains(key)) return true;
      }
      return false;
    };
    if (!named("rank")) hp->set_rank(kDefaultRank);
    if (hp->learning_rate() == 0 && !named("learning_rate")) {
      hp->set_learning_rate(kDefaultLearningRate);
    }
    if (!named("dropout")) hp->set_dropout(kDefaultDropout);
    if (!named("max_grad_norm")) hp->set_max_grad_norm(kDefaultMaxGradNorm);
  }
  if (auto it = body.find("seed"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0) {
      *message = "'seed' must be a non-negative integer";
      *param = "seed";
      return false;
    }
    hp->set_seed(it->get<uint64_t>());
  }
  if (auto it = body.find("integrations");
      it != body.end() && it->is_array() && !it->empty()) {
    *message = "'integrations' are not supported by lorad";
    *param = "integrations";
    return false;
  }
  return true;
}

std::vector<json> EventObjects(const std::string& job_id,
                               const std::vector<v1::JobEvent>& events) {
  std::vector<json> out;
  for (const v1::JobEvent& e : events) {
    json o = {{"object", "fine_tuning.job.event"},
              {"id", EventId(job_id, e.seq())},
              {"created_at", e.time_unix_ms() / 1000},
              {"level", "info"},
              {"type", "message"},
              {"data", json::object()}};
    if (e.has_step()) {
      const v1::TrainStep& s = e.step();
      o["type"] = "metrics";
      o["message"] = absl::StrCat("Step ", s.step(), "/", s.total_steps(),
                                  ": training loss=", s.loss());
      o["data"] = {{"step", s.step()},
                   {"total_steps", s.total_steps()},
                   {"train_loss", s.loss()},
                   {"learning_rate", s.learning_rate()},
                   {"grad_norm", s.grad_norm()},
                   {"tokens_per_second", s.tokens_per_second()},
                   {"epoch", s.epoch()}};
      if (s.has_dpo()) AddDpo(s.dpo(), o["data"]);
    } else if (e.has_eval()) {
      o["type"] = "metrics";
      o["message"] = absl::StrCat("Step ", e.eval().step(),
                                  ": validation loss=", e.eval().eval_loss());
      o["data"] = {{"step", e.eval().step()},
                   {"valid_loss", e.eval().eval_loss()}};
      if (e.eval().has_dpo()) AddDpo(e.eval().dpo(), o["data"]);
    } else if (e.has_state()) {
      const bool failed = e.state().state() == v1::FAILED;
      o["level"] = failed ? "error" : "info";
      std::string m =
          absl::StrCat("Job status: ", StatusName(e.state().state()));
      if (!e.state().message().empty())
        absl::StrAppend(&m, ": ", e.state().message());
      if (failed) absl::StrAppend(&m, ": ", e.state().error().message());
      o["message"] = m;
    } else if (e.has_log()) {
      o["message"] = e.log();
    } else {
      continue;
    }
    out.push_back(std::move(o));
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<json> CheckpointObjects(const std::string& job_id,
                                    const std::vector<v1::JobEvent>& events) {
  constexpr absl::string_view kMark = "checkpoint saved at step ";
  std::vector<json> out;
  json last_step = json::object();
  for (const v1::JobEvent& e : events) {
    if (e.has_step()) {
      last_step = {{"step", e.step().step()}, {"train_loss", e.step().loss()}};
    }
    int step = 0;
    if (!e.has_log() || !absl::StartsWith(e.log(), kMark) ||
        !absl::SimpleAtoi(absl::string_view(e.log()).substr(kMark.size()),
                          &step)) {
      continue;
    }
    out.push_back(
        {{"object", "fine_tuning.job.checkpoint"},
         {"id", absl::StrCat("ftckpt-", job_id, "-", step)},
         {"created_at", e.time_unix_ms() / 1000},
         {"fine_tuning_job_id", job_id},
         {"fine_tuned_model_checkpoint", absl::StrCat(job_id, ":step-", step)},
         {"step_number", step},
         {"metrics", last_step}});
  }
  std::reverse(out.begin(), out.end());
  return out;
}

json Page(const std::vector<json>& all, const std::string& after, int limit) {
  size_t begin = 0;
  if (!after.empty()) {
    for (size_t i = 0; i < all.size(); ++i) {
      if (all[i].value("id", "") == after) {
        begin = i + 1;
        break;
      }
    }
  }
  json data = json::array();
  size_t i = begin;
  for (; i < all.size() && data.size() < static_cast<size_t>(limit); ++i) {
    data.push_back(all[i]);
  }
  return {{"object", "list"}, {"data", data}, {"has_more", i < all.size()}};
}

}  // namespace lorad::server::openai
