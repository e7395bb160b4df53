// SIGTERM drains: a Generate stream open when lorad is told to stop runs to
// its end, and lorad then exits 0.
#include <signal.h>
#include <sys/wait.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client_util.h"
#include "daemon_process.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"

namespace lorad::testing {
namespace {

TEST(FaultsDrainTest, SigtermLetsAnOpenGenerateFinishThenExitsZero) {
  if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
  TempDir dir;
  auto daemon =
      StartWithWorker(dir.path() + "/data", {"--shutdown_grace=120s"});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  Client client((*daemon)->address());

  v1::GenerateRequest request;
  request.set_prompt("Count with me: one, two, three,");
  request.set_max_new_tokens(960);
  request.set_temperature(1.0f);
  request.set_seed(11);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(5)));
  auto stream = client.inference->Generate(&context, request);
  v1::GenerateResponse response;
  ASSERT_TRUE(stream->Read(&response)) << Describe(stream->Finish());
  ASSERT_TRUE(response.finish_reason().empty())
      << "the stream ended before lorad was told to stop";

  ASSERT_EQ(::kill((*daemon)->pid(), SIGTERM), 0);
  int after_sigterm = 0;
  std::string finish_reason;
  while (stream->Read(&response)) {
    ++after_sigterm;
    if (!response.finish_reason().empty()) {
      finish_reason = response.finish_reason();
    }
  }
  const grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << Describe(status);
  EXPECT_GT(after_sigterm, 0);
  EXPECT_FALSE(finish_reason.empty()) << "the stream was cut short";

  const int exit_status = (*daemon)->Terminate(absl::Minutes(2));
  EXPECT_TRUE(WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 0)
      << "wait status " << exit_status;
}

}  // namespace
}  // namespace lorad::testing
