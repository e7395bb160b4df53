// Admission control: the memory estimate against the device's room, the
// refusal message (estimate, room, shortfall, what would fit) and where the
// room comes from in a telemetry snapshot.
#include "jobs/admission.h"

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "jobs/job_validation.h"
#include "lorad/model/memory_estimate.h"
#include "lorad/model/tiny_model.h"
#include "telemetry/device_room.h"
#include "telemetry/telemetry_collector.h"

namespace lorad::server {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

DeviceRoom CpuRoom(int64_t free, int64_t worker) {
  DeviceRoom room;
  room.device = "cpu";
  room.total_bytes = 64 * kGiB;
  room.free_bytes = free;
  room.worker_bytes = worker;
  return room;
}

v1::Hyperparameters Defaults() {
  v1::Hyperparameters hp;
  EXPECT_TRUE(FillDefaultsAndValidate(/*present=*/false, hp).ok());
  return hp;
}

int64_t Estimate(const v1::Hyperparameters& hp, const DeviceRoom& room) {
  model::TrainingShape s;
  s.rank = hp.rank();
  s.target_modules.assign(hp.target_modules().begin(),
                          hp.target_modules().end());
  s.batch_size = hp.batch_size();
  s.seq_len = hp.max_seq_len();
  s.gradient_checkpointing = hp.gradient_checkpointing();
  s.compute_bytes = ComputeBytes(hp.compute_dtype(), room);
  return model::EstimateTrainingMemory(model::TinyModelConfig(), s).total;
}

// The number after `prefix` in `text`, or -1.
int64_t NumberAfter(const std::string& text, const std::string& prefix) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(prefix + "([0-9]+)"))) return -1;
  int64_t n = -1;
  EXPECT_TRUE(absl::SimpleAtoi(m[1].str(), &n));
  return n;
}

TEST(AdmissionTest, AdmitsAJobThatFits) {
  EXPECT_TRUE(AdmitFineTune(model::TinyModelConfig(), Defaults(),
                            CpuRoom(8 * kGiB, kGiB))
                  .ok());
}

// The value the refusal suggests after `field` ("batch_size 23 (estimate
// 12.5 GiB; ...") fits the room with its estimate as stated, and one more
// does not. Returns it (-1 when the message names none).
int64_t ExpectLargestThatFits(const std::string& message,
                              const std::string& field,
                              const v1::Hyperparameters& hp,
                              const DeviceRoom& room) {
  const size_t remedies = message.find("What would fit: ");
  EXPECT_NE(remedies, std::string::npos) << message;
  const int64_t value = NumberAfter(message.substr(remedies), field + " ");
  EXPECT_GT(value, 0) << message;
  auto with = [&](int64_t v) {
    v1::Hyperparameters h = hp;
    if (field == "batch_size") h.set_batch_size(static_cast<int32_t>(v));
    if (field == "max_seq_len") h.set_max_seq_len(static_cast<int32_t>(v));
    return Estimate(h, room);
  };
  EXPECT_LE(with(value), room.room_bytes()) << message;
  EXPECT_GT(with(value + 1), room.room_bytes()) << message;
  EXPECT_TRUE(absl::StrContains(
      message,
      absl::StrCat(field, " ", value, " (estimate ", FormatBytes(with(value)))))
      << message;
  return value;
}

TEST(AdmissionTest, RefusesAnOversizedJobSayingByHowMuchAndWhatFits) {
  v1::Hyperparameters hp = Defaults();
  hp.set_batch_size(1024);
  hp.set_max_seq_len(131072);
  const DeviceRoom room = CpuRoom(15 * kGiB, kGiB);
  const int64_t estimate = Estimate(hp, room);
  ASSERT_GT(estimate, room.room_bytes());

  absl::Status s = AdmitFineTune(model::TinyModelConfig(), hp, room);
  ASSERT_TRUE(absl::IsResourceExhausted(s)) << s;
  const std::string m(s.message());
  EXPECT_TRUE(absl::StrContains(
      m, "fine-tune job needs about " + FormatBytes(estimate)))
      << m;
  EXPECT_TRUE(absl::StrContains(
      m,
      "cpu has room for 16.0 GiB (15.0 GiB free + 1.0 GiB held by the "
      "worker)"))
      << m;
  EXPECT_TRUE(absl::StrContains(
      m, FormatBytes(estimate - room.room_bytes()) + " short"))
      << m;
  // Even one row of 131072 tokens is too much, checkpointed or not; a
  // shorter max_seq_len is what fits.
  EXPECT_TRUE(absl::StrContains(m, "batch_size 1 alone is not enough")) << m;
  EXPECT_TRUE(
      absl::StrContains(m, "gradient_checkpointing on alone is not enough"))
      << m;
  ExpectLargestThatFits(m, "max_seq_len", hp, room);
}

