// Fuzzes the safetensors reader (outside input: model weights and uploaded
// adapters). The reader maps a file, so each input is written to one first.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "lorad/model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path =
      "/tmp/lorad_safetensors_fuzz_" + std::to_string(getpid());
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  if (size > 0) std::fwrite(data, 1, size, f);
  std::fclose(f);
  auto file = lorad::model::SafetensorsFile::Open(path);
  if (file.ok()) {
    // Every tensor the reader accepts must lie inside the mapping.
    volatile uint8_t sink = 0;
    for (const auto& t : (*file)->tensors()) {
      if (t.nbytes > 0) {
        sink ^= t.data[0];
        sink ^= t.data[t.nbytes - 1];
      }
    }
  }
  std::remove(path.c_str());
  return 0;
}
