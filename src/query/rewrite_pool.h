// The SQL of pooled datasets (spec contributors): the contributor count of
// every cell, the dominance and p% rules over per-(cell, contributor) sums,
// and the benchmark view (each contributor's own figure beside the peers'
// mean, median and quartiles). All of it runs inside DuckDB; C++ only reads
// the released cells. Private to rewrite.cc and the executor.
#pragma once

#include <string>
#include <vector>

#include "query/plan.h"

namespace cr::query {

// One cell rule of a query over pooled datasets, as SQL over a group row.
struct PoolRule {
  std::string name;  // "min_distinct_units", "min_contributors", "dominance", "p_percent"
  std::string sql;   // boolean: the cell passes
};

struct PoolSql {
  bool active = false;               // the plan touches a pooled dataset
  std::vector<std::string> columns;  // per group: distinct contributors n{t}
  std::vector<std::string> prepare;  // CREATE TEMP TABLE of per-contributor parts
  std::string joins;                 // LEFT JOINs of the per-cell rule inputs onto "s"
  std::vector<PoolRule> rules;       // besides min_distinct_units
  int benchmark_table = -1;          // the table whose contributors a benchmark compares
};

// `group_exprs` are the rendered GROUP BY expressions, `from` and `where` the
// rendered clauses (where with its leading " WHERE ").
PoolSql GeneratePool(const Plan& plan, const std::vector<std::string>& group_exprs,
                     const std::string& from, const std::string& where);

// Fills out's groups (the unit rule `unit_terms` and every pool rule, each
// kept as a column, their AND as kReleasedColumn, and kGroupIdColumn),
// prepare, rules, withheld_by and, for a benchmark, the benchmark queries.
struct GeneratedSql;
void FinishPooled(const Plan& plan, const PoolSql& pool, const std::string& inner,
                  const std::vector<std::string>& unit_terms, GeneratedSql* out);

// Name of the per-contributor table of plan table `t`.
std::string PartsTable(int t);

// Whether table `t` of the plan is a pooled dataset.
bool IsPooled(const Plan& plan, int t);

}  // namespace cr::query
