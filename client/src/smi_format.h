// `loractl smi`: a telemetry snapshot as an nvidia-smi-style table.
#ifndef LORAD_CLIENT_SMI_FORMAT_H_
#define LORAD_CLIENT_SMI_FORMAT_H_

#include <string>

#include "absl/time/time.h"
#include "lorad/v1/lorad.pb.h"

namespace lorad::client {

// The time, a box per GPU (or one for the host when lorad runs on CPU),
// the processes using the GPUs (lorad's own processes on CPU), then lorad's
// breakdown: worker memory, allocator, and the running job's estimate of
// base weights, adapters, optimizer, gradients and activations/KV cache.
// Every line is 91 characters wide, like nvidia-smi's.
std::string FormatSmi(const v1::TelemetrySnapshot& snapshot,
                      absl::TimeZone zone = absl::LocalTimeZone());

// Bytes as nvidia-smi prints them: "1234MiB".
std::string Mib(int64_t bytes);

}  // namespace lorad::client

#endif  // LORAD_CLIENT_SMI_FORMAT_H_
