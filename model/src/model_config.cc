#include "lorad/model/model_config.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "lorad/common/bounded_json.h"
#include "lorad/common/files.h"
#include "lorad/common/status_macros.h"
#include "nlohmann/json.hpp"

namespace lorad::model {
namespace {

using nlohmann::json;

constexpr char kSupported[] =
    "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, "
    "Qwen3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM (text)";

// The largest value any size field may hold. Far above any real model
// (vocabularies are < 2^20, hidden sizes < 2^16) and small enough that the
// parameter counts below cannot overflow int64.
constexpr int64_t kMaxDim = int64_t{1} << 24;
constexpr int64_t kMaxLayers = 4096;

// An integer value that fits int64: JSON integers (signed, or unsigned up to
// INT64_MAX) and floats with no fraction inside that range. nullopt for
// anything else; never casts an out-of-range double.
std::optional<int64_t> AsInt64(const json& v) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    // 2^63 is exactly representable; every double below it fits.
    if (!std::isfinite(d) || d != std::trunc(d) || d < -9.2233720368547758e18 ||
        d >= 9.2233720368547758e18) {
      return std::nullopt;
    }
    return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

absl::StatusOr<int64_t> RequiredInt(const json& j, const char* key,
                                    const std::string& where,
                                    int64_t max = kMaxDim) {
  auto it = j.find(key);
  std::optional<int64_t> v;
  if (it != j.end()) v = AsInt64(*it);
  if (!v.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": field \"", key, "\" missing or not an integer"));
  }
  if (*v < 1 || *v > max) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": field \"", key, "\" must be in [1, ", max, "], got ", *v));
  }
  return *v;
}

// An optional integer field: the fallback when absent or null, an error
// naming the field when it is not an integer or outside [min, max].
absl::StatusOr<int64_t> OptionalInt(const json& j, const char* key,
                                    const std::string& where, int64_t fallback,
                                    int64_t min, int64_t max) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  std::optional<int64_t> v = AsInt64(*it);
  if (!v.has_value() || *v < min || *v > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": field \"", key, "\" must be an integer in [",
                     min, ", ", max, "], got ", it->dump().substr(0, 64)));
  }
  return *v;
}

template <typename T>
T Optional(const json& j, const char* key, T fallback) {
  static_assert(!std::is_integral_v<T> || std::is_same_v<T, bool>,
                "integers go through OptionalInt, which range-checks them");
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    return fallback;
  }
}

// `j`'s eos_token_id (an id or a list of at most 64; absent or null: none),
// each a token id below `vocab_size`; InvalidArgument naming `where` and
// the entry otherwise.
absl::StatusOr<std::vector<int64_t>> EosTokenIds(const json& j,
                                                 int64_t vocab_size,
                                                 const std::string& where) {
  std::vector<int64_t> out;
  auto it = j.find("eos_token_id");
  if (it == j.end() || it->is_null()) return out;
  const json one = json::array({*it});
  const json& ids = it->is_array() ? *it : one;
  for (size_t i = 0; i < ids.size() && i < 64; ++i) {
    std::optional<int64_t> id = AsInt64(ids[i]);
    if (!id.has_value() || *id < 0 || *id >= vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": eos_token_id",
                       it->is_array() ? absl::StrCat("[", i, "]") : "",
                       " must be a token id in [0, ", vocab_size, "), got ",
                       ids[i].dump().substr(0, 64)));
    }
    out.push_back(*id);
  }
  return out;
}

// A float field that may be absent (`fallback`) or null (0: off), as
// Gemma's soft-capping fields are; an error naming it when negative or not
// a number.
absl::StatusOr<double> CapField(const json& j, const char* key,
                                const std::string& where, double fallback) {
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  if (it->is_null()) return 0.0;
  if (!it->is_number() || it->get<double>() < 0 ||
      !std::isfinite(it->get<double>())) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": field \"", key,
                     "\" must be a non-negative number or null, got ",
                     it->dump().substr(0, 64)));
  }
  return it->get<double>();
}

