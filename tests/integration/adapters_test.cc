// The Adapters API through the real daemon and worker: trained adapters are
// registered and served, uploads are validated, names are replaced and
// unloaded while requests keep being served.
#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client_util.h"
#include "daemon_process.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "serving_util.h"

namespace lorad::testing {
namespace {

const char* const kPrompts[] = {"Q0: say apple.", "Q1: say river.",
                                "hello there", "Q5: say copper."};

class AdaptersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
    auto daemon = StartWithWorker(dir_.path() + "/data");
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = *std::move(daemon);
    client_ = std::make_unique<Client>(daemon_->address());
    adapters_ = v1::Adapters::NewStub(client_->channel);
  }

  std::vector<v1::Adapter> List() {
    grpc::ClientContext context;
    v1::ListAdaptersResponse response;
    grpc::Status status =
        adapters_->List(&context, v1::ListAdaptersRequest(), &response);
    EXPECT_TRUE(status.ok()) << Describe(status);
    return {response.adapters().begin(), response.adapters().end()};
  }

  // Greedy outputs for every prompt; fails the test on an error.
  std::vector<std::string> Outputs(const std::string& adapter) {
    std::vector<std::string> out;
    for (const char* prompt : kPrompts) {
      Generated g = GenerateText(*client_->inference, adapter, prompt);
      EXPECT_TRUE(g.status.ok()) << adapter << ": " << Describe(g.status);
      out.push_back(g.text);
    }
    return out;
  }

  TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<v1::Adapters::Stub> adapters_;
};

// An adapter trained in one job is registered under its suffix, servable at
// once, changes the output of requests naming it, and leaves the base model
// and every other adapter's output exactly as it was.
TEST_F(AdaptersTest, TrainedAdapterChangesOnlyItsOwnRequests) {
  v1::Adapter beta;
  grpc::Status status =
      UploadAdapter(*adapters_, "beta", MakeTinyAdapter({}), &beta);
  ASSERT_TRUE(status.ok()) << Describe(status);
  const std::vector<std::string> base_before = Outputs("");
  const std::vector<std::string> beta_before = Outputs("beta");
  EXPECT_NE(base_before, beta_before);

  v1::Dataset dataset;
  status = UploadPairs(*client_, &dataset);
  ASSERT_TRUE(status.ok()) << Describe(status);
  v1::CreateFineTuneJobRequest request = TinyJobRequest(dataset.id(), 40, 50);
  request.set_suffix("alpha");
  v1::FineTuneJob job;
  ASSERT_TRUE(CreateJob(*client_, request, &job).ok());
  std::vector<v1::JobEvent> events;
  status = Watch(*client_, job.id(), 0, &events);
  ASSERT_TRUE(status.ok()) << Describe(status);
  ASSERT_TRUE(GetJob(*client_, job.id(), &job).ok());
  ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.error().message();

  // Registered before the job was marked SUCCEEDED.
  bool found = false;
  for (const v1::Adapter& a : List()) {
    if (a.name() != "alpha") continue;
    found = true;
    EXPECT_EQ(a.version(), 1);
    EXPECT_EQ(a.source_job(), job.id());
    EXPECT_EQ(a.rank(), 8);
    EXPECT_EQ(a.target_modules_size(), 7);
    EXPECT_GT(a.size_bytes(), 0);
    EXPECT_FALSE(a.residency().empty());
    EXPECT_GT(a.created_at_unix(), 0);
  }
  EXPECT_TRUE(found);

  const std::vector<std::string> alpha = Outputs("alpha");
  EXPECT_NE(alpha, base_before);
  EXPECT_EQ(Outputs(job.id()), alpha);  // the job id names it too
  EXPECT_EQ(Outputs(""), base_before);
  EXPECT_EQ(Outputs("beta"), beta_before);

  // Downloading gives back the files the job wrote.
  grpc::ClientContext context;
  v1::DownloadAdapterRequest download;
  download.set_name("alpha");
  auto reader = adapters_->Download(&context, download);
  std::map<std::string, std::string> files;
  v1::FileChunk chunk;
  while (reader->Read(&chunk)) files[chunk.filename()] += chunk.data();
  status = reader->Finish();
  ASSERT_TRUE(status.ok()) << Describe(status);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_GT(files["adapter_model.safetensors"].size(), 1000u);
  EXPECT_NE(files["adapter_config.json"].find("\"r\": 8"), std::string::npos);

  // Round trip: what was downloaded uploads again under a new name, serves
  // the same tokens, and downloads back byte for byte.
  v1::Adapter copy;
  status = UploadAdapter(*adapters_, "alpha-copy", files, &copy);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(Outputs("alpha-copy"), alpha);
  grpc::ClientContext copy_context;
  download.set_name("alpha-copy");
  auto copy_reader = adapters_->Download(&copy_context, download);
  std::map<std::string, std::string> copy_files;
  while (copy_reader->Read(&chunk))
    copy_files[chunk.filename()] += chunk.data();
  ASSERT_TRUE(copy_reader->Finish().ok());
  EXPECT_EQ(copy_files, files);
  grpc::ClientContext del_copy_context;
  v1::DeleteAdapterRequest del_copy;
  del_copy.set_name("alpha-copy");
  v1::DeleteAdapterResponse copy_deleted;
  ASSERT_TRUE(
      adapters_->Delete(&del_copy_context, del_copy, &copy_deleted).ok());

  // Deleting it: gone from the list; its name no longer serves.
  grpc::ClientContext del_context;
  v1::DeleteAdapterRequest del;
  del.set_name("beta");
  v1::DeleteAdapterResponse deleted;
  status = adapters_->Delete(&del_context, del, &deleted);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(GenerateText(*client_->inference, "beta", kPrompts[0])
                .status.error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Outputs("alpha"), alpha);

  // Regression: a deleted adapter of a job stays deleted across a restart,
  // while one still registered is served again at once.
  grpc::ClientContext del_alpha_context;
  del.set_name("alpha");
  ASSERT_TRUE(adapters_->Delete(&del_alpha_context, del, &deleted).ok());
  daemon_.reset();
  auto restarted = StartWithWorker(dir_.path() + "/data");
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  daemon_ = *std::move(restarted);
  client_ = std::make_unique<Client>(daemon_->address());
  adapters_ = v1::Adapters::NewStub(client_->channel);
  EXPECT_TRUE(List().empty());
  v1::Adapter gamma;
  ASSERT_TRUE(
      UploadAdapter(*adapters_, "gamma", MakeTinyAdapter({}), &gamma).ok());
  EXPECT_EQ(Outputs("gamma"), beta_before);  // same files as beta had
}