TEST(AdmissionTest, SuggestsTheLargestBatchThatFits) {
  v1::Hyperparameters hp = Defaults();
  hp.set_batch_size(64);
  hp.set_max_seq_len(4096);
  const DeviceRoom room = CpuRoom(12 * kGiB, kGiB / 2);
  absl::Status s = AdmitFineTune(model::TinyModelConfig(), hp, room);
  ASSERT_TRUE(absl::IsResourceExhausted(s)) << s;
  const std::string m(s.message());
  const int64_t batch = ExpectLargestThatFits(m, "batch_size", hp, room);
  ASSERT_GT(batch, 1) << m;
  const int64_t accumulation = (64 + batch - 1) / batch;
  EXPECT_TRUE(absl::StrContains(
      m, batch * accumulation == 64
             ? absl::StrCat("with gradient_accumulation ", accumulation,
                            " the effective batch stays 64)")
             : absl::StrCat("with gradient_accumulation ", accumulation,
                            " the effective batch is ", batch * accumulation,
                            " instead of 64)")))
      << m;
  ExpectLargestThatFits(m, "max_seq_len", hp, room);
}

TEST(AdmissionTest, SaysWhenNothingFits) {
  v1::Hyperparameters hp = Defaults();
  hp.set_gradient_checkpointing(true);
  const DeviceRoom room = CpuRoom(1024, 0);
  absl::Status s = AdmitFineTune(model::TinyModelConfig(), hp, room);
  ASSERT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "nothing: even batch_size 1"))
      << s;
  EXPECT_FALSE(absl::StrContains(s.message(), "gradient_checkpointing on ("))
      << s;
}

TEST(AdmissionTest, UnknownRoomAdmits) {
  v1::Hyperparameters hp = Defaults();
  hp.set_batch_size(1024);
  hp.set_max_seq_len(131072);
  EXPECT_TRUE(AdmitFineTune(model::TinyModelConfig(), hp, DeviceRoom()).ok());
}

TEST(AdmissionTest, ComputeBytesFollowTheDevice) {
  DeviceRoom gpu;
  gpu.device = "cuda:0";
  EXPECT_EQ(ComputeBytes("auto", gpu), 2);
  EXPECT_EQ(ComputeBytes("auto", CpuRoom(0, 0)), 4);
  EXPECT_EQ(ComputeBytes("float32", gpu), 4);
  EXPECT_EQ(ComputeBytes("bfloat16", CpuRoom(0, 0)), 2);
}

TEST(AdmissionTest, KvCacheEstimate) {
  const model::ModelConfig c = model::TinyModelConfig();
  EXPECT_EQ(
      model::KvCacheBytes(c, 10, 2),
      2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * 2 * 10);
}

TEST(AdmissionTest, GenerationThatCannotFitNamesMaxNewTokensThatWould) {
  const model::ModelConfig c = model::TinyModelConfig();
  const int64_t base = model::BaseModelBytes(c, 4);
  const int64_t per_token = model::KvCacheBytes(c, 1, 4);
  // Room for the base and 1000 positions.
  const DeviceRoom room = CpuRoom(base + 1000 * per_token, 0);
  GenerationDemand demand;
  demand.prompt_tokens = 10;
  demand.max_new_tokens = 990;
  EXPECT_TRUE(AdmitGeneration(c, demand, 1, room).ok());
  demand.max_new_tokens = 5000;
  absl::Status s = AdmitGeneration(c, demand, 1, room);
  ASSERT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "5010 positions")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "max_new_tokens 990 (")) << s;

  // Four at a time: max_new_tokens or the concurrency can give.
  demand.max_new_tokens = 990;
  s = AdmitGeneration(c, demand, 4, room);
  ASSERT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "4 requests x 1000 positions"))
      << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "max_new_tokens 240 (")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "--batch_concurrency 1 (")) << s;
}

