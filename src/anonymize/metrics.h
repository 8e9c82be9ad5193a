// Utility and risk metrics: per-column, per-level tables for non-uniform
// entropy and generalisation loss (what makes the search objective cheap), and
// re-identification risk of a set of equivalence classes.
#pragma once

#include <cstdint>
#include <vector>

#include "anonymize/hierarchy.h"

namespace cr::anonymize {

// Everything the objective needs about one quasi-identifier, per level.
struct ColumnMetrics {
  // ARX's non-uniform entropy of the column at each level:
  // sum over original values v of n(v) * log2(n(g(v)) / n(v)) (0 at level 0).
  std::vector<double> entropy;
  // Generalisation loss of each label: (original values under it - 1) /
  // (distinct original values - 1), in [0, 1]; loss[level][label code].
  std::vector<std::vector<double>> label_loss;
  // Sum over records of label_loss at each level.
  std::vector<double> loss_sum;
};

// `codes`: one level-0 code per record; `h` bound to the same dictionary.
ColumnMetrics ComputeColumnMetrics(const std::vector<uint32_t>& codes, const Hierarchy& h);

// Prosecutor re-identification risk of a release given its class sizes.
struct Risk {
  double max = 0;             // 1 / smallest class
  double average = 0;         // mean over records of 1 / class size = classes / records
  double sample_uniques = 0;  // share of records alone in their class
  uint64_t records = 0;
  uint64_t classes = 0;
};
Risk RiskOfClasses(const std::vector<uint64_t>& class_sizes);

}  // namespace cr::anonymize