// Bad uploads are refused with INVALID_ARGUMENT naming the file and key; the
// registry keeps what it had and the daemon keeps serving.
TEST_F(AdaptersTest, BadUploadsAreRefused) {
  v1::Adapter good;
  grpc::Status status =
      UploadAdapter(*adapters_, "good", MakeTinyAdapter({}), &good);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(good.version(), 1);
  const std::vector<std::string> good_outputs = Outputs("good");

  struct Case {
    std::string what;
    AdapterFiles files;
    std::string want_in_message;
  };
  std::vector<Case> cases;
  AdapterSpec wrong_rank;
  wrong_rank.config_rank = 8;  // tensors have r = 4
  cases.push_back({"wrong shapes", MakeTinyAdapter(wrong_rank), "shape"});
  AdapterSpec unknown_target;
  unknown_target.extra_config_target = "attn_proj";
  cases.push_back(
      {"unknown target", MakeTinyAdapter(unknown_target), "attn_proj"});
  AdapterFiles missing = MakeTinyAdapter({});
  missing.erase("adapter_model.safetensors");
  cases.push_back({"missing file", missing, "adapter_model.safetensors"});
  AdapterFiles corrupt = MakeTinyAdapter({});
  corrupt["adapter_model.safetensors"] =
      corrupt["adapter_model.safetensors"].substr(0, 100);
  cases.push_back({"corrupt safetensors", corrupt, "safetensors"});
  AdapterFiles bad_json = MakeTinyAdapter({});
  bad_json["adapter_config.json"] = "{\"r\": ";
  cases.push_back({"bad config", bad_json, "adapter_config.json"});
  AdapterFiles extra = MakeTinyAdapter({});
  extra["model.bin"] = "x";
  cases.push_back({"unexpected file", extra, "model.bin"});

  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    v1::Adapter adapter;
    status = UploadAdapter(*adapters_, "good", c.files, &adapter);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << Describe(status);
    EXPECT_NE(status.error_message().find(c.want_in_message), std::string::npos)
        << status.error_message();
  }
  v1::Adapter bad_name;
  status =
      UploadAdapter(*adapters_, "../escape", MakeTinyAdapter({}), &bad_name);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // Nothing changed: still version 1, same outputs.
  std::vector<v1::Adapter> listed = List();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].name(), "good");
  EXPECT_EQ(listed[0].version(), 1);
  EXPECT_EQ(Outputs("good"), good_outputs);
  EXPECT_EQ(
      std::filesystem::exists(dir_.path() + "/data/adapter_registry/good/v2"),
      false);
}

