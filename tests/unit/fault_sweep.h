// Runs an operation once per point where the disk can fail it: for each kind
// of fault (write, fsync, rename) the first call of that kind fails, then
// the second, and so on until the operation runs to the end without meeting
// the fault. After each failed run `check` asserts what it left behind.
#ifndef LORAD_TESTS_UNIT_FAULT_SWEEP_H_
#define LORAD_TESTS_UNIT_FAULT_SWEEP_H_

#include "absl/status/status.h"
#include "fault_env.h"
#include "gtest/gtest.h"

namespace lorad {

inline const char* FaultName(FaultInjectionEnv::Fault fault) {
  switch (fault) {
    case FaultInjectionEnv::kWrite:
      return "write (ENOSPC)";
    case FaultInjectionEnv::kSync:
      return "fsync (EIO)";
    case FaultInjectionEnv::kRename:
      return "rename (EIO)";
    default:
      return "?";
  }
}

// `op()` returns the operation's status; `check(fault, status)` runs after
// each injected failure. Returns how many fault points were met (a test
// should expect at least one of each kind it knows the operation does).
template <typename Op, typename Check>
int SweepDiskFaults(FaultInjectionEnv& env, Op op, Check check,
                    int max_points_per_kind = 32) {
  int points = 0;
  for (auto fault : {FaultInjectionEnv::kWrite, FaultInjectionEnv::kSync,
                     FaultInjectionEnv::kRename}) {
    for (int skip = 0; skip < max_points_per_kind; ++skip) {
      env.Disarm();
      env.Fail(fault, 1, skip);
      absl::Status status = op();
      if (env.Pending(fault) > 0) break;  // ran to the end past every call
      SCOPED_TRACE(::testing::Message()
                   << FaultName(fault) << " failing at call " << skip + 1);
      EXPECT_FALSE(status.ok()) << "the injected fault was swallowed";
      check(fault, status);
      ++points;
    }
  }
  env.Disarm();
  return points;
}

}  // namespace lorad

#endif  // LORAD_TESTS_UNIT_FAULT_SWEEP_H_
