#include "query/functions.h"
#include "common/strings.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>

namespace cr::query {
namespace {

std::string Lower(std::string_view s) { return AsciiLower(s); }

struct Entry {
  std::string_view spelling;
  ScalarFunction fn;
};

// AWS Clean Rooms' aggregation-rule scalar functions mapped to DuckDB. Nothing
// here can read files, reach the network, hash, or expose row order; join keys
// are refused before any function sees them (column role check), so string
// functions on pseudonyms cannot happen whatever this list holds.
constexpr Entry kScalars[] = {
    // math
    {"abs", {"abs", 1, 1, false}},
    {"ceil", {"ceil", 1, 1, false}},
    {"ceiling", {"ceil", 1, 1, false}},
    {"floor", {"floor", 1, 1, false}},
    {"ln", {"ln", 1, 1, false}},
    {"log", {"log", 1, 2, false}},
    {"log10", {"log10", 1, 1, false}},
    {"log2", {"log2", 1, 1, false}},
    {"round", {"round", 1, 2, false}},
    {"sqrt", {"sqrt", 1, 1, false}},
    {"trunc", {"trunc", 1, 1, false}},
    {"greatest", {"greatest", 2, 8, false}},
    {"least", {"least", 2, 8, false}},
    {"nullif", {"nullif", 2, 2, false}},
    // text
    {"lower", {"lower", 1, 1, false}},
    {"lcase", {"lower", 1, 1, false}},
    {"upper", {"upper", 1, 1, false}},
    {"ucase", {"upper", 1, 1, false}},
    {"trim", {"trim", 1, 2, false}},
    {"rtrim", {"rtrim", 1, 2, false}},
    {"ltrim", {"ltrim", 1, 2, false}},
    {"substring", {"substring", 2, 3, false}},
    {"substr", {"substring", 2, 3, false}},
    {"length", {"length", 1, 1, false}},
    {"concat", {"concat", 1, 8, false}},
    {"left", {"left", 2, 2, false}},
    {"right", {"right", 2, 2, false}},
    {"replace", {"replace", 3, 3, false}},
    {"starts_with", {"starts_with", 2, 2, false}},
    // dates and times: truncation, extraction, differences, formatting
    {"date_trunc", {"date_trunc", 2, 2, false}},
    {"datetrunc", {"date_trunc", 2, 2, false}},
    {"date_part", {"date_part", 2, 2, false}},
    {"datepart", {"date_part", 2, 2, false}},
    {"date_diff", {"date_diff", 3, 3, false}},
    {"datediff", {"date_diff", 3, 3, false}},
    {"date_add", {"date_add", 2, 2, false}},
    {"strftime", {"strftime", 2, 2, false}},
    {"year", {"year", 1, 1, false}},
    {"quarter", {"quarter", 1, 1, false}},
    {"month", {"month", 1, 1, false}},
    {"week", {"week", 1, 1, false}},
    {"day", {"day", 1, 1, false}},
    {"dayofweek", {"dayofweek", 1, 1, false}},
    {"dayofmonth", {"dayofmonth", 1, 1, false}},
    {"dayofyear", {"dayofyear", 1, 1, false}},
    {"hour", {"hour", 1, 1, false}},
    {"minute", {"minute", 1, 1, false}},
    {"make_date", {"make_date", 3, 3, false}},
    // operators
    {"+", {"+", 1, 2, true}},
    {"-", {"-", 1, 2, true}},
    {"*", {"*", 2, 2, true}},
    {"/", {"/", 2, 2, true}},
    {"//", {"//", 2, 2, true}},
    {"%", {"%", 2, 2, true}},
    {"||", {"||", 2, 2, true}},
    {"~~", {"LIKE", 2, 2, true}},
    {"!~~", {"NOT LIKE", 2, 2, true}},
    {"~~*", {"ILIKE", 2, 2, true}},
    {"!~~*", {"NOT ILIKE", 2, 2, true}},
};

constexpr std::array<std::string_view, 24> kKnownAggregates = {
    "count", "count_star", "sum", "avg", "mean", "stddev", "stddev_samp", "stddev_pop",
    "median", "min", "max", "first", "last", "any_value", "arg_min", "arg_max", "list",
    "array_agg", "string_agg", "group_concat", "quantile", "mode", "approx_count_distinct",
    "histogram"};

}  // namespace

const ScalarFunction* FindScalar(std::string_view name) {
  std::string n = Lower(name);
  for (const auto& e : kScalars) {
    if (e.spelling == n) return &e.fn;
  }
  return nullptr;
}

std::optional<spec::AggFn> FindAggregate(std::string_view name, bool distinct) {
  std::string n = Lower(name);
  if (n == "count") return distinct ? spec::AggFn::kCountDistinct : spec::AggFn::kCount;
  if (distinct) return std::nullopt;  // SUM(DISTINCT x) and friends are not in any rule
  if (n == "sum") return spec::AggFn::kSum;
  if (n == "avg" || n == "mean") return spec::AggFn::kAvg;
  if (n == "stddev" || n == "stddev_samp") return spec::AggFn::kStddev;
  if (n == "median") return spec::AggFn::kMedian;
  return std::nullopt;
}

bool LooksLikeAggregate(std::string_view name) {
  std::string n = Lower(name);
  return std::find(kKnownAggregates.begin(), kKnownAggregates.end(), n) != kKnownAggregates.end();
}

std::string_view AggregateSqlName(spec::AggFn fn) {
  switch (fn) {
    case spec::AggFn::kCount: return "count";
    case spec::AggFn::kCountDistinct: return "count";
    case spec::AggFn::kSum: return "sum";
    case spec::AggFn::kAvg: return "avg";
    case spec::AggFn::kStddev: return "stddev_samp";
    case spec::AggFn::kMedian: return "median";
  }
  return "count";
}

bool AllowedCastType(std::string_view type_id) {
  static const std::array<std::string_view, 12> kTypes = {
      "VARCHAR", "BIGINT", "INTEGER", "SMALLINT", "DOUBLE", "FLOAT",
      "DECIMAL", "DATE",   "TIMESTAMP", "BOOLEAN", "INTERVAL", "TIME"};
  return std::find(kTypes.begin(), kTypes.end(), type_id) != kTypes.end();
}

std::vector<std::string> ScalarAllowList() {
  std::vector<std::string> out;
  for (const auto& e : kScalars) out.emplace_back(e.spelling);
  return out;
}

}  // namespace cr::query
