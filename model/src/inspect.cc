#include "lorad/model/inspect.h"

#include <map>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "lorad/common/bounded_json.h"
#include "lorad/common/files.h"
#include "lorad/model/block_linears.h"
#include "lorad/model/chat_template.h"
#include "lorad/model/memory_estimate.h"
#include "lorad/model/model_config.h"
#include "lorad/model/safetensors.h"
#include "lorad/model/tokenizer.h"

namespace lorad::model {
namespace {

using json = nlohmann::ordered_json;

std::string Shape(const std::vector<int64_t>& shape) {
  std::string out;
  for (int64_t d : shape) absl::StrAppend(&out, out.empty() ? "" : "x", d);
  return out;
}

// The tensors LlamaModel::Load reads, with their shapes.
std::vector<std::pair<std::string, std::vector<int64_t>>> ExpectedTensors(
    const ModelConfig& c) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  out.push_back({"model.embed_tokens.weight", {c.vocab_size, c.hidden_size}});
  if (!c.tie_word_embeddings) {
    out.push_back({"lm_head.weight", {c.vocab_size, c.hidden_size}});
  }
  out.push_back({"model.norm.weight", {c.hidden_size}});
  const auto shapes = BlockLinears(c);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    for (size_t s = 0; s < shapes.size(); ++s) {
      const std::string key = BlockLinearKey(i, shapes[s].path);
      out.push_back({key + ".weight", {shapes[s].out, shapes[s].in}});
      const bool bias = (s < 3 && c.qkv_bias) || (s == 3 && c.o_bias) ||
                        (s >= 4 && c.mlp_bias);
      if (bias) out.push_back({key + ".bias", {shapes[s].out}});
    }
    const std::string p = absl::StrCat("model.layers.", i, ".");
    out.push_back({p + "input_layernorm.weight", {c.hidden_size}});
    out.push_back({p + "post_attention_layernorm.weight", {c.hidden_size}});
    if (c.gemma) {
      out.push_back({p + "pre_feedforward_layernorm.weight", {c.hidden_size}});
      out.push_back({p + "post_feedforward_layernorm.weight", {c.hidden_size}});
    }
    if (c.qk_norm) {
      out.push_back({p + "self_attn.q_norm.weight", {c.head_dim}});
      out.push_back({p + "self_attn.k_norm.weight", {c.head_dim}});
    }
  }
  return out;
}

// The kind of tokenizer.json: its model type and the pieces that tell
// byte-level from SentencePiece-style.
std::string DescribeTokenizer(const std::string& dir) {
  absl::StatusOr<std::string> text = ReadFile(dir + "/tokenizer.json");
  if (!text.ok()) return "unreadable";
  // Only called once Tokenizer::FromModelDir accepted the file (under its
  // own limits); these just bound this second read.
  constexpr JsonLimits kLimits{size_t{512} << 20, 64, int64_t{1} << 27};
  absl::StatusOr<nlohmann::json> j = ParseBoundedJson(*text, kLimits);
  if (!j.ok() || !j->is_object()) return "unreadable";
  const std::string dump = j->dump();
  auto has = [&dump](const char* type) {
    return dump.find(absl::StrCat("\"type\":\"", type, "\"")) !=
           std::string::npos;
  };
  std::string out = "BPE";
  if (auto m = j->find("model"); m != j->end() && m->is_object()) {
    if (auto t = m->find("type"); t != m->end() && t->is_string()) {
      out = t->get<std::string>();
    }
  }
  if (has("ByteLevel")) return out + ", byte-level";
  std::vector<std::string> parts;
  if (has("Metaspace")) parts.push_back("Metaspace");
  if (has("Prepend") || has("Replace")) parts.push_back("Prepend/Replace");
  if (dump.find("\"byte_fallback\":true") != std::string::npos) {
    parts.push_back("byte fallback");
  }
  absl::StrAppend(&out, ", SentencePiece-style");
  if (!parts.empty())
    absl::StrAppend(&out, " (", absl::StrJoin(parts, ", "), ")");
  return out;
}

json TokenList(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  json out = json::array();
  for (int32_t id : ids) {
    out.push_back({{"id", id}, {"text", tok.Decode({id}, false)}});
  }
  return out;
}

