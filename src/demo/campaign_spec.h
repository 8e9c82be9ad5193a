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
};

// The YAML text, as every party would sign it.
std::string CampaignSpec(const CampaignSpecOptions& options = {});

}  // namespace cr::demo
