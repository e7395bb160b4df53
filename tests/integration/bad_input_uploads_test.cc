// Bad uploads (dataset JSONL, batch JSONL, adapter files) and bad batch and
// adapter calls against the real daemon and worker: each gets its exact
// code and names its line or field while a second client keeps streaming
// (see bad_input_suite.h). Includes the reported crash: a batch line nested
// 200000 levels deep.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bad_input_suite.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "serving_util.h"

namespace lorad::testing {
namespace {

using Code = grpc::StatusCode;
constexpr Code kInvalid = Code::INVALID_ARGUMENT;

std::string Line(const nlohmann::json& j) { return j.dump() + "\n"; }

// A safetensors file whose header is `header`.
std::string Safetensors(const std::string& header) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + header;
}

TEST_F(BadInputSuite, DatasetUploadsAreRefusedByLineAndField) {
  auto upload = [](std::string filename, std::string contents) {
    return [filename, contents] { return UploadDataset(filename, contents); };
  };
  const std::string good = Line({{"prompt", "a"}, {"completion", "b"}});
  std::vector<BadCase> cases = {
      {"nested 200000 deep",
       upload("deep.jsonl",
              "{\"text\": \"a\", \"x\": " + Nested(200000) + "}\n"),
       kInvalid, "nested deeper"},
      {"nested 33 deep in line 2",
       upload("deep.jsonl", good +
                                "{\"prompt\": \"a\", \"completion\": "
                                "\"b\", \"meta\": " +
                                Nested(33) + "}\n"),
       kInvalid, "line 2"},
      {"line over 1 MiB",
       upload("long.jsonl", Line({{"text", Big((1 << 20) + 10)}})), kInvalid,
       "1 MiB"},
      {"not JSON", upload("bad.jsonl", "{\"text\": \n"), kInvalid, "line 1"},
      {"invalid UTF-8", upload("bad.jsonl", "{\"text\": \"\xFF\xFE\"}\n"),
       kInvalid, "line 1"},
      {"chat role root",
       upload("chat.jsonl",
              Line({{"messages",
                     {{{"role", "root"}, {"content", "x"}},
                      {{"role", "assistant"}, {"content", "y"}}}}})),
       kInvalid, "messages[0].role"},
      {"messages not a list", upload("chat.jsonl", Line({{"messages", "hi"}})),
       kInvalid, "messages"},
      {"formats mixed", upload("mixed.jsonl", good + Line({{"text", "t"}})),
       kInvalid, "line 2"},
      {"unknown format", upload("odd.jsonl", Line({{"foo", "bar"}})), kInvalid,
       "line 1"},
      {"a 900 KB key", upload("odd.jsonl", Line({{Big(900'000), "bar"}})),
       kInvalid, "line 1"},
      {"array line", upload("arr.jsonl", "[1, 2]\n"), kInvalid, "line 1"},
      {"empty", upload("empty.jsonl", ""), kInvalid, "empty"},
      {"filename with a slash", upload("../x.jsonl", good), kInvalid,
       "filename"},
      {"filename 4 KB", upload(Big(4096), good), kInvalid, "filename"},
      {"filename with a newline", upload("a\nb", good), kInvalid, "filename"},
      {"declared size wrong",
       [good] {
         v1::Dataset d;
         return Upload(*client_, "x.jsonl", good, &d, 5);
       },
       kInvalid, "5"},
      {"chunk before header",
       [] {
         grpc::ClientContext context;
         v1::Dataset d;
         auto writer = client_->datasets->Upload(&context, &d);
         v1::UploadDatasetRequest chunk;
         chunk.set_chunk("{\"text\": \"x\"}\n");
         writer->Write(chunk);
         writer->WritesDone();
         return writer->Finish();
       },
       kInvalid, "header"},
  };
  Run(cases);
}

TEST_F(BadInputSuite, BatchInputsAreRefusedByLineAndField) {
  auto batch = [](std::string jsonl) {
    return [jsonl] { return CreateBatch("batch.jsonl", jsonl); };
  };
  auto with = [](nlohmann::json extra) {
    nlohmann::json line = {{"prompt", "hi"}};
    line.update(extra);
    return Line(line);
  };
  const std::string good = with(nlohmann::json::object());
  nlohmann::json many_stops = nlohmann::json::array();
  for (int i = 0; i < 17; ++i) many_stops.push_back("s");
  v1::GenerateRequest nan_defaults;
  nan_defaults.set_temperature(std::numeric_limits<float>::quiet_NaN());
  v1::GenerateRequest empty_stop_defaults;
  empty_stop_defaults.add_stop("");
  std::vector<BadCase> cases = {
      {"id nested 200000 deep (the reported crash)",
       batch("{\"prompt\": \"hi\", \"id\": " + Nested(200000) + "}\n"),
       kInvalid, "nested deeper"},
      {"content nested deep",
       batch(good + "{\"messages\": [{\"role\": \"user\", \"content\": " +
             Nested(5000) + "}]}\n"),
       kInvalid, "line 2"},
      {"temperature 1e300", batch(with({{"temperature", 1e300}})), kInvalid,
       "temperature"},
      {"temperature 1e6", batch(with({{"temperature", 1e6}})), kInvalid,
       "temperature"},
      {"top_p 2", batch(with({{"top_p", 2}})), kInvalid, "top_p"},
      {"top_k -1", batch(with({{"top_k", -1}})), kInvalid, "top_k"},
      {"seed -1", batch(with({{"seed", -1}})), kInvalid, "seed"},
      {"max_new_tokens 0", batch(with({{"max_new_tokens", 0}})), kInvalid,
       "max_new_tokens"},
      {"max_new_tokens 2^31", batch(with({{"max_new_tokens", 2147483648}})),
       kInvalid, "max_new_tokens"},
      {"repetition_penalty 1e-9", batch(with({{"repetition_penalty", 1e-9}})),
       kInvalid, "repetition_penalty"},
      {"17 stops", batch(with({{"stop", many_stops}})), kInvalid, "stop"},
      {"empty stop", batch(with({{"stop", ""}})), kInvalid, "stop[0]"},
      {"stop not strings", batch(with({{"stop", {1, 2}}})), kInvalid, "stop"},
      {"role root",
       batch(Line({{"messages", {{{"role", "root"}, {"content", "x"}}}}})),
       kInvalid, "messages[0].role"},
      {"adapter ../x", batch(with({{"adapter", "../x"}})), kInvalid, "adapter"},
      {"adapter unknown", batch(with({{"adapter", "nope"}})), Code::NOT_FOUND,
       "nope"},
      {"unknown field with a long key", batch(with({{Big(500'000), 1}})),
       kInvalid, "unknown field"},
      {"prompt and messages",
       batch(with({{"messages", {{{"role", "user"}, {"content", "x"}}}}})),
       kInvalid, "exactly one"},
      {"not JSON", batch("{\"prompt\": \n"), kInvalid, "line 1"},
      {"only blank lines", batch("\n\n"), kInvalid, "no requests"},
      {"defaults temperature nan",
       [nan_defaults] {
         return CreateBatch("batch.jsonl", "{\"prompt\": \"hi\"}\n",
                            nan_defaults);
       },
       kInvalid, "defaults.temperature"},
      {"defaults empty stop",
       [empty_stop_defaults] {
         return CreateBatch("batch.jsonl", "{\"prompt\": \"hi\"}\n",
                            empty_stop_defaults);
       },
       kInvalid, "defaults.stop[0]"},
      {"filename a/b", [good] { return CreateBatch("a/b", good); }, kInvalid,
       "filename"},
  };
  Run(cases);
}

TEST_F(BadInputSuite, BatchCallsRefuseBadIds) {
  auto get = [](std::string id) {
    return [id] {
      grpc::ClientContext context;
      v1::GetBatchJobRequest r;
      r.set_job_id(id);
      v1::BatchJob job;
      return batch_->GetJob(&context, r, &job);
    };
  };
  auto cancel = [](std::string id) {
    return [id] {
      grpc::ClientContext context;
      v1::CancelBatchJobRequest r;
      r.set_job_id(id);
      v1::BatchJob job;
      return batch_->CancelJob(&context, r, &job);
    };
  };
  std::vector<BadCase> cases = {
      {"get empty", get(""), kInvalid, "job_id"},
      {"get 4 MB", get(Big(4'000'000)), kInvalid, "job_id"},
      {"get unknown", get("batch-000000000000"), Code::NOT_FOUND,
       "batch-000000000000"},
      {"cancel ../x", cancel("../x"), kInvalid, "job_id"},
      {"cancel unknown", cancel("batch-000000000000"), Code::NOT_FOUND,
       "batch-000000000000"},
      {"results unknown",
       [] {
         std::vector<std::string> lines;
         return BatchResults(*batch_, "batch-000000000000", &lines);
       },
       Code::NOT_FOUND, "batch-000000000000"},
      {"list limit -1",
       [] {
         grpc::ClientContext context;
         v1::ListBatchJobsRequest r;
         r.set_limit(-1);
         v1::ListBatchJobsResponse response;
         return batch_->ListJobs(&context, r, &response);
       },
       kInvalid, "limit"},
  };
  Run(cases);
}

TEST_F(BadInputSuite, AdapterUploadsAndCallsAreRefused) {
  const AdapterFiles good = MakeTinyAdapter(AdapterSpec());
  const std::string config = good.at("adapter_config.json");
  const std::string weights = good.at("adapter_model.safetensors");
  auto upload = [](std::string name,
                   std::vector<std::pair<std::string, std::string>> files) {
    return [name, files] { return UploadAdapterFiles(name, files); };
  };
  auto with_config = [&](std::string c) {
    return std::vector<std::pair<std::string, std::string>>{
        {"adapter_config.json", c}, {"adapter_model.safetensors", weights}};
  };
  nlohmann::json negative_alpha = nlohmann::json::parse(config);
  negative_alpha["lora_alpha"] = -1;
  nlohmann::json huge_rank = nlohmann::json::parse(config);
  huge_rank["r"] = 2147483647;
  auto by_name = [](auto call, std::string name) {
    return [call, name] { return call(name); };
  };
  auto unload = [](std::string name) {
    grpc::ClientContext context;
    v1::UnloadAdapterRequest r;
    r.set_name(name);
    v1::Adapter a;
    return adapters_->Unload(&context, r, &a);
  };
  auto remove = [](std::string name) {
    grpc::ClientContext context;
    v1::DeleteAdapterRequest r;
    r.set_name(name);
    v1::DeleteAdapterResponse response;
    return adapters_->Delete(&context, r, &response);
  };
  auto download = [](std::string name) {
    grpc::ClientContext context;
    v1::DownloadAdapterRequest r;
    r.set_name(name);
    auto reader = adapters_->Download(&context, r);
    v1::FileChunk chunk;
    while (reader->Read(&chunk)) {
    }
    return reader->Finish();
  };
  auto load = [](std::string name, std::string job) {
    return [name, job] {
      grpc::ClientContext context;
      v1::LoadAdapterRequest r;
      r.set_name(name);
      r.set_job_id(job);
      v1::Adapter a;
      return adapters_->Load(&context, r, &a);
    };
  };
  std::vector<BadCase> cases = {
      {"config nested 200000 deep",
       upload("deep", with_config("{\"r\": 4, \"x\": " + Nested(200000) + "}")),
       kInvalid, "nested deeper"},
      {"config of 2 MiB",
       upload("big",
              with_config("{\"r\": 4, \"x\": \"" + Big(2 << 20) + "\"}")),
       kInvalid, "adapter_config.json"},
      {"config not JSON", upload("bad", with_config("{\"r\": ")), kInvalid,
       "adapter_config.json"},
      {"config lora_alpha -1",
       upload("bad", with_config(negative_alpha.dump())), kInvalid,
       "lora_alpha"},
      {"config r 2^31-1", upload("bad", with_config(huge_rank.dump())),
       kInvalid, "\"r\""},
      {"safetensors header nested deep",
       upload("bad", {{"adapter_config.json", config},
                      {"adapter_model.safetensors",
                       Safetensors("{\"a\": " + Nested(100000) + "}")}}),
       kInvalid, "nested deeper"},
      {"safetensors header length past the end",
       upload("bad", {{"adapter_config.json", config},
                      {"adapter_model.safetensors",
                       std::string("\xff\xff\xff\xff\0\0\0\0{}", 10)}}),
       kInvalid, "adapter_model.safetensors"},
      {"an unexpected file",
       upload("bad", {{"adapter_config.json", config}, {"../evil", "x"}}),
       kInvalid, "unexpected file"},
      {"weights missing", upload("bad", {{"adapter_config.json", config}}),
       kInvalid, "missing"},
      {"name ../x", upload("../x", with_config(config)), kInvalid,
       "adapter name"},
      {"name 4 MB", upload(Big(4'000'000), with_config(config)), kInvalid,
       "adapter name"},
      {"name empty", upload("", with_config(config)), kInvalid, "name"},
      {"load without name or job", load("", ""), kInvalid, "job_id"},
      {"load an unknown job", load("x", "ftjob-000000000000"), Code::NOT_FOUND,
       "ftjob-000000000000"},
      {"unload unknown", by_name(unload, "nope"), Code::NOT_FOUND, "nope"},
      {"unload ../x", by_name(unload, "../x"), kInvalid, "adapter name"},
      {"delete ../x", by_name(remove, "../x"), kInvalid, "adapter name"},
      {"delete 4 MB", by_name(remove, Big(4'000'000)), kInvalid,
       "adapter name"},
      {"download ..", by_name(download, ".."), kInvalid, "adapter name"},
      {"export dtype 4 MB",
       [] {
         grpc::ClientContext context;
         v1::ExportMergedRequest r;
         r.set_name("nope");
         r.set_dtype(Big(4'000'000));
         v1::ExportMergedResponse response;
         return adapters_->ExportMerged(&context, r, &response);
       },
       kInvalid, "dtype"},
  };
  Run(cases);
}

// A row the worker refuses (its prompt is longer than the model's context)
// fails alone, at once; the rows around it are answered.
TEST_F(BadInputSuite, ABadRowFailsOnlyItselfInABatchJob) {
  const std::string jsonl =
      Line({{"id", "a"}, {"prompt", "first"}, {"max_new_tokens", 4}}) +
      Line({{"id", "b"}, {"prompt", Big(5000)}, {"max_new_tokens", 4}}) +
      Line({{"id", "c"}, {"prompt", "third"}, {"max_new_tokens", 4}});
  v1::BatchJob job;
  grpc::Status status = ::lorad::testing::CreateBatch(*batch_, jsonl, {}, &job);
  ASSERT_TRUE(status.ok()) << Describe(status);
  std::vector<v1::JobEvent> events;
  ASSERT_TRUE(WatchBatch(*batch_, job.id(), &events).ok());
  ASSERT_FALSE(events.empty());
  ASSERT_TRUE(events.back().has_state());
  EXPECT_EQ(events.back().state().state(), v1::SUCCEEDED);
  std::vector<std::string> lines;
  ASSERT_TRUE(BatchResults(*batch_, job.id(), &lines).ok());
  ASSERT_EQ(lines.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const nlohmann::json r = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(r["index"], i);
    if (i == 1) {
      ASSERT_TRUE(r.contains("error")) << lines[i];
      EXPECT_EQ(r["error"]["code"], "INVALID_ARGUMENT") << lines[i];
    } else {
      EXPECT_FALSE(r.contains("error")) << lines[i];
      EXPECT_TRUE(r.contains("finish_reason")) << lines[i];
    }
  }
}

}  // namespace
}  // namespace lorad::testing