void InspectWeights(const std::string& dir, const ModelConfig& c, json& report,
                    json& problems) {
  absl::StatusOr<std::unique_ptr<SafetensorsModel>> weights =
      SafetensorsModel::Open(dir);
  if (!weights.ok()) {
    problems.push_back(std::string(weights.status().message()));
    return;
  }
  std::map<std::string, int64_t> dtypes;
  std::set<std::string> expected_names;
  int missing = 0, misshapen = 0;
  for (const auto& [name, shape] : ExpectedTensors(c)) {
    expected_names.insert(name);
    const TensorInfo* t = (*weights)->Find(name);
    if (t == nullptr) {
      if (++missing <= 5) problems.push_back("tensor " + name + " missing");
      continue;
    }
    ++dtypes[std::string(DTypeName(t->dtype))];
    if (t->shape != shape && ++misshapen <= 5) {
      problems.push_back(absl::StrCat("tensor ", name, " has shape ",
                                      Shape(t->shape), ", expected ",
                                      Shape(shape)));
    }
  }
  if (missing > 5) {
    problems.push_back(absl::StrCat(missing - 5, " more tensors missing"));
  }
  int unused = 0;
  json unused_names = json::array();
  for (const std::string& name : (*weights)->Names()) {
    if (expected_names.count(name) == 0 &&
        name != "lm_head.weight" &&  // a tied head may still be saved
        ++unused <= 5) {
      unused_names.push_back(name);
    }
  }
  json w;
  w["dtypes"] = dtypes;
  w["tensors"] = (*weights)->Names().size();
  if (unused > 0) {
    // Tensors lorad would not read: a sign of an architecture it does not
    // know (extra norms, soft-capping, ...).
    problems.push_back(absl::StrCat(unused, " tensor(s) lorad does not read, ",
                                    "e.g. ", unused_names.dump()));
  }
  report["weights"] = w;
}

}  // namespace

