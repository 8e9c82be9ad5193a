// The collaboration spec (docs/spec-reference.md): parse and validate every field,
// hash the exact bytes (plus the bytes of every key file it names), and sign
// and verify parties' signatures over that hash.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/error.h"
#include "crypto/crypto.h"

namespace cr::spec {

enum class ColumnType { kString, kInteger, kDouble, kBoolean, kDate, kTimestamp };
enum class Role { kJoinKey, kDimension, kMetric, kSensitive };
enum class Normalize { kNone, kEmail, kPhone, kText };
enum class RuleKind { kAggregation, kList, kCustom };
enum class AggFn { kCount, kCountDistinct, kSum, kAvg, kStddev, kMedian };

// Spec spelling of each enum ("string", "join_key", "email", "aggregation", "count_distinct").
std::string_view Name(ColumnType t);
std::string_view Name(Role r);
std::string_view Name(Normalize n);
std::string_view Name(RuleKind k);
std::string_view Name(AggFn f);
// DuckDB type name of a column type ("VARCHAR", "BIGINT", "DOUBLE", "BOOLEAN", "DATE", "TIMESTAMP").
std::string_view DuckDbType(ColumnType t);
// The rule a party name must follow in a spec, and its spelling for messages:
// keygen --name checks it too, so a key is never named what no spec can say.
bool IsPartyName(std::string_view name);
// A region name ([a-z0-9-]+): the spec's region, a party's, result_regions, room init --region.
bool IsRegion(std::string_view region);
std::string_view PartyNamePattern();

struct Column {
  std::string name;
  ColumnType type = ColumnType::kString;
  Role role = Role::kDimension;
  Normalize normalize = Normalize::kNone;
  std::optional<std::pair<double, double>> bounds;  // metric/sensitive numeric columns
};

// A dataset's usage budget: `count` queries per `per` (day, week, month or
// lifetime), counted in the room's budget ledger (budget/ledger.h).
struct MaxQueries {
  int64_t count = 0;
  std::string per;  // day | week | month | lifetime
};

struct Rule {
  RuleKind kind = RuleKind::kAggregation;
  std::vector<std::string> receivers;                       // party names
  // aggregation
  std::map<std::string, std::vector<AggFn>> aggregates;     // column -> allowed functions
  std::optional<int64_t> min_distinct_units;
  std::vector<std::string> join_operators = {"and"};        // subset of {and, or}
  // Differential privacy (both need privacy.dp): the dimension values whose
  // groups are released without partition selection (spec spelling, as
  // DuckDB prints the value), and whether every query touching the dataset
  // must be answered with noise.
  std::map<std::string, std::vector<std::string>> public_values;  // dimension -> values
  bool require_dp = false;
  // list
  std::vector<std::string> list_columns;
  // custom
  std::vector<std::string> templates;
  // Residency: results are sealed only to receivers whose party region is one
  // of these; empty: no limit.
  std::vector<std::string> result_regions;
  // Usage budget (any kind): at most `max_queries` queries touching the
  // dataset per window (docs/spec-reference.md).
  std::optional<MaxQueries> max_queries;
  // Pooled datasets (contributors): cell rules for business data, checked
  // inside the generated SQL (docs/query-rules.md). A released cell needs
  // min_contributors distinct contributors; under `dominance` no n of them may
  // supply more than k of a released SUM (or AVG); under `p_percent` the rest
  // of the cell after the two largest contributors must exceed p% of the largest.
  std::optional<int64_t> min_contributors;
  struct Dominance {
    int64_t n = 1;
    double k = 0;
  };
  std::optional<Dominance> dominance;
  std::optional<double> p_percent;
};

// Default min_contributors of a pooled dataset's rule: below three, one
// contributor can subtract itself from a released total and learn the other.
inline constexpr int64_t kDefaultMinContributors = 3;
// The column the room adds to a pooled dataset when it mounts it: which
// contributor a row came from (its index in `contributors`). It is never
// declared, so no query can name it, and a declared column may not start with
// the room's reserved prefix.
inline constexpr const char* kContributorColumn = "__cr_contributor";
inline constexpr std::string_view kReservedPrefix = "__cr";

struct Dataset {
  std::string name;
  std::string owner;  // party name ("" for a pooled dataset)
  // A pooled dataset lists contributors instead of an owner: the union of the
  // latest part of each (spec order).
  std::vector<std::string> contributors;
  std::string privacy_unit_column;  // a join_key column
  std::vector<Column> columns;      // in spec order
  Rule rule;