TEST(AdmissionTest, PromptTokensAreALowerBound) {
  worker::v1::Sampling s;
  EXPECT_EQ(PromptTokensAtLeast(s), 1);
  s.set_prompt(std::string(33, 'x'));
  EXPECT_EQ(PromptTokensAtLeast(s), 3);
  s.add_messages()->set_content(std::string(15, 'y'));
  EXPECT_EQ(PromptTokensAtLeast(s), 3);
  EXPECT_EQ(DemandOf(s).max_new_tokens, kDefaultMaxNewTokens);
  s.set_max_new_tokens(7);
  EXPECT_EQ(DemandOf(s).max_new_tokens, 7);
}

// Left unset, gradient checkpointing is on exactly when the estimate
// without it does not fit the room (and when the room is unknown); a value
// the request set is kept.
TEST(AdmissionTest, GradientCheckpointingIsChosenFromTheEstimateWhenUnset) {
  const model::ModelConfig c = model::TinyModelConfig();
  v1::Hyperparameters hp = Defaults();
  ASSERT_FALSE(hp.has_gradient_checkpointing());
  hp.set_batch_size(64);
  hp.set_max_seq_len(4096);
  const DeviceRoom probe = CpuRoom(8 * kGiB, 0);
  v1::Hyperparameters off = hp, on = hp;
  off.set_gradient_checkpointing(false);
  on.set_gradient_checkpointing(true);
  const int64_t without = Estimate(off, probe), with = Estimate(on, probe);
  ASSERT_LT(with, without);

  v1::Hyperparameters chosen = hp;
  std::string note =
      ChooseGradientCheckpointing(c, CpuRoom((with + without) / 2, 0), chosen);
  EXPECT_TRUE(chosen.has_gradient_checkpointing());
  EXPECT_TRUE(chosen.gradient_checkpointing()) << note;
  EXPECT_TRUE(absl::StrContains(note, "gradient checkpointing on (auto"))
      << note;
  EXPECT_TRUE(absl::StrContains(note, FormatBytes(without))) << note;
  EXPECT_TRUE(AdmitFineTune(c, chosen, CpuRoom((with + without) / 2, 0)).ok());

  chosen = hp;
  note = ChooseGradientCheckpointing(c, CpuRoom(without, 0), chosen);
  EXPECT_FALSE(chosen.gradient_checkpointing()) << note;
  EXPECT_TRUE(absl::StrContains(note, "gradient checkpointing off (auto"))
      << note;

  chosen = hp;
  note = ChooseGradientCheckpointing(c, DeviceRoom(), chosen);
  EXPECT_TRUE(chosen.gradient_checkpointing()) << note;

  chosen = off;  // set by the request: kept, even where it does not fit
  EXPECT_EQ(ChooseGradientCheckpointing(c, CpuRoom(with, 0), chosen), "");
  EXPECT_FALSE(chosen.gradient_checkpointing());
}

// The 8-bit optimizer's state: 2 bytes per parameter plus an fp32 absmax
// pair per 256 for tensors of at least 4096 elements, 8 bytes below.
TEST(AdmissionTest, EightBitOptimizerStateInTheEstimate) {
  const model::ModelConfig c = model::TinyModelConfig();
  model::TrainingShape s;
  s.rank = 64;  // A of q_proj: 64 x hidden 64 = 4096 elements
  s.target_modules = {"q_proj"};
  const int64_t full = model::EstimateTrainingMemory(c, s).optimizer;
  s.optimizer_8bit = true;
  const int64_t eight = model::EstimateTrainingMemory(c, s).optimizer;
  const int64_t params = c.num_hidden_layers * 2 * 64 * c.hidden_size;
  EXPECT_EQ(full, params * 8);
  EXPECT_EQ(eight, params * 2 + c.num_hidden_layers * 2 * (4096 / 256) * 8);
  s.rank = 8;  // 512-element tensors keep 32-bit state
  EXPECT_EQ(model::EstimateTrainingMemory(c, s).optimizer,
            c.num_hidden_layers * 2 * 8 * c.hidden_size * 8);
}

