// Times JsonConstraint::Mask per generated token on random walks (uniform
// over the allowed tokens, as a model with random weights picks), for the
// tiny byte-level tokenizer and any tokenizer.json files given, e.g. a 32k
// byte-level BPE from tests/golden/json_constraint_peer.py:
//   .venv/bin/python tests/golden/json_constraint_peer.py bpe /tmp/bpe.json
//   32000 build/bench/json_constraint_bench /tmp/bpe.json
// Prints one JSON object per tokenizer and format: mean / p50 / p99 Mask
// microseconds per token over all walks, and the factory's build time.
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_stats.h"
#include "lorad/model/json_constraint.h"
#include "lorad/model/tokenizer.h"
#include "nlohmann/json.hpp"

namespace {

using lorad::model::JsonConstraintFactory;
using lorad::model::Tokenizer;

constexpr const char* kSchema = R"({"type":"object","properties":{
  "name":{"type":"string"},"age":{"type":"integer"},
  "tags":{"type":"array","items":{"type":"string"},"maxItems":8},
  "address":{"type":"object","properties":{"city":{"type":"string"},
    "zip":{"type":"string"}},"required":["city"]},
  "kind":{"enum":["person","company",null]}},
  "required":["name","age","tags","address","kind"]})";

void Bench(const std::string& name, const Tokenizer& tokenizer) {
  const auto built = std::chrono::steady_clock::now();
  auto factory = JsonConstraintFactory::Create(tokenizer);
  const double factory_ms = std::chrono::duration<double, std::milli>(
                                std::chrono::steady_clock::now() - built)
                                .count();
  if (!factory.ok()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(),
                 std::string(factory.status().message()).c_str());
    return;
  }
  for (const char* type : {"json_object", "json_schema"}) {
    std::vector<double> micros;
    int64_t walks = 0, complete = 0;
    for (uint64_t seed = 0; seed < 20; ++seed) {
      auto constraint = (*factory)->Create(type, kSchema);
      if (!constraint.ok()) return;
      std::mt19937_64 rng(seed);
      std::vector<uint8_t> allowed(tokenizer.vocab_size());
      const int64_t budget = 256;
      for (int64_t step = 0; step < budget && !(*constraint)->Complete();
           ++step) {
        std::fill(allowed.begin(), allowed.end(), 1);
        const auto start = std::chrono::steady_clock::now();
        (*constraint)->Mask(budget - step, allowed);
        micros.push_back(std::chrono::duration<double, std::micro>(
                             std::chrono::steady_clock::now() - start)
                             .count());
        std::vector<int32_t> ids;
        for (size_t id = 0; id < allowed.size(); ++id) {
          if (allowed[id]) ids.push_back(static_cast<int32_t>(id));
        }
        if (ids.empty() ||
            !(*constraint)->Accept(ids[rng() % ids.size()]).ok()) {
          break;
        }
      }
      ++walks;
      complete += (*constraint)->Complete();
    }
    double sum = 0;
    for (double m : micros) sum += m;
    nlohmann::json out = {
        {"bench", "json_constraint_mask"},
        {"tokenizer", name},
        {"vocab", tokenizer.vocab_size()},
        {"format", type},
        {"factory_ms", factory_ms},
        {"tokens", micros.size()},
        {"walks", walks},
        {"complete", complete},
        {"mask_us_mean", micros.empty() ? 0 : sum / micros.size()},
        {"mask_us_p50", lorad::bench::Percentile(micros, 0.5)},
        {"mask_us_p99", lorad::bench::Percentile(micros, 0.99)},
    };
    std::printf("%s\n", out.dump().c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto tiny =
      Tokenizer::FromJson(lorad::model::MakeByteLevelTokenizerJson(), "tiny");
  if (tiny.ok()) Bench("tiny", **tiny);
  for (int i = 1; i < argc; ++i) {
    auto tokenizer = Tokenizer::FromFile(argv[i]);
    if (!tokenizer.ok()) {
      std::fprintf(stderr, "%s: %s\n", argv[i],
                   std::string(tokenizer.status().message()).c_str());
      return 1;
    }
    Bench(argv[i], **tokenizer);
  }
  return 0;
}