  const Column* FindColumn(std::string_view column) const;
  bool pooled() const { return !contributors.empty(); }
  // May `party` contribute to it: the owner, or one of the contributors.
  bool Contributes(std::string_view party) const;
  // Index of `party` in contributors, -1 when it is none.
  int ContributorIndex(std::string_view party) const;
  // The effective min_contributors of a pooled dataset (0 for others).
  int64_t MinContributors() const;
};

struct Party {
  std::string name;
  std::string public_key_source;    // as written in the spec: key text or a path
  std::string key_bytes;            // exact bytes of the key file ("" when inline)
  crypto::PublicIdentity key;
  std::vector<std::string> abilities;  // contribute | query | receive_results
  std::string region;                  // where the party is ("" when undeclared)

  bool Can(std::string_view ability) const;
};

struct Dp {
  double epsilon = 0;                     // the room's budget per refresh period
  double delta = 0;                       // partition selection needs > 0
  int64_t max_groups_per_unit = 1;        // groups one unit may contribute to, per query
  int64_t max_contributions_per_group = 1;  // rows of one unit counted in one group
  double query_epsilon = 0;               // a DP query's cost when none is asked for
  double max_query_epsilon = 0;           // the most one query may spend (default: epsilon)
  std::string refresh = "none";  // none | daily | weekly | monthly
};

struct Privacy {
  std::string unit = "person";
  int64_t min_distinct_units = 50;
  std::optional<Dp> dp;
  // Difference checks for threshold-only answers (docs/query-rules.md): on
  // unless the spec says `difference_checks: false`.
  bool difference_checks = true;
};

struct TemplateParam {
  std::string name;
  ColumnType type = ColumnType::kString;
};

struct Template {
  std::string name;
  std::vector<TemplateParam> parameters;  // in spec order
  std::string sql;
  // Answered as a benchmark over its pooled dataset (query --benchmark).
  bool benchmark = false;
};

struct Spec {
  std::string collaboration;
  std::string description;
  std::string region;
  int64_t retention_days = 0;  // 0: no automatic disposal
  std::vector<Party> parties;  // in spec order
  Privacy privacy;
  std::vector<Dataset> datasets;  // in spec order
  std::vector<Template> templates;

  std::string bytes;  // the exact bytes parsed
  std::string hash;   // hex SHA-256 over the bytes and every named key file's bytes

  const Party* FindParty(std::string_view name) const;
  const Party* FindPartyByKey(const crypto::PublicIdentity& key) const;
  const Dataset* FindDataset(std::string_view name) const;
  const Template* FindTemplate(std::string_view name) const;
  // Strictest threshold for a dataset: its rule's min_distinct_units, else the default.
  int64_t MinDistinctUnits(const Dataset& d) const;
};

// Parses and validates `bytes`. Key paths resolve against `base_dir`.
// SPEC_INVALID (exit 7) with a message naming the offending field path
// (e.g. "datasets.impressions.columns.cost.bounds"); KEY_INVALID/FILE_UNREADABLE
// for a party's key.
Result<Spec> Parse(std::string_view bytes, const std::string& base_dir);
// Reads the file and parses it with its own directory as base_dir.
Result<Spec> Load(const std::string& path);
// Parses `bytes` taking each key file from `key_files` (public_key as written in
// the spec -> the file's exact bytes) instead of the disk: how a room re-reads
// the copies it stored. FILE_UNREADABLE when a named key file is not in the map.
Result<Spec> ParseWithKeyFiles(std::string_view bytes,
                               const std::map<std::string, std::string>& key_files);

// ----- Summary -----------------------------------------------------------------------

// What a spec agrees, for `spec check`: ids, hash, parties with their abilities
// and key fingerprints, datasets with their columns and the thresholds in force
// (the effective min_distinct_units), rules and templates. Only names and
// settings from the spec: it holds no data.
nlohmann::ordered_json Summary(const Spec& spec);
// The same, as text for people.
std::string SummaryText(const Spec& spec);

// ----- Signatures ------------------------------------------------------------------

// Contents of SPEC.NAME.sig (JSON): who signed which spec hash.
struct Signature {
  std::string party;
  std::string collaboration;
  std::string spec_hash;        // hex
  std::string signature;        // raw 64 bytes
};

// Signs spec.hash with `id`, which must be one of the spec's parties
// (UNKNOWN_SIGNER otherwise). Returns the signature; see SignatureToJson.
Result<Signature> Sign(const Spec& spec, const crypto::Identity& id);
std::string SignatureToJson(const Signature& sig);
Result<Signature> SignatureFromJson(std::string_view text);  // BAD_INPUT when malformed

// Checks one signature against the spec: UNKNOWN_SIGNER (party not in the
// spec), SPEC_MISMATCH (signed another spec hash or collaboration),
// SIGNATURE_INVALID (bytes do not verify under that party's key).
Status Verify(const Spec& spec, const Signature& sig);

}  // namespace cr::spec
