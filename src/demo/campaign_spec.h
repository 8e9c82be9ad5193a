// The advertiser/publisher collaboration spec the demo, end-to-end tests,
// benchmarks and fuzzer share: impressions (newsco) and purchases (acme).
#pragma once

#include <string>

namespace cr::demo {

struct CampaignSpecOptions {
  std::string collaboration = "acme-newsco-2026q4";
  std::string description = "Campaign measurement, Q4";
  // Folder (relative to the spec) holding acme.pub and newsco.pub; "" = beside it.
  std::string key_dir = "keys";
  // Adds privacy.dp (budget 1.5 a month, delta 1e-6, one group and up to ten
  // rows per person and group): queries with an epsilon get differential
  // privacy; queries without one keep the exact threshold.
  bool dp = false;
};

// The YAML text, as every party would sign it.
std::string CampaignSpec(const CampaignSpecOptions& options = {});

}  // namespace cr::demo
