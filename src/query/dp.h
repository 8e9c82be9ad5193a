// Differential privacy for a checked aggregation plan (docs/query-rules.md,
// "Differential privacy"): which plans can be answered with noise, the SQL
// that bounds each unit's contribution, and the noisy release with private
// partition selection or public group values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "engine/engine.h"
#include "privacy/dp/mechanisms.h"
#include "query/executor.h"
#include "query/plan.h"
#include "results/results.h"
#include "spec/spec.h"

namespace cr::query {

// One noisy aggregate of the SELECT list.
struct DpAggregate {
  size_t output = 0;  // index in Plan::outputs
  spec::AggFn fn = spec::AggFn::kCount;
  bool count_star = false;
  std::string column;                     // empty for COUNT(*)
  std::pair<double, double> bounds{0, 0};  // SUM/AVG: the column's declared bounds
  bool real_valued = false;                // SUM/AVG of a double column: a finer grid
  // Largest |contribution| of one unit to one group after bounding: what
  // sensitivity follows from (count_distinct 1, counts C, sums C * max|bound|).
  double linf = 1;
  // SUM and AVG read the bounded per-group sum; COUNT kinds and AVG the bounded count.
  bool IsCount() const { return fn == spec::AggFn::kCount || fn == spec::AggFn::kCountDistinct; }
};

struct DpPlan {
  double epsilon = 0;            // the query's whole cost
  double epsilon_each = 0;       // each noise draw (an AVG is two: sum and count)
  double epsilon_selection = 0;  // partition selection; 0 when none is needed
  double delta = 0;              // partition selection only
  int64_t max_groups = 1;        // L0: groups one unit may contribute to
  int64_t max_contributions = 1;  // C: rows of one unit counted in one group
  bool select_partitions = false;
  std::vector<DpAggregate> aggregates;
  // Per output: the GROUP BY key it shows, or -1 for an aggregate.
  std::vector<int> key_of_output;
  // When every GROUP BY key is a column with public values: those values per
  // key (as DuckDB prints them), and their JSON cells. Empty otherwise.
  std::vector<std::vector<std::string>> public_text;
  std::vector<std::vector<nlohmann::json>> public_cells;
};

// Whether `plan` must or may be answered with noise: `epsilon_requested`
// (--epsilon) or any touched dataset's rule with require_dp. QUERY_REFUSED
// when --epsilon is given and the spec has no privacy.dp.
Result<bool> NeedsDp(const spec::Spec& spec, const Plan& plan, bool epsilon_requested);

// Checks that `plan` can be answered with noise at cost `epsilon` and splits
// the cost. QUERY_REFUSED naming the construct otherwise: an aggregate other
// than COUNT(*), COUNT(col), COUNT(DISTINCT unit), SUM, AVG; an output that is
// neither a GROUP BY key nor one aggregate; HAVING; a join that does not
// equate the datasets' unit columns; a list query; epsilon above the spec's
// max_query_epsilon; partition selection with privacy.dp.delta 0.
Result<DpPlan> PlanDp(const spec::Spec& spec, const Plan& plan, double epsilon);

// The contribution-bounding SQL: rows per (unit, group), at most
// max_groups groups per unit chosen by a hash keyed with `key_hex` (fresh
// and random per query; "" for CanonicalText), values clamped and each
// unit's rows per group capped. Columns: g0.. (group keys), "__units", then per aggregate a0..
// (the bounded exact sum or count). Ordered by the group keys.
std::string BoundedSql(const Plan& plan, const DpPlan& dp, std::string_view key_hex);

// What identifies a query for the ledger's stored answers: the bounding SQL
// with the key left out, the modifiers applied after noise, and the cost.
std::string CanonicalText(const Plan& plan, const DpPlan& dp);

// Runs the bounding SQL over datasets already mounted in `db` and releases
// noisy cells ({"value", "ci_low", "ci_high"}, 95%) for the groups that pass
// partition selection (or exactly the public groups), then applies ORDER BY
// and LIMIT to the noisy rows. The exact aggregates never leave this
// function; withheld_rows is not released (null), nor is any exact count in
// `stats`.
Result<results::ResultSet> ExecuteDpPlan(engine::Database& db, const Plan& plan, const DpPlan& dp,
                                         dp::RandomSource& rng, ExecStats* stats);

}  // namespace cr::query
