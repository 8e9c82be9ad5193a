#include "query/rewrite_pool.h"

#include <fmt/format.h>

#include <algorithm>

#include "query/rewrite.h"

namespace cr::query {
namespace {

using engine::QuoteIdent;

std::string Contributor(int t) {
  return QuoteIdent(fmt::format("t{}", t)) + "." + QuoteIdent(spec::kContributorColumn);
}

// The SUM and AVG aggregates of the outputs over columns of table `t`: the
// released sums dominance and the p% rule protect (an average is a sum over a
// count). Each becomes the contributor's absolute sum in the parts table.
void CollectSums(const Expr& e, int t, std::vector<std::string>* out) {
  if (e.kind == Expr::Kind::kAggregate &&
      (e.agg == spec::AggFn::kSum || e.agg == spec::AggFn::kAvg) &&
      e.args[0].kind == Expr::Kind::kColumn && e.args[0].table == t) {
    Expr sum = e;
    sum.agg = spec::AggFn::kSum;
    std::string sql = fmt::format("abs(coalesce({}, 0))", RenderExpr(sum));
    if (std::find(out->begin(), out->end(), sql) == out->end()) out->push_back(sql);
    return;
  }
  for (const auto& a : e.args) CollectSums(a, t, out);
}

// s.gI IS NOT DISTINCT FROM d.gI for every group key (TRUE without keys).
std::string MatchKeys(size_t keys, const std::string& a, const std::string& b) {
  if (keys == 0) return "TRUE";
  std::vector<std::string> m;
  for (size_t i = 0; i < keys; ++i) {
    std::string g = QuoteIdent(fmt::format("g{}", i));
    m.push_back(fmt::format("{}.{} IS NOT DISTINCT FROM {}.{}", a, g, b, g));
  }
  return fmt::format("{}", fmt::join(m, " AND "));
}

std::string GroupKeys(size_t keys) {
  std::vector<std::string> g;
  for (size_t i = 0; i < keys; ++i) g.push_back(QuoteIdent(fmt::format("g{}", i)));
  return fmt::format("{}", fmt::join(g, ", "));
}

}  // namespace

std::string PartsTable(int t) { return QuoteIdent(fmt::format("__cr_parts_t{}", t)); }

bool IsPooled(const Plan& plan, int t) { return plan.tables[static_cast<size_t>(t)].ds->pooled(); }

PoolSql GeneratePool(const Plan& plan, const std::vector<std::string>& group_exprs,
                     const std::string& from, const std::string& where) {
  PoolSql out;
  std::vector<std::string> counted, dominance, p_percent;
  for (size_t ti = 0; ti < plan.tables.size(); ++ti) {
    const int t = static_cast<int>(ti);
    if (!IsPooled(plan, t)) continue;
    const spec::Dataset& ds = *plan.tables[ti].ds;
    out.active = true;
    if (out.benchmark_table < 0) out.benchmark_table = t;
    // Distinct contributors in the cell, counted like units.
    std::string n = QuoteIdent(fmt::format("n{}", t));
    out.columns.push_back(fmt::format("count(DISTINCT {}) AS {}", Contributor(t), n));
    counted.push_back(fmt::format("s.{} >= {}", n, ds.MinContributors()));

    std::vector<std::string> sums;
    for (const auto& o : plan.outputs) CollectSums(o.expr, t, &sums);
    const bool rules = (ds.rule.dominance || ds.rule.p_percent) && !sums.empty();
    const bool benchmark = plan.benchmark && out.benchmark_table == t;
    if (!rules && !benchmark) continue;

    // Per cell and contributor: the group keys, the contributor, each
    // aggregate output (the contributor's own figure) and each protected sum.
    std::vector<std::string> cols, keys = group_exprs;
    for (size_t i = 0; i < group_exprs.size(); ++i) {
      cols.push_back(group_exprs[i] + " AS " + QuoteIdent(fmt::format("g{}", i)));
    }
    cols.push_back(Contributor(t) + " AS " + QuoteIdent("__cr_c"));
    for (size_t i = 0; i < plan.outputs.size(); ++i) {
      if (!plan.outputs[i].expr.HasAggregate()) continue;
      cols.push_back(RenderExpr(plan.outputs[i].expr) + " AS " + QuoteIdent(fmt::format("c{}", i)));
    }
    for (size_t j = 0; j < sums.size(); ++j) {
      cols.push_back(sums[j] + " AS " + QuoteIdent(fmt::format("x{}", j)));
    }
    keys.push_back(Contributor(t));
    out.prepare.push_back(fmt::format("CREATE OR REPLACE TEMP TABLE {} AS SELECT {} FROM {}{} GROUP BY {}",
                                      PartsTable(t), fmt::join(cols, ", "), from, where,
                                      fmt::join(keys, ", ")));
    if (!rules) continue;

    // Per cell: does it pass each rule. The top n contributors' sum is
    // list_sum(max(x, n)), DuckDB's top-n aggregate.
    std::vector<std::string> checks;
    std::string d = QuoteIdent(fmt::format("d{}", t));
    if (ds.rule.dominance) {
      std::vector<std::string> terms;
      for (size_t j = 0; j < sums.size(); ++j) {
        std::string x = QuoteIdent(fmt::format("x{}", j));
        terms.push_back(fmt::format("list_sum(max({0}, {1})) <= {2} * sum({0})", x,
                                    ds.rule.dominance->n, NumberLiteral(ds.rule.dominance->k)));
      }
      checks.push_back(fmt::format("({}) AS {}", fmt::join(terms, " AND "), QuoteIdent("dom")));
      dominance.push_back(fmt::format("coalesce({}.{}, false)", d, QuoteIdent("dom")));
    }
    if (ds.rule.p_percent) {
      std::vector<std::string> terms;
      for (size_t j = 0; j < sums.size(); ++j) {
        std::string x = QuoteIdent(fmt::format("x{}", j));
        terms.push_back(fmt::format("sum({0}) - list_sum(max({0}, 2)) > {1} * max({0})", x,
                                    NumberLiteral(*ds.rule.p_percent / 100.0)));
      }
      checks.push_back(fmt::format("({}) AS {}", fmt::join(terms, " AND "), QuoteIdent("pp")));
      p_percent.push_back(fmt::format("coalesce({}.{}, false)", d, QuoteIdent("pp")));
    }
    std::string select = group_exprs.empty() ? "" : GroupKeys(group_exprs.size()) + ", ";
    std::string sub =
        fmt::format("SELECT {}{} FROM {}", select, fmt::join(checks, ", "), PartsTable(t));
    if (!group_exprs.empty()) sub += " GROUP BY " + GroupKeys(group_exprs.size());
    out.joins +=
        fmt::format(" LEFT JOIN ({}) AS {} ON {}", sub, d, MatchKeys(group_exprs.size(), "s", d));
  }
  if (!counted.empty()) {
    out.rules.push_back({"min_contributors", fmt::format("({})", fmt::join(counted, " AND "))});
  }
  if (!dominance.empty()) {
    out.rules.push_back({"dominance", fmt::format("({})", fmt::join(dominance, " AND "))});
  }
  if (!p_percent.empty()) {
    out.rules.push_back({"p_percent", fmt::format("({})", fmt::join(p_percent, " AND "))});
  }
  return out;
}

void FinishPooled(const Plan& plan, const PoolSql& pool, const std::string& inner,
                  const std::vector<std::string>& unit_terms, GeneratedSql* out) {
  std::vector<PoolRule> rules = {
      {"min_distinct_units", fmt::format("({})", fmt::join(unit_terms, " AND "))}};
  rules.insert(rules.end(), pool.rules.begin(), pool.rules.end());
  std::vector<std::string> checks, names, passes, failing;
  for (const auto& r : rules) {
    std::string col = QuoteIdent("__cr_ok_" + r.name);
    checks.push_back(fmt::format("{} AS {}", r.sql, col));
    passes.push_back(col);
    failing.push_back(fmt::format("count(*) FILTER (WHERE NOT {})", col));
    out->rules.push_back(r.name);
  }
  out->prepare = pool.prepare;
  out->groups = fmt::format(
      "CREATE OR REPLACE TEMP TABLE {} AS SELECT *, ({}) AS {}, row_number() OVER () AS {} FROM (SELECT s.*, "
      "{} FROM ({}) AS s{}) AS r",
      QuoteIdent(kGroupsTable), fmt::join(passes, " AND "), QuoteIdent(kReleasedColumn),
      QuoteIdent(kGroupIdColumn), fmt::join(checks, ", "), inner, pool.joins);
  out->withheld_by =
      fmt::format("SELECT {} FROM {}", fmt::join(failing, ", "), QuoteIdent(kGroupsTable));
  if (!plan.benchmark || pool.benchmark_table < 0) return;

  // The peers: per released cell, each aggregate output's mean, median and
  // quartiles across the cell's contributors (their own figures).
  const size_t keys = plan.group_by.size();
  const std::string parts = PartsTable(pool.benchmark_table);
  std::vector<std::string> stats, released = {"w." + QuoteIdent(kGroupIdColumn)}, own;
  for (size_t i = 0; i < plan.outputs.size(); ++i) {
    std::string c = QuoteIdent(fmt::format("c{}", i));
    released.push_back("w." + c);
    if (!plan.outputs[i].expr.HasAggregate()) continue;
    own.push_back("p." + c);
    const char* kStats[] = {"avg({})", "median({})", "quantile_cont({}, 0.25)",
                            "quantile_cont({}, 0.75)"};
    for (size_t k = 0; k < 4; ++k) {
      std::string name = QuoteIdent(fmt::format("m{}_{}", i, k));
      stats.push_back(fmt::format(fmt::runtime(kStats[k]), c) + " AS " + name);
      released.push_back("b." + name);
    }
  }
  // With difference checks the row key is last, as in the plain released rows.
  if (plan.unit_sets) released.push_back("w." + QuoteIdent(kGroupIdColumn));
  std::string peers = fmt::format("SELECT {}{} FROM {}", keys ? GroupKeys(keys) + ", " : "",
                                  fmt::join(stats, ", "), parts);
  if (keys) peers += " GROUP BY " + GroupKeys(keys);
  out->benchmark = fmt::format("SELECT {} FROM {} AS w LEFT JOIN ({}) AS b ON {} WHERE w.{}{}",
                               fmt::join(released, ", "), QuoteIdent(kGroupsTable), peers,
                               MatchKeys(keys, "w", "b"), QuoteIdent(kReleasedColumn),
                               OrderAndLimit(plan, "w."));
  out->benchmark_own =
      fmt::format("SELECT w.{}, p.{}{}{} FROM {} AS w JOIN {} AS p ON {} WHERE w.{}",
                  QuoteIdent(kGroupIdColumn), QuoteIdent("__cr_c"), own.empty() ? "" : ", ",
                  fmt::join(own, ", "), QuoteIdent(kGroupsTable), parts, MatchKeys(keys, "w", "p"),
                  QuoteIdent(kReleasedColumn));
}

}  // namespace cr::query
