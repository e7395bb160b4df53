// Small statistics the benchmarks report.
#ifndef LORAD_BENCH_BENCH_STATS_H_
#define LORAD_BENCH_BENCH_STATS_H_

#include <algorithm>
#include <cstddef>
#include <vector>

namespace lorad::bench {

// The p-quantile (0..1) of `v` by nearest rank; 0 for no samples.
inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace lorad::bench

#endif  // LORAD_BENCH_BENCH_STATS_H_
