// The memory estimate and admission of a job on the int8 base: its block
// linears count one byte per weight plus an fp32 absmax per output row
// (bitsandbytes' Int8Params), about twice NF4's, so a job that fits on
// NF4 can be refused on int8.
#include "gtest/gtest.h"
#include "jobs/admission.h"
#include "jobs/job_validation.h"
#include "lorad/model/base_quantization.h"
#include "lorad/model/memory_estimate.h"
#include "lorad/model/tiny_model.h"
#include "telemetry/device_room.h"

namespace lorad::server {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

DeviceRoom CpuRoom(int64_t free) {
  DeviceRoom room;
  room.device = "cpu";
  room.total_bytes = 64 * kGiB;
  room.free_bytes = free;
  return room;
}

TEST(Int8EstimateTest, BaseCountsInt8BytesPerRow) {
  const model::ModelConfig c = model::TinyModelConfig();
  int64_t per_layer = 0;
  for (const model::BlockLinear& l : model::BlockLinears(c)) {
    per_layer += l.out * l.in + l.out * 4;  // CB + SCB
  }
  EXPECT_EQ(model::Int8BlockLinearBytes(c), per_layer * c.num_hidden_layers);

  model::TrainingShape s;
  const model::MemoryEstimateBytes nf4 = model::EstimateTrainingMemory(c, s);
  s.base_quantization = model::BaseQuantization::kInt8;
  const model::MemoryEstimateBytes int8 = model::EstimateTrainingMemory(c, s);
  const int64_t nf4_linears = static_cast<int64_t>(
      c.NumBlockLinearParameters() * model::Nf4BytesPerParam());
  EXPECT_EQ(int8.base - nf4.base, model::Int8BlockLinearBytes(c) - nf4_linears);
  EXPECT_EQ(int8.total - nf4.total, int8.base - nf4.base);
  EXPECT_EQ(int8.base, model::BaseModelBytes(c, s.compute_bytes,
                                             model::BaseQuantization::kInt8));
}

TEST(Int8EstimateTest, AdmissionUsesTheJobsQuantization) {
  const model::ModelConfig c = model::TinyModelConfig();
  v1::Hyperparameters hp;
  ASSERT_TRUE(FillDefaultsAndValidate(/*present=*/false, hp).ok());
  hp.set_gradient_checkpointing(false);
  ASSERT_EQ(hp.quantization(), "nf4");
  v1::Hyperparameters int8 = hp;
  int8.set_quantization("int8");
  ASSERT_TRUE(FillDefaultsAndValidate(/*present=*/true, int8).ok());

  model::TrainingShape s;
  s.rank = hp.rank();
  s.target_modules.assign(hp.target_modules().begin(),
                          hp.target_modules().end());
  s.batch_size = hp.batch_size();
  s.seq_len = hp.max_seq_len();
  s.compute_bytes = 4;
  const int64_t nf4_total = model::EstimateTrainingMemory(c, s).total;
  s.base_quantization = model::BaseQuantization::kInt8;
  const int64_t int8_total = model::EstimateTrainingMemory(c, s).total;
  ASSERT_GT(int8_total, nf4_total);

  const DeviceRoom between = CpuRoom((nf4_total + int8_total) / 2);
  EXPECT_TRUE(AdmitFineTune(c, hp, between).ok());
  absl::Status refused = AdmitFineTune(c, int8, between);
  EXPECT_TRUE(absl::IsResourceExhausted(refused)) << refused;
  EXPECT_TRUE(AdmitFineTune(c, int8, CpuRoom(int8_total)).ok());
}

// Generation with an int8 adapter needs the int8 base beside its KV cache.
TEST(Int8EstimateTest, GenerationOnTheInt8BaseCountsItsBytes) {
  const model::ModelConfig c = model::TinyModelConfig();
  GenerationDemand demand;
  demand.prompt_tokens = 8;
  demand.max_new_tokens = 16;
  const int64_t kv = model::KvCacheBytes(c, 24, 4);
  const int64_t nf4 = model::BaseModelBytes(c, 4);
  const int64_t int8 =
      model::BaseModelBytes(c, 4, model::BaseQuantization::kInt8);
  ASSERT_GT(int8, nf4 + kv);
  const DeviceRoom room = CpuRoom(nf4 + kv);
  EXPECT_TRUE(AdmitGeneration(c, demand, 1, room).ok());
  demand.base_quantization = model::BaseQuantization::kInt8;
  EXPECT_TRUE(absl::IsResourceExhausted(AdmitGeneration(c, demand, 1, room)));
  EXPECT_TRUE(AdmitGeneration(c, demand, 1, CpuRoom(int8 + kv)).ok());
}

}  // namespace
}  // namespace lorad::server
