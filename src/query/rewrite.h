// Generates the SQL the room runs from a checked plan: quoted identifiers,
// re-rendered literals, metrics clamped, and per output group the number of
// distinct privacy units of every touched dataset, compared with the threshold
// inside the query. The analyst's text is never part of it.
#pragma once

#include <string>
#include <vector>

#include "query/plan.h"

namespace cr::query {

// Name of the in-memory temporary table holding every group before release.
inline constexpr const char* kGroupsTable = "__cr_groups";
inline constexpr const char* kReleasedColumn = "__cr_released";
// With plan.unit_sets: each group's row key, and per unit class its units.
inline constexpr const char* kRowKeyColumn = "__cr_row";
// A released group's id in kGroupsTable (pooled datasets only).
inline constexpr const char* kGroupIdColumn = "__cr_gid";
// The fingerprint function the generated SQL calls (registered per query).
inline constexpr const char* kUnitFingerprintFunction = "__cr_unit_fp";
inline constexpr const char* kUnitKeysToken = "{__cr_keys}";

struct GeneratedSql {
  // CREATE OR REPLACE TEMP TABLE kGroupsTable AS: outputs c0.., group keys g0.., unit
  // counts u0.., and kReleasedColumn (every unit count >= the threshold).
  std::string groups;
  // Released rows in the analyst's order and limit: columns c0...
  std::string released;
  // One row, one statement: the number of groups withheld by the threshold,
  // and of all groups.
  std::string group_counts;
  // One row: distinct units per class over the union of the withheld groups
  // (run only when some group was withheld), and whether they reach the threshold.
  std::string withheld_units;
  // With plan.unit_sets, the released query's last column is kRowKeyColumn,
  // and this one gives, per released group, its key and one list of distinct
  // units per class (engine::Database::ForEachList).
  std::string unit_lists;
  // Set when the plan reads one dataset whose every unit is in one row
  // (TableRef::unique_units): the groups count units without DISTINCT and
  // keep, instead of each group's list, its size and fingerprint (the sum of
  // diffcheck::UnitFingerprint over its rows), which `unit_lists` then gives
  // (key, count, fingerprint) per released group. `unit_lists_of` fetches
  // the lists (key, list of units) of the groups whose keys replace
  // kUnitKeysToken, only those a difference check needs.
  bool unit_summaries = false;
  std::string unit_lists_of;

  // Pooled datasets (rewrite_pool.h); empty otherwise. Statements run before
  // `groups` (the per-(cell, contributor) tables).
  std::vector<std::string> prepare;
  // The rules each group must pass, in order, and one row counting the
  // groups failing each (a group can fail several).
  std::vector<std::string> rules;
  std::string withheld_by;
  // Set when plan.benchmark: the released rows in the analyst's order, first
  // the group's id, then each output, each aggregate output followed by the
  // peers' mean, median, first and third quartile across the cell's
  // contributors; and (id, contributor index, each aggregate output) of every
  // contributor in a released group.
  std::string benchmark;
  std::string benchmark_own;
};

GeneratedSql Generate(const Plan& plan);

// SQL of a checked expression; column references become "tN"."column".
std::string RenderExpr(const Expr& e);

// A double as SQL that DuckDB reads back as the same value (negative numbers
// parenthesised, so "a - -1" cannot become a comment "--").
std::string NumberLiteral(double v);

// " ORDER BY ... LIMIT ... OFFSET ..." of the released rows, over columns
// c0.. (prefixed by `qualifier`, e.g. "w.").
std::string OrderAndLimit(const Plan& plan, const std::string& qualifier);

// Just the FROM clause of the plan ("impressions" AS "t0" INNER JOIN ...).
std::string RenderFrom(const Plan& plan);

}  // namespace cr::query