// A paged optimizer's state may move to host memory: the device needs the
// estimate without it, and a job that is short by less than its optimizer
// state is told so.
TEST(AdmissionTest, PagedOptimizerStateNeedNotFitTheDevice) {
  const model::ModelConfig c = model::TinyModelConfig();
  v1::Hyperparameters hp = Defaults();
  hp.set_gradient_checkpointing(true);
  hp.set_batch_size(1);
  hp.set_max_seq_len(64);
  hp.set_rank(64);
  const DeviceRoom probe = CpuRoom(64 * kGiB, 0);
  model::TrainingShape s;
  s.rank = 64;
  s.target_modules.assign(hp.target_modules().begin(),
                          hp.target_modules().end());
  s.batch_size = 1;
  s.seq_len = 64;
  s.gradient_checkpointing = true;
  s.compute_bytes = ComputeBytes(hp.compute_dtype(), probe);
  const model::MemoryEstimateBytes full = model::EstimateTrainingMemory(c, s);
  ASSERT_EQ(full.pageable, 0);
  s.optimizer_paged = true;
  const model::MemoryEstimateBytes paged = model::EstimateTrainingMemory(c, s);
  EXPECT_EQ(paged.pageable, paged.optimizer);
  EXPECT_EQ(paged.total, full.total);
  // Room for all but half the optimizer state.
  const DeviceRoom room = CpuRoom(full.total - full.optimizer / 2, 0);
  absl::Status refused = AdmitFineTune(c, hp, room);
  ASSERT_TRUE(absl::IsResourceExhausted(refused)) << refused;
  EXPECT_TRUE(absl::StrContains(
      refused.message(),
      "optimizer paged_adamw_8bit (its state may move to host memory"))
      << refused;
  hp.set_optimizer("paged_adamw");
  EXPECT_TRUE(AdmitFineTune(c, hp, room).ok());
  hp.set_optimizer("paged_adamw_8bit");
  EXPECT_TRUE(AdmitFineTune(c, hp, room).ok());
}

TEST(JobValidationTest, OptimizerAndEarlyStoppingAreChecked) {
  auto refused = [](v1::Hyperparameters hp, const std::string& needle) {
    absl::Status s = FillDefaultsAndValidate(true, hp);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << needle;
    EXPECT_TRUE(absl::StrContains(s.message(), needle)) << s;
  };
  v1::Hyperparameters hp = Defaults();
  EXPECT_EQ(hp.optimizer(), "adamw");
  hp.set_optimizer("sgd");
  refused(hp, "hyperparameters.optimizer must be one of");
  hp = Defaults();
  hp.set_early_stopping_patience(2);
  refused(hp, "early_stopping_patience must be 0 unless eval_every > 0");
  hp.set_eval_every(5);
  EXPECT_TRUE(FillDefaultsAndValidate(true, hp).ok());
  hp.set_early_stopping_patience(-1);
  refused(hp, "early_stopping_patience must be in [0, ");
  hp = Defaults();
  hp.set_optimizer("adamw_8bit");
  EXPECT_TRUE(FillDefaultsAndValidate(true, hp).ok());
  for (const char* paged : {"paged_adamw", "paged_adamw_8bit"}) {
    hp.set_optimizer(paged);
    EXPECT_TRUE(FillDefaultsAndValidate(true, hp).ok()) << paged;
  }
}