// Reads one RoPE description ({rope_theta, rope_type|type, factor, ...})
// into `theta` and `scaling`; InvalidArgument for a type lorad lacks.
absl::Status ReadRope(const json& rs, const std::string& where,
                      int64_t max_positions, double& theta,
                      RopeScaling& scaling) {
  theta = Optional<double>(rs, "rope_theta", theta);
  scaling.type = Optional<std::string>(rs, "rope_type",
                                       Optional<std::string>(rs, "type", ""));
  if (scaling.type == "default") scaling.type.clear();
  scaling.factor = Optional<double>(rs, "factor", 1.0);
  scaling.low_freq_factor = Optional<double>(rs, "low_freq_factor", 1);
  scaling.high_freq_factor = Optional<double>(rs, "high_freq_factor", 4);
  LORAD_ASSIGN_OR_RETURN(scaling.original_max_position_embeddings,
                         OptionalInt(rs, "original_max_position_embeddings",
                                     where, max_positions, 1, INT32_MAX));
  const std::string& t = scaling.type;
  if (!t.empty() && t != "linear" && t != "dynamic" && t != "llama3") {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": unsupported rope_scaling type \"", t,
                     "\" (linear, dynamic and llama3 are)"));
  }
  return absl::OkStatus();
}

// c.sliding_layers from layer_types ("sliding_attention" or
// "full_attention" per layer), or from `pattern` when the file has none.
absl::Status ReadLayerTypes(const json& j, const std::string& where,
                            const std::function<bool(int64_t)>& pattern,
                            ModelConfig& c) {
  c.sliding_layers.assign(c.num_hidden_layers, false);
  auto it = j.find("layer_types");
  if (it == j.end() || it->is_null()) {
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      c.sliding_layers[i] = pattern(i);
    }
    return absl::OkStatus();
  }
  if (!it->is_array() ||
      static_cast<int64_t>(it->size()) != c.num_hidden_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": layer_types must list one type per layer (",
                     c.num_hidden_layers, ")"));
  }
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const json& t = (*it)[i];
    const std::string type = t.is_string() ? t.get<std::string>() : "";
    if (type != "sliding_attention" && type != "full_attention") {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": layer_types[", i, "] must be \"sliding_attention\" or ",
          "\"full_attention\", got ", t.dump().substr(0, 64)));
    }
    c.sliding_layers[i] = type == "sliding_attention";
  }
  return absl::OkStatus();
}

// The sliding window of Mistral (every layer) and of Qwen2/Qwen3 with
// use_sliding_window (layers from max_window_layers on, or layer_types);
// Llama has none.
absl::Status ReadSlidingWindow(const json& j, const std::string& where,
                               ModelConfig& c) {
  const bool mistral = c.architecture == "MistralForCausalLM";
  const bool qwen = c.architecture == "Qwen2ForCausalLM" ||
                    c.architecture == "Qwen3ForCausalLM";
  if (!mistral && !(qwen && Optional<bool>(j, "use_sliding_window", false))) {
    return absl::OkStatus();
  }
  LORAD_ASSIGN_OR_RETURN(c.sliding_window, OptionalInt(j, "sliding_window",
                                                       where, 0, 0, INT32_MAX));
  if (c.sliding_window == 0) return absl::OkStatus();
  if (mistral) {
    // transformers' Mistral slides in every layer, whatever layer_types say.
    c.sliding_layers.assign(c.num_hidden_layers, true);
    return absl::OkStatus();
  }
  LORAD_ASSIGN_OR_RETURN(int64_t first, OptionalInt(j, "max_window_layers",
                                                    where, 28, 0, kMaxLayers));
  return ReadLayerTypes(
      j, where, [first](int64_t i) { return i >= first; }, c);
}

