// Linkage attack: joins an auxiliary data set (what an attacker knows about
// people) with a release on shared quasi-identifiers, understanding the
// release's generalised values (ranges, masked prefixes, '*').
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "anonymize/table.h"
#include "common/error.h"

namespace cr::risk {

// One released value as a predicate over auxiliary values.
struct ValueMatcher {
  enum class Kind { kAny, kExact, kRange, kPrefix };
  Kind kind = Kind::kExact;
  std::string text;   // kExact: the value; kPrefix: the kept prefix
  size_t length = 0;  // kPrefix: length of the full masked value
  double lo = 0, hi = 0;
  bool lo_closed = true, hi_closed = false;

  // Understands "*", "[50, 60[", "[50, 60)", "(a, b]", "50-59" (inclusive),
  // "<20", ">=90", "021**"; anything else matches only itself.
  static ValueMatcher Parse(const std::string& released);
  bool Matches(const std::string& aux_value) const;
};

struct LinkageOptions {
  std::vector<std::string> link;  // columns both sides carry
  std::string truth;              // "" or a column both sides carry (e.g. a record id)
  std::string sensitive;          // "" or a release column whose disclosure is measured
};

struct LinkageReport {
  uint64_t aux_records = 0;
  uint64_t release_patterns = 0;  // distinct generalised combinations on the link columns
  uint64_t matched = 0;           // aux records with at least one candidate
  uint64_t unmatched = 0;
  uint64_t reidentified = 0;        // exactly one candidate
  std::optional<uint64_t> correct;  // with a truth column: re-identifications that are right
  // Candidate-set size buckets: "0", "1", "2-4", "5-9", "10-19", "20+".
  std::map<std::string, uint64_t> candidates;
  // With a sensitive attribute: aux records whose candidates all share one value.
  std::optional<uint64_t> disclosed;
  std::map<std::string, uint64_t> disclosed_values;  // value -> aux records learning it
};

// UNKNOWN_COLUMN when a link/truth column is missing on either side (naming the side).
Result<LinkageReport> RunLinkage(const anonymize::Table& release, const anonymize::Table& aux,
                                 const LinkageOptions& options);

nlohmann::json ToJson(const LinkageReport& report);

}  // namespace cr::risk