// Replacing, unloading and loading adapters while clients keep sending
// requests: no request fails, and once a replacement has returned every new
// request gets the new version.
TEST_F(AdaptersTest, ReplaceAndUnloadWhileServing) {
  AdapterSpec first;
  first.seed = 11;
  AdapterSpec second;
  second.seed = 22;
  v1::Adapter a;
  ASSERT_TRUE(UploadAdapter(*adapters_, "a", MakeTinyAdapter(first), &a).ok());
  ASSERT_TRUE(UploadAdapter(*adapters_, "b", MakeTinyAdapter(second), &a).ok());
  const std::string a1 =
      GenerateText(*client_->inference, "a", kPrompts[0]).text;
  const std::string b1 =
      GenerateText(*client_->inference, "b", kPrompts[0]).text;
  ASSERT_NE(a1, b1);

  std::atomic<bool> done{false};
  std::atomic<int> failures{0}, requests{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      const char* names[] = {"a", "b", ""};
      for (int i = 0; !done || i < 3; ++i) {
        Generated g = GenerateText(*client_->inference, names[(t + i) % 3],
                                   kPrompts[i % 4], 6);
        ++requests;
        requests.notify_all();
        if (!g.status.ok()) {
          ++failures;
          ADD_FAILURE() << Describe(g.status);
        }
        if (done && i >= 3) break;
      }
    });
  }
  for (int round = 0; round < 3; ++round) {
    const int requests_before = requests;
    v1::Adapter replaced;
    grpc::Status status = UploadAdapter(
        *adapters_, "a", MakeTinyAdapter(round % 2 == 0 ? second : first),
        &replaced);
    ASSERT_TRUE(status.ok()) << Describe(status);
    EXPECT_EQ(replaced.version(), round + 2);
    // After the swap, new requests get the new version.
    EXPECT_EQ(GenerateText(*client_->inference, "a", kPrompts[0]).text,
              round % 2 == 0 ? b1 : a1);

    grpc::ClientContext unload_context;
    v1::UnloadAdapterRequest unload;
    unload.set_name("b");
    v1::Adapter unloaded;
    status = adapters_->Unload(&unload_context, unload, &unloaded);
    EXPECT_TRUE(status.ok()) << Describe(status);
    grpc::ClientContext load_context;
    v1::LoadAdapterRequest load;
    load.set_name("b");
    v1::Adapter loaded;
    status = adapters_->Load(&load_context, load, &loaded);
    EXPECT_TRUE(status.ok()) << Describe(status);
    EXPECT_EQ(loaded.version(), 1);
    // Every round overlaps the clients' requests, however fast it ran.
    for (int seen = requests; seen < requests_before + 4; seen = requests) {
      requests.wait(seen);
    }
  }
  done = true;
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_GE(requests, 12);
  EXPECT_EQ(GenerateText(*client_->inference, "b", kPrompts[0]).text, b1);
}