// The Gemma 2 / Gemma 3 fields of `c` (architecture already known).
absl::Status ReadGemma(const json& j, const std::string& where,
                       ModelConfig& c) {
  const bool gemma3 = c.architecture == "Gemma3ForCausalLM";
  c.gemma = true;
  c.qk_norm = gemma3;
  c.activation = Optional<std::string>(
      j, "hidden_activation",
      Optional<std::string>(j, "hidden_act", "gelu_pytorch_tanh"));
  if (c.activation != "gelu_pytorch_tanh" && c.activation != "gelu") {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": hidden_activation \"", c.activation.substr(0, 64),
        "\" is not supported (Gemma runs gelu_pytorch_tanh or gelu)"));
  }
  if (Optional<bool>(j, "use_bidirectional_attention", false)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where,
                     ": use_bidirectional_attention is set; lorad runs "
                     "causal decoders only"));
  }
  c.query_pre_attn_scalar = Optional<double>(j, "query_pre_attn_scalar", 256);
  if (!(c.query_pre_attn_scalar > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": field \"query_pre_attn_scalar\" must be positive"));
  }
  LORAD_ASSIGN_OR_RETURN(
      c.attn_logit_softcapping,
      CapField(j, "attn_logit_softcapping", where, gemma3 ? 0.0 : 50.0));
  LORAD_ASSIGN_OR_RETURN(
      c.final_logit_softcapping,
      CapField(j, "final_logit_softcapping", where, gemma3 ? 0.0 : 30.0));
  LORAD_ASSIGN_OR_RETURN(
      c.sliding_window,
      OptionalInt(j, "sliding_window", where, 4096, 1, INT32_MAX));
  // layer_types when written (transformers >= 4.53), else the family's
  // pattern: Gemma 2 alternates from a sliding first layer; Gemma 3 makes
  // every sliding_window_pattern-th layer global.
  int64_t pattern = 2;
  if (gemma3) {
    const char* key = j.contains("sliding_window_pattern")
                          ? "sliding_window_pattern"
                          : "_sliding_window_pattern";
    LORAD_ASSIGN_OR_RETURN(pattern,
                           OptionalInt(j, key, where, 6, 1, kMaxLayers));
  }
  LORAD_RETURN_IF_ERROR(ReadLayerTypes(
      j, where, [pattern](int64_t i) { return (i + 1) % pattern != 0; }, c));
  if (!gemma3) return absl::OkStatus();
  // Gemma 3's two RoPEs: transformers 5 writes rope_parameters keyed by
  // layer type; older files write rope_theta + rope_scaling for the global
  // layers and rope_local_base_freq for the sliding ones.
  c.local_rope_theta = Optional<double>(j, "rope_local_base_freq", 10000.0);
  auto rp = j.find("rope_parameters");
  if (rp != j.end() && rp->is_object() && rp->contains("full_attention")) {
    const json& full = (*rp)["full_attention"];
    if (full.is_object()) {
      LORAD_RETURN_IF_ERROR(ReadRope(full, where, c.max_position_embeddings,
                                     c.rope_theta, c.rope_scaling));
    }
    if (auto local = rp->find("sliding_attention");
        local != rp->end() && local->is_object()) {
      RopeScaling local_scaling;
      LORAD_RETURN_IF_ERROR(ReadRope(*local, where, c.max_position_embeddings,
                                     c.local_rope_theta, local_scaling));
      if (!local_scaling.type.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": rope_parameters.sliding_attention.rope_type \"",
            local_scaling.type,
            "\" is not supported (sliding layers rotate "
            "unscaled)"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelConfig> ModelConfig::FromJson(std::string_view text,
                                                  std::string_view where_view) {
  const std::string where(where_view);
  absl::StatusOr<json> parsed = ParseBoundedJson(text, kSmallJsonLimits);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": ", parsed.status().message()));
  }
  json& j = *parsed;
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": not a valid JSON object"));
  }
  ModelConfig c;
  c.model_type = Optional<std::string>(j, "model_type", "");
  if (auto it = j.find("architectures");
      it != j.end() && it->is_array() && !it->empty() && (*it)[0].is_string()) {
    c.architecture = (*it)[0].get<std::string>();
  }
  if (c.architecture.empty()) {
    if (c.model_type == "llama") c.architecture = "LlamaForCausalLM";
    if (c.model_type == "mistral") c.architecture = "MistralForCausalLM";
    if (c.model_type == "qwen2") c.architecture = "Qwen2ForCausalLM";
    if (c.model_type == "qwen3") c.architecture = "Qwen3ForCausalLM";
    if (c.model_type == "gemma2") c.architecture = "Gemma2ForCausalLM";
    if (c.model_type == "gemma3_text") c.architecture = "Gemma3ForCausalLM";
  }
  const bool gemma = c.architecture == "Gemma2ForCausalLM" ||
                     c.architecture == "Gemma3ForCausalLM";
  if (c.architecture != "LlamaForCausalLM" &&
      c.architecture != "MistralForCausalLM" &&
      c.architecture != "Qwen2ForCausalLM" &&
      c.architecture != "Qwen3ForCausalLM" && !gemma) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": unsupported architecture \"",
                     c.architecture.empty() ? c.model_type : c.architecture,
                     "\"; lorad runs ", kSupported));
  }
  LORAD_ASSIGN_OR_RETURN(c.vocab_size, RequiredInt(j, "vocab_size", where));
  LORAD_ASSIGN_OR_RETURN(c.hidden_size, RequiredInt(j, "hidden_size", where));
  LORAD_ASSIGN_OR_RETURN(c.intermediate_size,
                         RequiredInt(j, "intermediate_size", where));
  LORAD_ASSIGN_OR_RETURN(
      c.num_hidden_layers,
      RequiredInt(j, "num_hidden_layers", where, kMaxLayers));
  LORAD_ASSIGN_OR_RETURN(c.num_attention_heads,
                         RequiredInt(j, "num_attention_heads", where));
  LORAD_ASSIGN_OR_RETURN(c.num_key_value_heads,
                         OptionalInt(j, "num_key_value_heads", where,
                                     c.num_attention_heads, 1, kMaxDim));
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": num_attention_heads (", c.num_attention_heads,
                     ") must be a positive multiple of num_key_value_heads (",
                     c.num_key_value_heads, ")"));
  }
  LORAD_ASSIGN_OR_RETURN(
      c.head_dim,
      OptionalInt(j, "head_dim", where, c.hidden_size / c.num_attention_heads,
                  1, kMaxDim));
  LORAD_ASSIGN_OR_RETURN(
      c.max_position_embeddings,
      OptionalInt(j, "max_position_embeddings", where, 2048, 1, INT32_MAX));
  c.rms_norm_eps = Optional<double>(j, "rms_norm_eps", 1e-6);
  c.rope_theta = Optional<double>(j, "rope_theta", 10000.0);
  // transformers < 5 writes "rope_theta" + "rope_scaling"; 5.x writes one
  // "rope_parameters" object holding rope_theta and the scaling fields.
  auto rope = j.find("rope_parameters");
  if (rope == j.end() || !rope->is_object()) rope = j.find("rope_scaling");
  if (rope != j.end() && rope->is_object() &&
      !rope->contains("full_attention")) {
    LORAD_RETURN_IF_ERROR(ReadRope(*rope, where, c.max_position_embeddings,
                                   c.rope_theta, c.rope_scaling));
  }
  if (c.model_type == "qwen2" || c.architecture == "Qwen2ForCausalLM") {
    c.qkv_bias = true;
  } else {
    c.qkv_bias = c.o_bias = Optional<bool>(j, "attention_bias", false);
  }
  c.qk_norm = c.architecture == "Qwen3ForCausalLM";
  c.mlp_bias = Optional<bool>(j, "mlp_bias", false);
  c.tie_word_embeddings = Optional<bool>(j, "tie_word_embeddings", gemma);
  if (gemma) LORAD_RETURN_IF_ERROR(ReadGemma(j, where, c));
  // What lorad cannot run is refused here, naming the field, rather than
  // run wrongly.
  for (const char* key : {"hidden_act", "hidden_activation"}) {
    if (gemma) break;  // ReadGemma checked the activation
    auto it = j.find(key);
    if (it != j.end() && it->is_string() && it->get<std::string>() != "silu") {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", key, " \"", it->get<std::string>(),
                       "\" is not supported (lorad runs silu MLPs)"));
    }
  }
  if (auto it = j.find("quantization_config");
      it != j.end() && !it->is_null()) {
    std::string method = "unknown";
    if (it->is_object()) {
      method = Optional<std::string>(*it, "quant_method", method);
    }
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": quantization_config (", method.substr(0, 64),
        ") marks a pre-quantized checkpoint; lorad loads bf16, fp16 or fp32 "
        "weights and quantizes them to NF4 itself"));
  }
  if (!gemma) LORAD_RETURN_IF_ERROR(ReadSlidingWindow(j, where, c));
  if (std::find(c.sliding_layers.begin(), c.sliding_layers.end(), true) ==
      c.sliding_layers.end()) {
    c.sliding_layers.clear();  // no layer slides: the window means nothing
    c.sliding_window = 0;
  }
  // Every count below is a product of these sizes; refuse a shape whose
  // parameter count would not fit comfortably in int64 (10^15 parameters is
  // ~2000 times the largest open model).
  const long double block =
      static_cast<long double>(c.hidden_size) * c.head_dim *
          (2.0L * c.num_attention_heads + 2.0L * c.num_key_value_heads) +
      3.0L * c.hidden_size * c.intermediate_size;
  const long double total =
      block * c.num_hidden_layers + 2.0L * c.vocab_size * c.hidden_size;
  if (total > 1e15L) {
    return absl::InvalidArgumentError(absl::StrCat(
        where,
        ": hidden_size, intermediate_size, head_dim, the head counts "
        "and num_hidden_layers describe more than 10^15 parameters"));
  }
  // Special token ids: -1 means none; anything else must be a token id.
  LORAD_ASSIGN_OR_RETURN(c.bos_token_id, OptionalInt(j, "bos_token_id", where,
                                                     -1, -1, c.vocab_size - 1));
  LORAD_ASSIGN_OR_RETURN(c.pad_token_id, OptionalInt(j, "pad_token_id", where,
                                                     -1, -1, c.vocab_size - 1));
  LORAD_ASSIGN_OR_RETURN(c.eos_token_ids, EosTokenIds(j, c.vocab_size, where));
  c.stop_token_ids = c.eos_token_ids;
  return c;
}

