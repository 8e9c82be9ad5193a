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
  return out;
}

}  // namespace cr::server
