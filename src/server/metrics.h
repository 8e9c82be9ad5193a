// Request counters and latencies of `cleanroom serve` in the Prometheus text
// format: counts only, never parties' data or SQL.
#pragma once

#include <array>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>

#include "room/cache.h"

namespace cr::server {

class Metrics {
 public:
  // One finished request: its route pattern (never the raw path, which holds
  // ids), method, status, latency, and the error code when it was refused.
  void Observe(std::string_view route, std::string_view method, int status, double seconds,
               std::string_view code);
  // cleanroom_http_requests_total{route,method,status},
  // cleanroom_http_request_duration_seconds (histogram),
  // cleanroom_http_refusals_total{code}.
  std::string Render() const;
  // A refusal not audited (past the per-address budget for unauthenticated
  // requests): cleanroom_unaudited_refusals_total.
  void CountUnaudited();

  static constexpr std::array<double, 12> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,   0.25,   0.5,   1,    2.5,   10};

 private:
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, long long> requests_;
  std::map<std::string, long long> refusals_;
  std::array<long long, kBuckets.size()> bucket_counts_{};
  long long count_ = 0;
  double sum_ = 0;
  long long unaudited_ = 0;
};

// The warm room's counters (room/cache.h) in the same format:
// cleanroom_cache_{hits,misses,evictions,invalidations}_total and the gauges
// cleanroom_cache_entries, cleanroom_cache_bytes. Counts and sizes only: which
// datasets are warm is not said.
std::string RenderCacheMetrics(const room::DecryptCache::Stats& stats, uint64_t max_bytes);
// Gauges of the decoded unit sets kept for difference checks (diffcheck::SetCache).
std::string RenderUnitSetCacheMetrics(uint64_t entries, uint64_t bytes);

}  // namespace cr::server
