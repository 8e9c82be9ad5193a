#include "demo/campaign_spec.h"

#include <fmt/format.h>

namespace cr::demo {

std::string CampaignSpec(const CampaignSpecOptions& o) {
  std::string keys = o.key_dir.empty() ? "" : o.key_dir + "/";
  return fmt::format(R"(collaboration: {}
description: {}
region: eu
retention_days: 90
parties:
  acme:   {{public_key: {}acme.pub,   abilities: [contribute, query, receive_results]}}
  newsco: {{public_key: {}newsco.pub, abilities: [contribute, receive_results]}}
privacy:
  unit: person
  min_distinct_units: 50
{}datasets:
  impressions:
    owner: newsco
    privacy_unit_column: email
    columns:
      email:    {{type: string, role: join_key, normalize: email}}
      campaign: {{type: string, role: dimension}}
      shown_at: {{type: timestamp, role: dimension}}
      cost:     {{type: double, role: metric, bounds: [0, 5]}}
    rule:
      kind: aggregation
      aggregates: {{cost: [sum, avg], email: [count_distinct]}}
      min_distinct_units: 100
      receivers: [acme, newsco]
  purchases:
    owner: acme
    privacy_unit_column: email
    columns:
      email:  {{type: string, role: join_key, normalize: email}}
      amount: {{type: double, role: metric, bounds: [0, 500]}}
      day:    {{type: date, role: dimension}}
    rule: {{kind: aggregation, aggregates: {{amount: [sum, avg, count], email: [count_distinct]}}, receivers: [acme]}}
templates:
  conversions_by_campaign:
    parameters: {{since: date}}
    sql: |
      SELECT i.campaign, COUNT(DISTINCT p.email) AS buyers, SUM(p.amount) AS revenue
      FROM impressions i JOIN purchases p ON i.email = p.email
      WHERE p.day >= $since GROUP BY i.campaign
)",
                     o.collaboration, o.description, keys, keys,
                     o.dp ? "  dp: {epsilon: 1.5, delta: 1.0e-6, max_groups_per_unit: 1, "
                            "max_contributions_per_group: 10, refresh: monthly}\n"
                          : "");
}

}  // namespace cr::demo