// Where an adapter lives follows load and unload; an unloaded adapter is
// loaded again on demand; the merged export can be downloaded.
TEST_F(AdaptersTest, ResidencyUnloadAndMergedExport) {
  v1::Adapter m;
  ASSERT_TRUE(UploadAdapter(*adapters_, "m", MakeTinyAdapter({}), &m).ok());
  const std::string before =
      GenerateText(*client_->inference, "m", kPrompts[2]).text;
  auto residency = [&] {
    std::vector<v1::Adapter> listed = List();
    return listed.size() == 1 ? listed[0].residency() : "?";
  };
  EXPECT_TRUE(residency() == "device" || residency() == "host") << residency();

  grpc::ClientContext unload_context;
  v1::UnloadAdapterRequest unload;
  unload.set_name("m");
  v1::Adapter unloaded;
  grpc::Status status = adapters_->Unload(&unload_context, unload, &unloaded);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(residency(), "not loaded");
  grpc::ClientContext again_context;  // unloading twice is not an error
  status = adapters_->Unload(&again_context, unload, &unloaded);
  EXPECT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(GenerateText(*client_->inference, "m", kPrompts[2]).text, before);

  grpc::ClientContext export_context;
  v1::ExportMergedRequest export_request;
  export_request.set_name("m");
  v1::ExportMergedResponse exported;
  status = adapters_->ExportMerged(&export_context, export_request, &exported);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_GT(exported.size_bytes(), 0);
  EXPECT_EQ(exported.adapter().merged_path(), exported.path());

  grpc::ClientContext context;
  v1::DownloadAdapterRequest download;
  download.set_name("m");
  download.set_merged(true);
  auto reader = adapters_->Download(&context, download);
  std::map<std::string, int64_t> files;
  v1::FileChunk chunk;
  while (reader->Read(&chunk)) {
    files[chunk.filename()] += static_cast<int64_t>(chunk.data().size());
  }
  status = reader->Finish();
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_GT(files["config.json"], 0);
  EXPECT_GT(files["model.safetensors"], 0);

  // A merged download of an adapter never exported is refused.
  v1::Adapter other;
  ASSERT_TRUE(UploadAdapter(*adapters_, "n", MakeTinyAdapter({}), &other).ok());
  grpc::ClientContext other_context;
  download.set_name("n");
  auto other_reader = adapters_->Download(&other_context, download);
  while (other_reader->Read(&chunk)) {
  }
  EXPECT_EQ(other_reader->Finish().error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

// With --max_device_adapters=1 the least recently used adapter moves to
// host memory and comes back on demand; a pinned one stays on the device.
TEST_F(AdaptersTest, DeviceBoundMovesLeastRecentlyUsedToHost) {
  daemon_.reset();
  auto daemon =
      StartWithWorker(dir_.path() + "/bounded", {"--max_device_adapters=1"});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  daemon_ = *std::move(daemon);
  client_ = std::make_unique<Client>(daemon_->address());
  adapters_ = v1::Adapters::NewStub(client_->channel);

  std::map<std::string, std::string> first_output;
  for (const std::string name : {"a", "b", "c"}) {
    AdapterSpec spec;
    spec.seed = name[0];
    v1::Adapter adapter;
    ASSERT_TRUE(
        UploadAdapter(*adapters_, name, MakeTinyAdapter(spec), &adapter).ok());
    first_output[name] =
        GenerateText(*client_->inference, name, kPrompts[0]).text;
  }
  auto residency = [&] {
    std::map<std::string, std::string> out;
    for (const v1::Adapter& a : List()) out[a.name()] = a.residency();
    return out;
  };
  std::map<std::string, std::string> where = residency();
  EXPECT_EQ(where["c"], "device");
  EXPECT_EQ(where["a"], "host");
  EXPECT_EQ(where["b"], "host");

  // Used again, "a" comes back and gives the same text as before.
  EXPECT_EQ(GenerateText(*client_->inference, "a", kPrompts[0]).text,
            first_output["a"]);
  where = residency();
  EXPECT_EQ(where["a"], "device");
  EXPECT_EQ(where["c"], "host");

  grpc::ClientContext context;
  v1::LoadAdapterRequest pin;
  pin.set_name("b");
  pin.set_pinned(true);
  v1::Adapter pinned;
  grpc::Status status = adapters_->Load(&context, pin, &pinned);
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_TRUE(pinned.pinned());
  EXPECT_EQ(GenerateText(*client_->inference, "c", kPrompts[0]).text,
            first_output["c"]);
  EXPECT_EQ(GenerateText(*client_->inference, "a", kPrompts[0]).text,
            first_output["a"]);
  where = residency();
  EXPECT_EQ(where["b"], "device");
}

// Eight clients, each on its own channel, all complete, and the same
// greedy request gives the same text whoever sends it.
TEST_F(AdaptersTest, ConcurrentClientsAllComplete) {
  v1::Adapter a;
  ASSERT_TRUE(UploadAdapter(*adapters_, "a", MakeTinyAdapter({}), &a).ok());
  const std::string want_base =
      GenerateText(*client_->inference, "", kPrompts[1]).text;
  const std::string want_a =
      GenerateText(*client_->inference, "a", kPrompts[1]).text;
  constexpr int kClients = 8;
  std::vector<std::thread> threads;
  std::vector<std::vector<Generated>> results(kClients);
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      auto channel = grpc::CreateChannel(daemon_->address(),
                                         grpc::InsecureChannelCredentials());
      auto stub = v1::Inference::NewStub(channel);
      for (int i = 0; i < 3; ++i) {
        results[c].push_back(
            GenerateText(*stub, (c + i) % 2 ? "a" : "", kPrompts[1]));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int c = 0; c < kClients; ++c) {
    for (int i = 0; i < 3; ++i) {
      SCOPED_TRACE(absl::StrCat("client ", c, " request ", i));
      const Generated& g = results[c][i];
      ASSERT_TRUE(g.status.ok()) << Describe(g.status);
      EXPECT_EQ(g.text, (c + i) % 2 ? want_a : want_base);
    }
  }
}

}  // namespace
}  // namespace lorad::testing