TEST(AdmissionTest, ChecksRequestsAgainstTheRoomNow) {
  const model::ModelConfig c = model::TinyModelConfig();
  DeviceRoom room = CpuRoom(8 * kGiB, 0);
  Admission::Options options;
  options.batch_concurrency = 2;
  Admission admission([&room] { return room; }, options);

  v1::FineTuneJob job;
  job.set_model(model::kTinyModelName);
  *job.mutable_hyperparameters() = Defaults();
  EXPECT_TRUE(admission.CheckFineTune(job).ok());
  room.free_bytes = 1024;
  EXPECT_TRUE(absl::IsResourceExhausted(admission.CheckFineTune(job)));
  job.set_model("/nonexistent/model");
  EXPECT_TRUE(absl::IsNotFound(admission.CheckFineTune(job)));

  worker::v1::GenerateRequest request;
  request.set_model(model::kTinyModelName);
  request.mutable_sampling()->set_max_new_tokens(100);
  room.free_bytes =
      model::BaseModelBytes(c, 4) + model::KvCacheBytes(c, 150, 4);
  EXPECT_TRUE(admission.CheckGenerate(request).ok());
  request.mutable_sampling()->set_max_new_tokens(200);
  EXPECT_TRUE(absl::IsResourceExhausted(admission.CheckGenerate(request)));

  // A batch: two at a time of its largest request (line 2).
  std::vector<BatchLine> lines(3);
  for (int i = 0; i < 3; ++i) {
    lines[i].line = i + 1;
    lines[i].request.set_prompt("hi");
    lines[i].request.set_max_new_tokens(i == 1 ? 70 : 10);
  }
  const absl::flat_hash_map<std::string, Admission::BatchBase> models = {
      {"", {model::kTinyModelName, ""}}};
  EXPECT_TRUE(admission.CheckBatch(lines, models).ok());
  lines[1].request.set_max_new_tokens(100);
  absl::Status s = admission.CheckBatch(lines, models);
  ASSERT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_TRUE(absl::StartsWith(
      s.message(),
      "line 2 (the largest of 3 requests on model tiny, 2 at a "
      "time): generation needs about"))
      << s;

  // The same lines through an adapter trained on the int8 base count that
  // base's bytes: room for the NF4 base and the caches is too little.
  lines[1].request.set_max_new_tokens(70);
  for (BatchLine& line : lines) line.request.set_adapter("on-int8");
  const absl::flat_hash_map<std::string, Admission::BatchBase> on_int8 = {
      {"on-int8", {model::kTinyModelName, "int8"}}};
  EXPECT_TRUE(admission.CheckBatch(lines, {{"on-int8", models.at("")}}).ok());
  s = admission.CheckBatch(lines, on_int8);
  ASSERT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_TRUE(absl::StartsWith(
      s.message(),
      "line 2 (the largest of 3 requests on model tiny in int8, 2 at a "
      "time)"))
      << s;
  room.free_bytes =
      model::BaseModelBytes(c, 4, model::BaseQuantization::kInt8) +
      model::KvCacheBytes(c, 150, 4);
  EXPECT_TRUE(admission.CheckBatch(lines, on_int8).ok());
}

TEST(DeviceRoomTest, HostRoomIsAvailablePlusTheWorkersRss) {
  v1::TelemetrySnapshot snapshot;
  snapshot.mutable_devices()->mutable_host()->set_total_bytes(32 * kGiB);
  snapshot.mutable_devices()->mutable_host()->set_available_bytes(20 * kGiB);
  v1::ProcessMemory* worker = snapshot.add_processes();
  worker->set_role("worker");
  worker->set_rss_bytes(kGiB);
  // Before the worker reported: its process entry.
  DeviceRoom room = DeviceRoomOf(snapshot, "auto");
  EXPECT_EQ(room.device, "cpu");
  EXPECT_EQ(room.room_bytes(), 21 * kGiB);
  EXPECT_EQ(room.used_by_others_bytes(), 11 * kGiB);
  snapshot.mutable_worker_memory()->set_device("cpu");
  snapshot.mutable_worker_memory()->set_rss_bytes(2 * kGiB);
  room = DeviceRoomOf(snapshot, "auto");
  EXPECT_EQ(room.worker_bytes, 2 * kGiB);
  EXPECT_TRUE(room.known());
  EXPECT_FALSE(DeviceRoomOf(v1::TelemetrySnapshot(), "auto").known());
}

TEST(DeviceRoomTest, GpuRoomIsNvmlFreePlusTheWorkersReservedBytes) {
  v1::TelemetrySnapshot snapshot;
  snapshot.mutable_devices()->mutable_host()->set_total_bytes(32 * kGiB);
  for (int i = 0; i < 2; ++i) {
    v1::GpuDevice* gpu = snapshot.mutable_devices()->add_gpus();
    gpu->set_index(i);
    gpu->set_memory_total_bytes((80 + i) * kGiB);
    gpu->set_memory_free_bytes((50 + i) * kGiB);
  }
  DeviceRoom room = DeviceRoomOf(snapshot, "auto");
  EXPECT_EQ(room.device, "cuda:0");
  EXPECT_EQ(room.total_bytes, 80 * kGiB);
  EXPECT_EQ(room.room_bytes(), 50 * kGiB);
  EXPECT_EQ(DeviceRoomOf(snapshot, "cpu").device, "cpu");

  snapshot.mutable_worker_memory()->set_device("cuda:1");
  snapshot.mutable_worker_memory()->set_allocator_reserved_bytes(4 * kGiB);
  room = DeviceRoomOf(snapshot, "auto");
  EXPECT_EQ(room.device, "cuda:1");
  EXPECT_EQ(room.total_bytes, 81 * kGiB);
  EXPECT_EQ(room.room_bytes(), 55 * kGiB);

  // Without NVML: the worker's own total, nothing held by others.
  snapshot.mutable_devices()->clear_gpus();
  snapshot.mutable_worker_memory()->set_total_bytes(24 * kGiB);
  room = DeviceRoomOf(snapshot, "cuda");
  EXPECT_EQ(room.total_bytes, 24 * kGiB);
  EXPECT_EQ(room.room_bytes(), 24 * kGiB);
}

