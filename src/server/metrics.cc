#include "server/metrics.h"

#include <fmt/format.h>

namespace cr::server {

void Metrics::Observe(std::string_view route, std::string_view method, int status, double seconds,
                      std::string_view code) {
  std::lock_guard lock(mu_);
  ++requests_[{std::string(route), std::string(method), status}];
  if (!code.empty()) ++refusals_[std::string(code)];
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++bucket_counts_[i];
  }
  ++count_;
  sum_ += seconds;
}

void Metrics::CountUnaudited() {
  std::lock_guard lock(mu_);
  ++unaudited_;
}

std::string Metrics::Render() const {
  std::lock_guard lock(mu_);
  std::string out =
      "# HELP cleanroom_http_requests_total Requests served, by route pattern, method and status.\n"
      "# TYPE cleanroom_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    const auto& [route, method, status] = key;
    out += fmt::format("cleanroom_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{}\"}} {}\n",
                       route, method, status, n);
  }
  out +=
      "# HELP cleanroom_http_request_duration_seconds Time from the request's arrival to its response.\n"
      "# TYPE cleanroom_http_request_duration_seconds histogram\n";
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    out += fmt::format("cleanroom_http_request_duration_seconds_bucket{{le=\"{}\"}} {}\n",
                       kBuckets[i], bucket_counts_[i]);
  }
  out += fmt::format("cleanroom_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", count_);
  out += fmt::format("cleanroom_http_request_duration_seconds_sum {}\n", sum_);
  out += fmt::format("cleanroom_http_request_duration_seconds_count {}\n", count_);
  out +=
      "# HELP cleanroom_http_refusals_total Requests refused, by stable error code.\n"
      "# TYPE cleanroom_http_refusals_total counter\n";
  for (const auto& [code, n] : refusals_) {
    out += fmt::format("cleanroom_http_refusals_total{{code=\"{}\"}} {}\n", code, n);
  }
  out += fmt::format(
      "# HELP cleanroom_unaudited_refusals_total Refusals of unauthenticated requests past the "
      "per-address audit budget (serve --unauthenticated-audits-per-minute), counted instead.\n"
      "# TYPE cleanroom_unaudited_refusals_total counter\n"
      "cleanroom_unaudited_refusals_total {}\n",
      unaudited_);
  return out;
}

std::string RenderCacheMetrics(const room::DecryptCache::Stats& s, uint64_t max_bytes) {
  std::string out;
  auto one = [&](const char* name, const char* type, const char* help, uint64_t value) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help, type, value);
  };
  one("cleanroom_cache_hits_total", "counter", "Datasets a query read from the warm room.", s.hits);
  one("cleanroom_cache_misses_total", "counter", "Datasets decrypted for a query.", s.misses);
  one("cleanroom_cache_evictions_total", "counter", "Warm datasets dropped for the memory budget.",
      s.evictions);
  one("cleanroom_cache_invalidations_total", "counter",
      "Warm datasets dropped because their package left the room (new version, disposal).",
      s.invalidations);
  one("cleanroom_cache_entries", "gauge", "Decrypted datasets held in memory.", s.entries);
  one("cleanroom_cache_bytes", "gauge", "Memory the warm datasets hold.", s.bytes);
  one("cleanroom_cache_max_bytes", "gauge", "The warm room's budget (serve --cache-memory).", max_bytes);
  return out;
}

std::string RenderUnitSetCacheMetrics(uint64_t entries, uint64_t bytes) {
  return fmt::format(
      "# HELP cleanroom_unit_set_cache_entries Stored results whose difference-check unit sets "
      "are held decoded in memory.\n# TYPE cleanroom_unit_set_cache_entries gauge\n"
      "cleanroom_unit_set_cache_entries {}\n"
      "# HELP cleanroom_unit_set_cache_bytes Memory the decoded unit sets hold.\n"
      "# TYPE cleanroom_unit_set_cache_bytes gauge\ncleanroom_unit_set_cache_bytes {}\n",
      entries, bytes);
}

}  // namespace cr::server
