// Re-identification risk of a microdata release: equivalence classes on the
// quasi-identifiers (grouped on dictionary codes), prosecutor/journalist/
// marketer risk, sensitive-attribute diversity and closeness, and population
// uniqueness estimates (Zayatz, Pitman, SNB). Formulas and sources: docs/risk.md.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "anonymize/table.h"
#include "common/error.h"

namespace cr::risk {

// Records grouped by their values on some columns. Class ids are dense and in
// order of first appearance, so the grouping is deterministic.
struct Grouping {
  std::vector<uint32_t> class_of;   // class id per record
  std::vector<uint64_t> sizes;      // records per class
  std::vector<uint32_t> first_row;  // a representative record per class
};

// Groups on integer codes only (one code column per entry of `columns`); no
// string is touched. Codes are combined column by column into 64-bit keys and
// re-densified whenever the next column would overflow them.
Grouping GroupRecords(const std::vector<const std::vector<uint32_t>*>& columns, size_t rows);

// Column indices of `names` in `table`; UNKNOWN_COLUMN naming the first missing
// one, BAD_INPUT on an empty list or a repeated name.
Result<std::vector<size_t>> ResolveColumns(const anonymize::Table& table,
                                           const std::vector<std::string>& names,
                                           const std::string& what);

// Splits "a,b , c" into trimmed, non-empty names.
std::vector<std::string> SplitList(const std::string& list);

struct RiskOptions {
  std::vector<std::string> qis;
  std::string sensitive;               // "" when none
  double threshold = 0.2;              // records whose risk exceeds this are "at risk"
  std::optional<uint64_t> population;  // population size N (>= records)
};

struct PopulationEstimates {
  uint64_t population = 0;
  double sampling_fraction = 0;
  // Estimated number of population uniques (NaN when the model did not converge).
  double zayatz = 0;
  double pitman = 0;
  double snb = 0;
};

struct SensitiveRisk {
  std::string attribute;
  uint64_t distinct_l = 0;           // smallest number of distinct values in a class
  double entropy_l = 0;              // smallest exp(Shannon entropy) of a class
  double t = 0;                      // largest t-closeness distance of a class
  bool ordered = false;              // t measured with ordered EMD (numeric attribute)
  uint64_t homogeneous_classes = 0;  // classes where every record has one value
  uint64_t homogeneous_records = 0;
};

struct RiskReport {
  uint64_t records = 0;
  uint64_t classes = 0;
  uint64_t k = 0;  // smallest class
  uint64_t sample_uniques = 0;
  double sample_uniqueness = 0;
  double prosecutor_max = 0, prosecutor_avg = 0;
  double journalist_max = 0, journalist_avg = 0;
  double marketer = 0;
  double threshold = 0;
  uint64_t records_at_risk = 0;
  double records_at_risk_share = 0;
  // Per record, in input order: the size of its equivalence class (the
  // prosecutor risk is its inverse). Not part of the JSON report.
  std::vector<uint64_t> record_class_size;
  // class size -> number of classes of that size (ascending sizes).
  std::vector<std::pair<uint64_t, uint64_t>> class_size_histogram;
  std::optional<SensitiveRisk> sensitive;
  std::optional<PopulationEstimates> population;
};

// UNKNOWN_COLUMN for a QI or sensitive column the table lacks; BAD_INPUT for an
// empty table, a threshold outside [0, 1] or a population smaller than the table.
Result<RiskReport> AnalyzeRisk(const anonymize::Table& table, const RiskOptions& options);

// Population uniqueness models from the sample's class-size histogram
// (size -> count), sample size n and population size N > n.
double ZayatzUniques(const std::vector<std::pair<uint64_t, uint64_t>>& histogram, uint64_t n,
                     uint64_t population);
double PitmanUniques(const std::vector<std::pair<uint64_t, uint64_t>>& histogram, uint64_t n,
                     uint64_t population);
double SnbUniques(const std::vector<std::pair<uint64_t, uint64_t>>& histogram, uint64_t n,
                  uint64_t population);

nlohmann::json ToJson(const RiskReport& report);

}  // namespace cr::risk
