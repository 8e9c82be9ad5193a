// The collaboration spec used by the query tests: aggregation, list and custom
// rules, three parties (one that may query but not receive), and templates.
#pragma once

namespace cr::testing {

inline const char* kQuerySpec = R"(collaboration: acme-newsco-query-tests
description: Query tests
region: eu
retention_days: 90
parties:
  acme:    {public_key: keys/acme.pub,    abilities: [contribute, query, receive_results]}
  newsco:  {public_key: keys/newsco.pub,  abilities: [contribute, receive_results]}
  analyst: {public_key: keys/analyst.pub, abilities: [query]}
privacy:
  unit: person
  min_distinct_units: 50
datasets:
  impressions:
    owner: newsco
    privacy_unit_column: email
    columns:
      email:    {type: string, role: join_key, normalize: email}
      campaign: {type: string, role: dimension}
      shown_at: {type: timestamp, role: dimension}
      cost:     {type: double, role: metric, bounds: [0, 5]}
    rule:
      kind: aggregation
      aggregates: {cost: [sum, avg], email: [count_distinct]}
      min_distinct_units: 100
      receivers: [acme, newsco]
  purchases:
    owner: acme
    privacy_unit_column: email
    columns:
      email:  {type: string, role: join_key, normalize: email}
      amount: {type: double, role: metric, bounds: [0, 300]}
      day:    {type: date, role: dimension}
    rule: {kind: aggregation, aggregates: {amount: [sum, avg, count], email: [count_distinct]}, receivers: [acme]}
  segments:
    owner: acme
    privacy_unit_column: email
    columns:
      email:   {type: string, role: join_key, normalize: email}
      segment: {type: string, role: dimension}
      region:  {type: string, role: dimension}
    rule: {kind: list, list_columns: [segment], receivers: [acme]}
  audiences:
    owner: newsco
    privacy_unit_column: email
    columns:
      email:    {type: string, role: join_key, normalize: email}
      interest: {type: string, role: dimension}
    rule: {kind: list, list_columns: [interest], receivers: [acme, newsco]}
  visits:
    owner: newsco
    privacy_unit_column: email
    columns:
      email:   {type: string, role: join_key, normalize: email}
      site:    {type: string, role: dimension}
      seconds: {type: double, role: metric, bounds: [0, 3600]}
    rule: {kind: custom, templates: [time_by_site], receivers: [acme, newsco]}
templates:
  conversions_by_campaign:
    parameters: {since: date}
    sql: |
      SELECT i.campaign, COUNT(DISTINCT p.email) AS buyers, SUM(p.amount) AS revenue
      FROM impressions i JOIN purchases p ON i.email = p.email
      WHERE p.day >= $since GROUP BY i.campaign
  time_by_site:
    parameters: {exclude: string}
    sql: |
      SELECT site, COUNT(DISTINCT email) AS people, AVG(seconds) AS avg_seconds
      FROM visits WHERE site <> $exclude GROUP BY site
)";

// A spec whose privacy units are not emails: hints and "unknown" refusals
// must name this spec's columns, not the demo's.
inline const char* kCustomerSpec = R"(collaboration: shop-loyalty-tests
description: Query tests with other unit columns
region: eu
retention_days: 90
parties:
  acme:    {public_key: keys/acme.pub,    abilities: [contribute, query, receive_results]}
  newsco:  {public_key: keys/newsco.pub,  abilities: [contribute, receive_results]}
  analyst: {public_key: keys/analyst.pub, abilities: [query]}
privacy:
  unit: customer
  min_distinct_units: 50
datasets:
  orders:
    owner: acme
    privacy_unit_column: customer_id
    columns:
      customer_id: {type: string, role: join_key}
      store:       {type: string, role: dimension}
      total:       {type: double, role: metric, bounds: [0, 1000]}
    rule: {kind: aggregation, aggregates: {total: [sum], customer_id: [count_distinct]}, receivers: [acme]}
  members:
    owner: newsco
    privacy_unit_column: member_id
    columns:
      member_id: {type: string, role: join_key}
      tier:      {type: string, role: dimension}
    rule: {kind: aggregation, aggregates: {member_id: [count_distinct]}, receivers: [acme, newsco]}
)";

}  // namespace cr::testing