namespace {

// Reads generation_config.json's eos_token_id into config.stop_token_ids.
absl::Status ReadGenerationConfig(const std::string& path,
                                  ModelConfig& config) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return absl::OkStatus();  // optional file
  absl::StatusOr<json> parsed = ParseBoundedJson(*text, kSmallJsonLimits);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", parsed.status().message()));
  }
  if (!parsed->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a valid JSON object"));
  }
  LORAD_ASSIGN_OR_RETURN(std::vector<int64_t> stops,
                         EosTokenIds(*parsed, config.vocab_size, path));
  if (!stops.empty()) config.stop_token_ids = std::move(stops);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelConfig> ModelConfig::FromDir(const std::string& dir) {
  std::string path = absl::StrCat(dir, "/config.json");
  auto text = ReadFile(path);
  if (!text.ok()) {
    return absl::NotFoundError(
        absl::StrCat("model directory ", dir, " has no readable config.json"));
  }
  LORAD_ASSIGN_OR_RETURN(ModelConfig config, FromJson(*text, path));
  LORAD_RETURN_IF_ERROR(ReadGenerationConfig(
      absl::StrCat(dir, "/generation_config.json"), config));
  return config;
}

std::string ModelConfig::ToJson() const {
  json j;
  j["architectures"] = {architecture};
  j["model_type"] = model_type;
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["head_dim"] = head_dim;
  j["max_position_embeddings"] = max_position_embeddings;
  if (sliding_window > 0) j["sliding_window"] = sliding_window;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  j["hidden_act"] = "silu";
  j["attention_bias"] = o_bias;
  j["mlp_bias"] = mlp_bias;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["torch_dtype"] = "float32";
  if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
  if (pad_token_id >= 0) j["pad_token_id"] = pad_token_id;
  if (eos_token_ids.size() == 1) j["eos_token_id"] = eos_token_ids[0];
  if (eos_token_ids.size() > 1) j["eos_token_id"] = eos_token_ids;
  return j.dump(2);
}

int64_t ModelConfig::NumBlockLinearParameters() const {
  int64_t q = hidden_size * num_attention_heads * head_dim;
  int64_t kv = 2 * hidden_size * num_key_value_heads * head_dim;
  int64_t o = num_attention_heads * head_dim * hidden_size;
  int64_t mlp = 3 * hidden_size * intermediate_size;
  return num_hidden_layers * (q + kv + o + mlp);
}

int64_t ModelConfig::NumParameters() const {
  int64_t embed = vocab_size * hidden_size;
  int64_t norms =
      num_hidden_layers * (gemma ? 4 : 2) * hidden_size + hidden_size;
  if (qk_norm) norms += num_hidden_layers * 2 * head_dim;
  return NumBlockLinearParameters() + norms + embed +
         (tie_word_embeddings ? 0 : embed);
}

}  // namespace lorad::model
