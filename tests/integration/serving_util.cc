#include "serving_util.h"

#include <functional>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpcpp/client_context.h"
#include "lorad/model/model_config.h"
#include "lorad/model/safetensors.h"
#include "lorad/model/tiny_model.h"
#include "nlohmann/json.hpp"

namespace lorad::testing {
namespace {

struct Linear {
  std::string name, path;
  int64_t in, out;
};

std::vector<Linear> TinyLinears() {
  const model::ModelConfig c = model::TinyModelConfig();
  const int64_t h = c.hidden_size, q = c.num_attention_heads * c.head_dim,
                kv = c.num_key_value_heads * c.head_dim,
                inter = c.intermediate_size;
  return {{"q_proj", "self_attn.q_proj", h, q},
          {"k_proj", "self_attn.k_proj", h, kv},
          {"v_proj", "self_attn.v_proj", h, kv},
          {"o_proj", "self_attn.o_proj", q, h},
          {"gate_proj", "mlp.gate_proj", h, inter},
          {"up_proj", "mlp.up_proj", h, inter},
          {"down_proj", "mlp.down_proj", inter, h}};
}

}  // namespace

AdapterFiles MakeTinyAdapter(const AdapterSpec& spec) {
  const model::ModelConfig config = model::TinyModelConfig();
  std::mt19937 gen(static_cast<uint32_t>(spec.seed));
  std::uniform_real_distribution<float> dist(-spec.scale, spec.scale);
  std::vector<std::vector<float>> buffers;
  std::vector<model::TensorToWrite> tensors;
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    for (const Linear& l : TinyLinears()) {
      bool wanted = false;
      for (const std::string& t : spec.targets) wanted |= t == l.name;
      if (!wanted) continue;
      const std::string key = absl::StrCat("base_model.model.model.layers.",
                                           layer, ".", l.path, ".lora_");
      for (const auto& [half, shape] :
           {std::pair<std::string, std::vector<int64_t>>{"A",
                                                         {spec.rank, l.in}},
            {"B", {l.out, spec.rank}}}) {
        std::vector<float>& data =
            buffers.emplace_back(static_cast<size_t>(shape[0] * shape[1]));
        for (float& x : data) x = dist(gen);
        tensors.push_back(
            {absl::StrCat(key, half, ".weight"), model::DType::kF32, shape,
             std::string_view(reinterpret_cast<const char*>(data.data()),
                              data.size() * sizeof(float))});
      }
    }
  }
  AdapterFiles files;
  files["adapter_model.safetensors"] =
      model::SerializeSafetensors(std::move(tensors), {{"format", "pt"}});
  nlohmann::json j;
  j["peft_type"] = "LORA";
  j["task_type"] = "CAUSAL_LM";
  j["r"] = spec.config_rank > 0 ? spec.config_rank : spec.rank;
  j["lora_alpha"] = spec.alpha;
  j["lora_dropout"] = 0.0;
  std::vector<std::string> targets = spec.targets;
  if (!spec.extra_config_target.empty()) {
    targets.push_back(spec.extra_config_target);
  }
  j["target_modules"] = targets;
  j["base_model_name_or_path"] = "tiny";
  files["adapter_config.json"] = j.dump(2);
  return files;
}

grpc::Status UploadAdapter(v1::Adapters::Stub& stub, const std::string& name,
                           const AdapterFiles& files, v1::Adapter* adapter,
                           size_t chunk_bytes, const std::string& token) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(120));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  auto writer = stub.Upload(&context, adapter);
  v1::UploadAdapterRequest request;
  request.mutable_header()->set_name(name);
  bool ok = writer->Write(request);
  for (const auto& [file, bytes] : files) {
    for (size_t at = 0; ok && (at < bytes.size() || at == 0);
         at += chunk_bytes) {
      v1::UploadAdapterRequest chunk;
      chunk.mutable_chunk()->set_filename(file);
      chunk.mutable_chunk()->set_data(bytes.substr(at, chunk_bytes));
      ok = writer->Write(chunk);
      if (bytes.empty()) break;
    }
  }
  writer->WritesDone();
  return writer->Finish();
}

Generated GenerateText(v1::Inference::Stub& stub, const std::string& adapter,
                       const std::string& prompt, int max_new_tokens) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(300));
  v1::GenerateRequest request;
  request.set_adapter(adapter);
  request.set_prompt(prompt);
  request.set_max_new_tokens(max_new_tokens);
  auto reader = stub.Generate(&context, request);
  Generated out;
  v1::GenerateResponse response;
  while (reader->Read(&response)) {
    out.text += response.text();
    if (!response.finish_reason().empty()) {
      out.finish_reason = response.finish_reason();
    }
  }
  out.status = reader->Finish();
  return out;
}

grpc::Status CreateBatch(v1::BatchInference::Stub& stub,
                         const std::string& jsonl,
                         const v1::GenerateRequest& defaults,
                         v1::BatchJob* job) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(120));
  auto writer = stub.CreateJob(&context, job);
  v1::CreateBatchJobRequest request;
  request.mutable_header()->set_filename("batch.jsonl");
  request.mutable_header()->set_size_bytes(static_cast<int64_t>(jsonl.size()));
  *request.mutable_header()->mutable_defaults() = defaults;
  bool ok = writer->Write(request);
  for (size_t at = 0; ok && at < jsonl.size(); at += 500) {
    v1::CreateBatchJobRequest chunk;
    chunk.set_chunk(jsonl.substr(at, 500));
    ok = writer->Write(chunk);
  }
  writer->WritesDone();
  return writer->Finish();
}

grpc::Status BatchResults(v1::BatchInference::Stub& stub,
                          const std::string& job_id,
                          std::vector<std::string>* lines) {
  grpc::ClientContext context;
  v1::GetBatchResultsRequest request;
  request.set_job_id(job_id);
  auto reader = stub.GetResults(&context, request);
  std::string all;
  v1::BatchResultsChunk chunk;
  while (reader->Read(&chunk)) all += chunk.data();
  lines->clear();
  for (absl::string_view line : absl::StrSplit(all, '\n')) {
    if (!line.empty()) lines->emplace_back(line);
  }
  return reader->Finish();
}

grpc::Status WatchBatch(
    v1::BatchInference::Stub& stub, const std::string& job_id,
    std::vector<v1::JobEvent>* events,
    const std::function<bool(const v1::JobEvent&)>& stop_when,
    absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  v1::WatchBatchJobRequest request;
  request.set_job_id(job_id);
  auto reader = stub.WatchJob(&context, request);
  v1::JobEvent event;
  while (reader->Read(&event)) {
    events->push_back(event);
    if (stop_when && stop_when(event)) {
      context.TryCancel();
      while (reader->Read(&event)) {
      }
      reader->Finish();
      return grpc::Status::OK;
    }
  }
  return reader->Finish();
}

}  // namespace lorad::testing