// Before the first sample the room is read from the devices, not assumed.
TEST(DeviceRoomTest, CollectorReadsTheHostBeforeTheFirstSample) {
  const std::filesystem::path proc =
      std::filesystem::path(::testing::TempDir()) / "admission_test_proc";
  std::filesystem::create_directories(proc);
  std::ofstream(proc / "meminfo") << "MemTotal:       16384000 kB\n"
                                  << "MemFree:         1000 kB\n"
                                  << "MemAvailable:    8192000 kB\n";
  std::ofstream(proc / "stat") << "cpu  1 0 0 1 0 0 0 0 0 0\n";
  TelemetryCollector::Options options;
  options.devices.nvml_library = "/nonexistent/libnvidia-ml.so.1";
  options.devices.proc_dir = proc.string();
  // Room() touches neither the store nor the worker.
  TelemetryCollector collector(options, /*store=*/nullptr,
                               /*worker=*/nullptr);
  const DeviceRoom room = collector.Room();
  EXPECT_EQ(room.device, "cpu");
  EXPECT_EQ(room.total_bytes, int64_t{16384000} * 1024);
  EXPECT_EQ(room.free_bytes, int64_t{8192000} * 1024);
  EXPECT_EQ(room.worker_bytes, 0);
}

TEST(AdmissionTest, FormatsBytes) {
  EXPECT_EQ(FormatBytes(3 * kGiB / 2), "1.5 GiB");
  EXPECT_EQ(FormatBytes(int64_t{5} << 20), "5.0 MiB");
  EXPECT_EQ(FormatBytes(0), "0.0 MiB");
}

}  // namespace
}  // namespace lorad::server

namespace lorad::server {
namespace {

// Jobs run at once: each base counted once, each job's own share summed,
// the jobs on one base at their longest max_seq_len (fused rows are padded
// to it).
TEST(AdmissionTest, JobsTogetherCountTheirBaseOnceAndTheLongestSequence) {
  v1::Hyperparameters short_hp = Defaults();
  short_hp.set_gradient_checkpointing(false);
  short_hp.set_max_seq_len(128);
  v1::Hyperparameters long_hp = short_hp;
  long_hp.set_max_seq_len(512);
  const DeviceRoom probe = CpuRoom(8 * kGiB, 0);
  model::TrainingShape s;
  s.rank = short_hp.rank();
  s.target_modules.assign(short_hp.target_modules().begin(),
                          short_hp.target_modules().end());
  s.batch_size = short_hp.batch_size();
  s.seq_len = 512;  // both at the longer length
  s.compute_bytes = ComputeBytes(short_hp.compute_dtype(), probe);
  const model::MemoryEstimateBytes e =
      model::EstimateTrainingMemory(model::TinyModelConfig(), s);
  const int64_t one_base = e.base + 2 * (e.total - e.base);

  std::vector<TrainingDemand> same_base = {
      {"tiny|nf4|4", model::TinyModelConfig(), short_hp},
      {"tiny|nf4|4", model::TinyModelConfig(), long_hp}};
  EXPECT_TRUE(AdmitTogether(same_base, CpuRoom(one_base, 0)).ok());
  absl::Status refused = AdmitTogether(same_base, CpuRoom(one_base - 1, 0));
  EXPECT_TRUE(absl::IsResourceExhausted(refused)) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(),
                                "2 fine-tune jobs at once need about"))
      << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "1 base ")) << refused;

  // On two bases (another quantization), the base counts twice.
  std::vector<TrainingDemand> two_bases = same_base;
  two_bases[0].hp = long_hp;
  two_bases[1].base_key = "tiny|int8|4";
  EXPECT_FALSE(AdmitTogether(two_bases, CpuRoom(one_base, 0)).ok());
  EXPECT_TRUE(AdmitTogether(two_bases, CpuRoom(one_base + e.base, 0)).ok());
  // The worker's holdings count as room: they are the running jobs'.
  EXPECT_TRUE(AdmitTogether(same_base, CpuRoom(0, one_base)).ok());
  EXPECT_TRUE(AdmitTogether(same_base, DeviceRoom()).ok());
}

}  // namespace
}  // namespace lorad::server
