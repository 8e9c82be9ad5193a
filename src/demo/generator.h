// Deterministic synthetic data for the demo, tests and benchmarks: a
// publisher's impressions and an advertiser's purchases with a known overlap.
#pragma once

#include <cstdint>
#include <string>

#include "common/error.h"

namespace cr::demo {

struct GeneratorOptions {
  uint64_t seed = 42;
  int64_t people = 20000;        // size of the publisher's audience (person ids 0..people-1)
  int64_t impressions = 100000;  // impression rows
  int64_t purchases = 20000;     // purchase rows
  double buyer_overlap = 0.3;    // share of the advertiser's customers who are also in the audience
  int campaigns = 8;             // 1..8, taken from the front of a fixed list
};

// impressions.csv columns: email,campaign,shown_at,cost,device
//   device is a column the demo spec does not declare, so tests can check it
//   never leaves the party's machine. Every audience member appears at least
//   once when impressions >= people; the remaining rows are skewed (a few
//   people see many ads, most see few). shown_at is "2026-10-05 14:03:22" in
//   2026-10-01..2026-12-31, cost is in [0, 5) with 4 decimals.
// purchases.csv columns: email,amount,day,store_id
//   store_id is likewise undeclared. Customers are a pool of max(1, purchases/2)
//   people, each buying at least once; round(pool * buyer_overlap) of them are
//   audience members (same person id, so same canonical email), the rest are
//   people nobody in the audience is. amount is in [1, 500) with 2 decimals,
//   day in 2026-10-01..2026-12-31.
// About 10% of rows carry a messy variant of the email (upper case, surrounding
// spaces, quoted) so normalisation matters. Same options -> same bytes.
// Files are streamed to a temporary file beside `path` and renamed into place,
// so a reader never sees half a file. USAGE for out-of-range options.
Status WriteImpressionsCsv(const GeneratorOptions& o, const std::string& path);
Status WritePurchasesCsv(const GeneratorOptions& o, const std::string& path);

// The canonical (already normalised) email of person id `person`, e.g.
// "jane.doe123@example.com": a pure function of the id, independent of the seed.
std::string PersonEmail(int64_t person);

}  // namespace cr::demo
