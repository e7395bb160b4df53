// A driver for the fuzz targets when they are built without libFuzzer (the
// normal g++ build): runs every seed file given (files or directories), then
// a fixed number of deterministic mutations of them (bit flips, byte
// inserts and deletes, truncation, splices of two seeds). CTest runs this,
// so each parser meets thousands of malformed inputs on every CI run; a
// crash or a sanitizer report fails the test. With clang and
// -DLORAD_FUZZ=ON the same targets link against libFuzzer instead.
//
//   dataset_fuzz [--mutations=N] [--seed=S] PATH...
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

using Input = std::vector<uint8_t>;

void AddFile(const std::filesystem::path& p, std::vector<Input>* seeds) {
  std::ifstream in(p, std::ios::binary);
  seeds->emplace_back(std::istreambuf_iterator<char>(in),
                      std::istreambuf_iterator<char>());
}

Input Mutate(const std::vector<Input>& seeds, std::mt19937_64& rng) {
  Input x = seeds[rng() % seeds.size()];
  const int edits = 1 + static_cast<int>(rng() % 8);
  for (int e = 0; e < edits; ++e) {
    switch (rng() % 6) {
      case 0:  // flip a bit
        if (!x.empty()) x[rng() % x.size()] ^= uint8_t(1u << (rng() % 8));
        break;
      case 1:  // set a byte to an interesting value
        if (!x.empty()) {
          static const uint8_t kVals[] = {0,   0xff, 0x7f, 0x80, '"', '{',
                                          '}', '\n', ',',  ':',  '[', ']'};
          x[rng() % x.size()] = kVals[rng() % sizeof(kVals)];
        }
        break;
      case 2:  // insert a random byte
        x.insert(x.begin() + (x.empty() ? 0 : rng() % (x.size() + 1)),
                 uint8_t(rng()));
        break;
      case 3:  // delete a run
        if (!x.empty()) {
          size_t at = rng() % x.size();
          size_t n = std::min<size_t>(x.size() - at, 1 + rng() % 16);
          x.erase(x.begin() + at, x.begin() + at + n);
        }
        break;
      case 4:  // truncate
        if (!x.empty()) x.resize(rng() % x.size());
        break;
      case 5: {  // splice in a piece of another seed
        const Input& y = seeds[rng() % seeds.size()];
        if (y.empty()) break;
        size_t from = rng() % y.size();
        size_t n = std::min<size_t>(y.size() - from, 1 + rng() % 64);
        size_t at = x.empty() ? 0 : rng() % (x.size() + 1);
        x.insert(x.begin() + at, y.begin() + from, y.begin() + from + n);
        break;
      }
    }
  }
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  long mutations = 2000;
  uint64_t seed = 1;
  std::vector<Input> seeds;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--mutations=", 0) == 0) {
      mutations = std::stol(arg.substr(12));
    } else if (arg.rfind("--seed=", 0) == 0) {
      seed = std::stoull(arg.substr(7));
    } else if (std::filesystem::is_directory(arg)) {
      // In name order: the directory's own order differs between checkouts,
      // and the mutations pick seeds by position.
      std::vector<std::filesystem::path> files;
      for (const auto& e : std::filesystem::directory_iterator(arg)) {
        if (e.is_regular_file()) files.push_back(e.path());
      }
      std::sort(files.begin(), files.end());
      for (const auto& f : files) AddFile(f, &seeds);
    } else if (std::filesystem::is_regular_file(arg)) {
      AddFile(arg, &seeds);
    } else {
      std::cerr << argv[0] << ": no such seed file or directory: " << arg
                << "\n";
      return 2;
    }
  }
  if (seeds.empty()) {
    std::cerr << argv[0] << ": no seeds given\n";
    return 2;
  }
  for (const Input& s : seeds) LLVMFuzzerTestOneInput(s.data(), s.size());
  std::mt19937_64 rng(seed);
  for (long i = 0; i < mutations; ++i) {
    Input x = Mutate(seeds, rng);
    LLVMFuzzerTestOneInput(x.data(), x.size());
  }
  std::cout << argv[0] << ": " << seeds.size() << " seeds, " << mutations
            << " mutations, no crash\n";
  return 0;
}
