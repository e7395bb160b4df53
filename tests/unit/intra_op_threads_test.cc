// Intra-op threads chosen by the size of a pass, set per thread.
#include "lorad/worker/intra_op_threads.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "lorad/model/tiny_model.h"

namespace lorad::worker {
namespace {

TEST(IntraOpThreads, SmallPassesGetOneThreadAndWideOnesAll) {
  SetMaxIntraOpThreads(2);
  const model::ModelConfig tiny = model::TinyModelConfig();
  // 2048 tokens x 64 x 176: 23M multiply-adds.
  EXPECT_EQ(IntraOpThreadsFor(tiny, 2048), 1);
  model::ModelConfig wide = tiny;
  wide.hidden_size = 768;
  wide.intermediate_size = 2048;
  EXPECT_EQ(IntraOpThreadsFor(wide, 64), 1);   // 100M
  EXPECT_EQ(IntraOpThreadsFor(wide, 128), 2);  // 201M
  EXPECT_EQ(IntraOpThreadsFor(wide, int64_t{1} << 40), 2);
  SetParallelGemmMacs(0);
  EXPECT_EQ(IntraOpThreadsFor(tiny, 1), 2);
  SetParallelGemmMacs(kParallelGemmMacs);
}

TEST(IntraOpThreads, TheScopeSetsTheCallingThreadsCountAndRestoresIt) {
  SetMaxIntraOpThreads(2);
  at::set_num_threads(2);
  // A thread that started LibTorch before the scope keeps its count.
  std::promise<void> go;
  std::promise<int> before;
  std::promise<int> during;
  std::thread other([&] {
    before.set_value(at::get_num_threads());
    go.get_future().wait();
    during.set_value(at::get_num_threads());
  });
  EXPECT_EQ(before.get_future().get(), 2);
  {
    ScopedIntraOpThreads one(1);
    EXPECT_EQ(at::get_num_threads(), 1);
    go.set_value();
    EXPECT_EQ(during.get_future().get(), 2);
    {
      ScopedIntraOpThreads unchanged(0);
      EXPECT_EQ(at::get_num_threads(), 1);
    }
  }
  other.join();
  EXPECT_EQ(at::get_num_threads(), 2);
}

}  // namespace
}  // namespace lorad::worker