json InspectModelDir(const std::string& dir) {
  json report;
  json problems = json::array();
  report["dir"] = dir;
  absl::StatusOr<ModelConfig> config = ModelConfig::FromDir(dir);
  std::unique_ptr<Tokenizer> tokenizer;
  if (!config.ok()) {
    problems.push_back(std::string(config.status().message()));
  } else {
    const ModelConfig& c = *config;
    json m;
    m["architecture"] = c.architecture;
    m["layers"] = c.num_hidden_layers;
    m["hidden_size"] = c.hidden_size;
    m["intermediate_size"] = c.intermediate_size;
    m["attention_heads"] = c.num_attention_heads;
    m["kv_heads"] = c.num_key_value_heads;
    m["head_dim"] = c.head_dim;
    m["vocab_size"] = c.vocab_size;
    m["context"] = c.max_position_embeddings;
    if (!c.sliding_layers.empty()) {
      m["sliding_window"] = c.sliding_window;
      int64_t sliding = 0;
      for (bool b : c.sliding_layers) sliding += b ? 1 : 0;
      m["sliding_layers"] = sliding;
    }
    m["activation"] = c.activation;
    if (c.attn_logit_softcapping > 0) {
      m["attn_logit_softcapping"] = c.attn_logit_softcapping;
    }
    if (c.final_logit_softcapping > 0) {
      m["final_logit_softcapping"] = c.final_logit_softcapping;
    }
    if (c.local_rope_theta > 0) m["local_rope_theta"] = c.local_rope_theta;
    m["rope_theta"] = c.rope_theta;
    m["rope_scaling"] =
        c.rope_scaling.type.empty() ? "none" : c.rope_scaling.type;
    m["tied_embeddings"] = c.tie_word_embeddings;
    m["qk_norm"] = c.qk_norm;
    m["parameters"] = c.NumParameters();
    m["nf4_base_bytes"] = BaseModelBytes(c, 2);
    report["model"] = m;
    InspectWeights(dir, c, report, problems);
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::FromModelDir(dir);
  if (!tok.ok()) {
    problems.push_back(std::string(tok.status().message()));
  } else {
    tokenizer = *std::move(tok);
    json t;
    t["kind"] = DescribeTokenizer(dir);
    t["vocab_size"] = tokenizer->vocab_size();
    t["adds_before_text"] = TokenList(*tokenizer, tokenizer->PrefixIds());
    t["adds_after_text"] = TokenList(*tokenizer, tokenizer->SuffixIds());
    report["tokenizer"] = t;
    if (config.ok() && tokenizer->vocab_size() > config->vocab_size) {
      problems.push_back(absl::StrCat(
          "the tokenizer has ids up to ", tokenizer->vocab_size() - 1,
          " but config.json's vocab_size is ", config->vocab_size));
    }
  }
  absl::StatusOr<ChatTemplate> chat = ChatTemplate::Load(dir);
  if (!chat.ok()) {
    problems.push_back(std::string(chat.status().message()));
  } else {
    json ct;
    ct["source"] = chat->jinja != nullptr ? chat->origin
                                          : "none (plain "
                                            "\"role: text\" "
                                            "lines)";
    if (!chat->end_of_turn.empty()) ct["end_of_turn"] = chat->end_of_turn;
    json specials = json::object();
    for (const auto& [name, text] : chat->special_tokens) specials[name] = text;
    ct["special_tokens"] = specials;
    report["chat_template"] = ct;
  }
  if (config.ok() && tokenizer != nullptr) {
    std::vector<int32_t> stops(config->stop_token_ids.begin(),
                               config->stop_token_ids.end());
    report["stop_ids"] = TokenList(*tokenizer, stops);
  }
  report["ready"] = problems.empty();
  report["problems"] = problems;
  return report;
}

std::string FormatInspection(const json& report) {
  std::string out;
  auto line = [&out](const std::string& key, const std::string& value) {
    absl::StrAppendFormat(&out, "%-20s %s\n", key + ":", value);
  };
  auto tokens = [](const json& list) {
    if (list.empty()) return std::string("nothing");
    std::string s;
    for (const json& t : list) {
      absl::StrAppend(&s, s.empty() ? "" : ", ", t["text"].dump(), " (",
                      t["id"].get<int64_t>(), ")");
    }
    return s;
  };
  line("directory", report["dir"].get<std::string>());
  if (report.contains("model")) {
    const json& m = report["model"];
    line("architecture", m["architecture"].get<std::string>());
    line("shape",
         absl::StrFormat(
             "%d layers, hidden %d, MLP %d, %d heads (%d kv) of %d",
             m["layers"].get<int64_t>(), m["hidden_size"].get<int64_t>(),
             m["intermediate_size"].get<int64_t>(),
             m["attention_heads"].get<int64_t>(), m["kv_heads"].get<int64_t>(),
             m["head_dim"].get<int64_t>()));
    std::string context = absl::StrCat(m["context"].get<int64_t>(), " tokens");
    if (m.contains("sliding_layers")) {
      absl::StrAppend(&context, "; ", m["sliding_layers"].get<int64_t>(),
                      " of ", m["layers"].get<int64_t>(),
                      " layers attend within a window of ",
                      m["sliding_window"].get<int64_t>());
    }
    line("context", context);
    std::string rope =
        absl::StrCat("theta ", m["rope_theta"].dump(), ", scaling ",
                     m["rope_scaling"].get<std::string>());
    if (m.contains("local_rope_theta")) {
      absl::StrAppend(&rope, "; sliding layers theta ",
                      m["local_rope_theta"].dump());
    }
    line("rope", rope);
    std::string mlp = m["activation"].get<std::string>();
    for (const char* cap :
         {"attn_logit_softcapping", "final_logit_softcapping"}) {
      if (m.contains(cap)) absl::StrAppend(&mlp, ", ", cap, " ", m[cap].dump());
    }
    line("activation", mlp);
    line("parameters",
         absl::StrFormat("%.3g (NF4 base %.1f MiB)",
                         static_cast<double>(m["parameters"].get<int64_t>()),
                         m["nf4_base_bytes"].get<int64_t>() / 1048576.0));
  }
  if (report.contains("weights")) {
    line("weights",
         absl::StrCat(report["weights"]["tensors"].dump(), " tensors, ",
                      report["weights"]["dtypes"].dump()));
  }
  if (report.contains("tokenizer")) {
    const json& t = report["tokenizer"];
    line("tokenizer", absl::StrCat(t["kind"].get<std::string>(), ", ",
                                   t["vocab_size"].get<int64_t>(), " ids"));
    line("adds before text", tokens(t["adds_before_text"]));
    line("adds after text", tokens(t["adds_after_text"]));
  }
  if (report.contains("chat_template")) {
    line("chat template", report["chat_template"]["source"].get<std::string>());
  }
  if (report.contains("stop_ids")) line("stops on", tokens(report["stop_ids"]));
  if (report["ready"].get<bool>()) {
    line("verdict", "ready: lorad runs this model");
  } else {
    line("verdict", "not runnable:");
    for (const json& p : report["problems"]) {
      absl::StrAppend(&out, "  - ", p.get<std::string>(), "\n");
    }
  }
  return out;
}

}  // namespace lorad::model
