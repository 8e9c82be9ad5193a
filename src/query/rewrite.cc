#include "query/rewrite.h"

#include <fmt/format.h>

#include <set>

#include "query/functions.h"
#include "query/rewrite_pool.h"

namespace cr::query {
namespace {

using engine::QuoteIdent;

std::string JoinArgs(const std::vector<Expr>& args, size_t from = 0) {
  std::string out;
  for (size_t i = from; i < args.size(); ++i) {
    if (i > from) out += ", ";
    out += RenderExpr(args[i]);
  }
  return out;
}

std::string RenderFromNode(const Plan& plan, int idx) {
  const FromNode& n = plan.from[static_cast<size_t>(idx)];
  if (n.table >= 0) {
    const auto& t = plan.tables[static_cast<size_t>(n.table)];
    return QuoteIdent(t.dataset) + " AS " + QuoteIdent(fmt::format("t{}", n.table));
  }
  return fmt::format("({} INNER JOIN {} ON {})", RenderFromNode(plan, n.left),
                     RenderFromNode(plan, n.right), RenderExpr(*n.condition));
}

void CollectUnitCounts(const Plan& plan, const Expr& e, std::set<int>* tables) {
  if (e.kind == Expr::Kind::kAggregate && e.agg == spec::AggFn::kCountDistinct) {
    const Expr& c = e.args[0];
    if (c.column == plan.tables[static_cast<size_t>(c.table)].ds->privacy_unit_column) {
      tables->insert(c.table);
    }
  }
  for (const auto& a : e.args) CollectUnitCounts(plan, a, tables);
}

// One table per privacy-unit class, in first-table order. Where the analyst
// already counts a class's units (COUNT(DISTINCT p.email)), that table is
// chosen so DuckDB computes the distinct count once for both.
std::vector<int> Classes(const Plan& plan) {
  std::set<int> counted;
  for (const auto& o : plan.outputs) CollectUnitCounts(plan, o.expr, &counted);
  std::vector<int> out;
  std::set<int> seen;
  for (size_t t = 0; t < plan.unit_class.size(); ++t) {
    int c = plan.unit_class[t];
    if (seen.insert(c).second) out.push_back(static_cast<int>(t));
  }
  for (auto& rep : out) {
    int c = plan.unit_class[static_cast<size_t>(rep)];
    for (int t : counted) {
      if (plan.unit_class[static_cast<size_t>(t)] == c) {
        rep = t;
        break;
      }
    }
  }
  return out;
}

std::string UnitColumn(const Plan& plan, int table) {
  const auto& t = plan.tables[static_cast<size_t>(table)];
  return QuoteIdent(fmt::format("t{}", table)) + "." + QuoteIdent(t.ds->privacy_unit_column);
}

}  // namespace

std::string NumberLiteral(double v) {
  std::string s = fmt::format("{}", v);
  return v < 0 ? "(" + s + ")" : s;
}

std::string RenderExpr(const Expr& e) {
  switch (e.kind) {
    case Expr::Kind::kColumn:
      return QuoteIdent(fmt::format("t{}", e.table)) + "." + QuoteIdent(e.column);
    case Expr::Kind::kConstant:
      return e.literal;
    case Expr::Kind::kFunction:
      return e.op + "(" + JoinArgs(e.args) + ")";
    case Expr::Kind::kInfix:
      if (e.args.size() == 1) return "(" + e.op + " " + RenderExpr(e.args[0]) + ")";
      return "(" + RenderExpr(e.args[0]) + " " + e.op + " " + RenderExpr(e.args[1]) + ")";
    case Expr::Kind::kCompare:
      return "(" + RenderExpr(e.args[0]) + " " + e.op + " " + RenderExpr(e.args[1]) + ")";
    case Expr::Kind::kAnd:
    case Expr::Kind::kOr: {
      std::string out = "(";
      for (size_t i = 0; i < e.args.size(); ++i) {
        if (i) out += e.kind == Expr::Kind::kAnd ? " AND " : " OR ";
        out += RenderExpr(e.args[i]);
      }
      return out + ")";
    }
    case Expr::Kind::kNot:
      return "(NOT " + RenderExpr(e.args[0]) + ")";
    case Expr::Kind::kIn:
      return "(" + RenderExpr(e.args[0]) + (e.negated ? " NOT IN (" : " IN (") + JoinArgs(e.args, 1) +
             "))";
    case Expr::Kind::kBetween:
      return "(" + RenderExpr(e.args[0]) + (e.negated ? " NOT BETWEEN " : " BETWEEN ") +
             RenderExpr(e.args[1]) + " AND " + RenderExpr(e.args[2]) + ")";
    case Expr::Kind::kIsNull:
      return "(" + RenderExpr(e.args[0]) + (e.negated ? " IS NOT NULL)" : " IS NULL)");
    case Expr::Kind::kCoalesce:
      return "coalesce(" + JoinArgs(e.args) + ")";
    case Expr::Kind::kCast:
      return std::string(e.try_cast ? "TRY_CAST(" : "CAST(") + RenderExpr(e.args[0]) + " AS " +
             e.op + ")";
    case Expr::Kind::kCase: {
      std::string out = "(CASE";
      size_t pairs = (e.args.size() - (e.has_else ? 1 : 0)) / 2;
      for (size_t i = 0; i < pairs; ++i) {
        out += " WHEN " + RenderExpr(e.args[2 * i]) + " THEN " + RenderExpr(e.args[2 * i + 1]);
      }
      if (e.has_else) out += " ELSE " + RenderExpr(e.args.back());
      return out + " END)";
    }
    case Expr::Kind::kAggregate: {
      std::string arg = RenderExpr(e.args[0]);
      if (e.clamp) {
        // Clamp each value to the declared bounds before aggregating, so one
        // extreme row cannot dominate a sum; NULL stays NULL.
        std::string lo = NumberLiteral(e.clamp->first), hi = NumberLiteral(e.clamp->second);
        arg = fmt::format("(CASE WHEN {0} < {1} THEN {1} WHEN {0} > {2} THEN {2} ELSE {0} END)",
                          arg, lo, hi);
      }
      std::string name(AggregateSqlName(e.agg));
      return name + (e.agg == spec::AggFn::kCountDistinct ? "(DISTINCT " : "(") + arg + ")";
    }
  }
  return "NULL";
}

std::string OrderAndLimit(const Plan& plan, const std::string& qualifier) {
  std::string out;
  if (!plan.order.empty()) {
    std::vector<std::string> items;
    for (const auto& o : plan.order) {
      std::string item =
          qualifier + QuoteIdent(fmt::format("c{}", o.output)) + (o.descending ? " DESC" : " ASC");
      if (!o.nulls.empty()) item += " " + o.nulls;
      items.push_back(item);
    }
    out += fmt::format(" ORDER BY {}", fmt::join(items, ", "));
  }
  if (plan.limit) out += fmt::format(" LIMIT {}", *plan.limit);
  if (plan.offset) out += fmt::format(" OFFSET {}", *plan.offset);
  return out;
}

std::string RenderFrom(const Plan& plan) {
  return RenderFromNode(plan, static_cast<int>(plan.from.size()) - 1);
}

GeneratedSql Generate(const Plan& plan) {
  GeneratedSql out;
  const std::string from = RenderFrom(plan);
  const std::string where = plan.where ? " WHERE " + RenderExpr(*plan.where) : "";
  const std::vector<int> classes = Classes(plan);
  const int64_t k = plan.min_distinct_units;

  std::vector<std::string> cols;
  for (size_t i = 0; i < plan.outputs.size(); ++i) {
    cols.push_back(RenderExpr(plan.outputs[i].expr) + " AS " + QuoteIdent(fmt::format("c{}", i)));
  }
  std::vector<std::string> group_exprs;
  for (size_t i = 0; i < plan.group_by.size(); ++i) {
    group_exprs.push_back(RenderExpr(plan.group_by[i]));
    cols.push_back(group_exprs.back() + " AS " + QuoteIdent(fmt::format("g{}", i)));
  }
  std::vector<std::string> released_terms, unit_terms, unit_lists;
  // With difference checks each class's units are also collected as a list.
  // DuckDB does not share one DISTINCT between count(DISTINCT x) and
  // list(DISTINCT x) (the pair took 2.2-3.0 s where either alone took
  // 0.7-1.8 s on 12M rows), but it computes one aggregate written twice once:
  // so every count of those units, the analyst's included, becomes the
  // length of the list (NULL units excluded, as count excludes them).
  std::vector<std::pair<std::string, std::string>> as_list_length;
  // One dataset whose every unit is in one row: a group's distinct units are
  // its units, counted without a hash table of 10M units, and the group keeps
  // only their number and fingerprint; the lists are fetched when needed.
  out.unit_summaries = plan.unit_sets && plan.tables.size() == 1 && classes.size() == 1 &&
                       plan.tables[0].unique_units;
  std::vector<std::string> unit_fps;
  for (size_t i = 0; i < classes.size(); ++i) {
    std::string u = QuoteIdent(fmt::format("u{}", i));
    const std::string unit = UnitColumn(plan, classes[i]);
    std::string count = fmt::format("count(DISTINCT {})", unit);
    if (out.unit_summaries) {
      const std::string plain = fmt::format("count({})", unit);
      as_list_length.emplace_back(count, plain);
      unit_fps.push_back(QuoteIdent(fmt::format("f{}", i)));
      cols.push_back(fmt::format("CAST(sum(CAST({}({}) AS HUGEINT)) % CAST('18446744073709551616' "
                                 "AS HUGEINT) AS UBIGINT) AS {}",
                                 kUnitFingerprintFunction, unit, unit_fps.back()));
      cols.push_back(count + " AS " + u);
      released_terms.push_back(fmt::format("{} >= {}", u, k));
      unit_terms.push_back(fmt::format("{} >= {}", plain, k));
      continue;
    }
    if (plan.unit_sets) {
      const std::string list =
          fmt::format("list(DISTINCT {0}) FILTER (WHERE {0} IS NOT NULL)", unit);
      as_list_length.emplace_back(count, fmt::format("coalesce(len({}), 0)", list));
      unit_lists.push_back(QuoteIdent(fmt::format("s{}", i)));
      cols.push_back(list + " AS " + unit_lists.back());
    }
    cols.push_back(count + " AS " + u);
    released_terms.push_back(fmt::format("{} >= {}", u, k));
    unit_terms.push_back(fmt::format("{} >= {}", count, k));
  }

  const PoolSql pool = GeneratePool(plan, group_exprs, from, where);
  cols.insert(cols.end(), pool.columns.begin(), pool.columns.end());
  for (std::string& col : cols) {
    for (const auto& [count, length] : as_list_length) {
      for (size_t at = col.find(count); at != std::string::npos;
           at = col.find(count, at + length.size())) {
        col.replace(at, count.size(), length);
      }
    }
  }

  std::string inner = fmt::format("SELECT {} FROM {}{}", fmt::join(cols, ", "), from, where);
  if (!group_exprs.empty()) inner += fmt::format(" GROUP BY {}", fmt::join(group_exprs, ", "));
  if (plan.having) inner += " HAVING " + RenderExpr(*plan.having);
  // The row key the unit sets are matched by: pooled groups already have one.
  const char* row_key_column = pool.active ? kGroupIdColumn : kRowKeyColumn;
  if (pool.active) {
    FinishPooled(plan, pool, inner, released_terms, &out);
  } else {
    const std::string row_key =
        plan.unit_sets
            ? fmt::format(", CAST(row_number() OVER () AS BIGINT) AS {}", QuoteIdent(kRowKeyColumn))
            : "";
    out.groups = fmt::format("CREATE OR REPLACE TEMP TABLE {} AS SELECT *, ({}) AS {}{} FROM ({}) AS s",
                             QuoteIdent(kGroupsTable), fmt::join(released_terms, " AND "),
                             QuoteIdent(kReleasedColumn), row_key, inner);
  }

  std::vector<std::string> outs;
  for (size_t i = 0; i < plan.outputs.size(); ++i) outs.push_back(QuoteIdent(fmt::format("c{}", i)));
  if (plan.unit_sets) {
    outs.push_back(QuoteIdent(row_key_column));
    if (out.unit_summaries) {
      out.unit_lists = fmt::format("SELECT CAST({} AS BIGINT), u0, {} FROM {} WHERE {}",
                                   QuoteIdent(row_key_column), unit_fps.front(),
                                   QuoteIdent(kGroupsTable), QuoteIdent(kReleasedColumn));
      // The rows of the chosen groups (same FROM and WHERE, group keys
      // matched, NULL keys matching NULL keys), their units listed per group.
      std::vector<std::string> on;
      for (size_t i = 0; i < group_exprs.size(); ++i) {
        on.push_back(fmt::format("w.{} IS NOT DISTINCT FROM {}", QuoteIdent(fmt::format("g{}", i)),
                                 group_exprs[i]));
      }
      const std::string unit = UnitColumn(plan, classes.front());
      out.unit_lists_of = fmt::format(
          "SELECT CAST(w.{0} AS BIGINT), list({1}) FILTER (WHERE {1} IS NOT NULL) FROM {2} JOIN {3} "
          "AS w ON {4} WHERE {5}w.{0} IN ({6}) GROUP BY w.{0}",
          QuoteIdent(row_key_column), unit, from, QuoteIdent(kGroupsTable),
          on.empty() ? std::string("TRUE") : fmt::format("{}", fmt::join(on, " AND ")),
          plan.where ? RenderExpr(*plan.where) + " AND " : "", kUnitKeysToken);
    } else {
      out.unit_lists = fmt::format("SELECT {}, {} FROM {} WHERE {}", QuoteIdent(row_key_column),
                                   fmt::join(unit_lists, ", "), QuoteIdent(kGroupsTable),
                                   QuoteIdent(kReleasedColumn));
    }
  }
  out.released = fmt::format("SELECT {} FROM {} WHERE {}", fmt::join(outs, ", "),
                             QuoteIdent(kGroupsTable), QuoteIdent(kReleasedColumn));
  out.released += OrderAndLimit(plan, "");

  out.group_counts = fmt::format("SELECT count(*) FILTER (WHERE NOT {}), count(*) FROM {}",
                                 QuoteIdent(kReleasedColumn), QuoteIdent(kGroupsTable));

  // Rows of the withheld groups: same FROM and WHERE, group keys matched
  // against the withheld groups (NULL keys match NULL keys).
  std::vector<std::string> match = {"NOT w." + QuoteIdent(kReleasedColumn)};
  for (size_t i = 0; i < group_exprs.size(); ++i) {
    match.push_back(fmt::format("w.{} IS NOT DISTINCT FROM {}", QuoteIdent(fmt::format("g{}", i)),
                                group_exprs[i]));
  }
  std::string filter = fmt::format("EXISTS (SELECT 1 FROM {} AS w WHERE {})", QuoteIdent(kGroupsTable),
                                   fmt::join(match, " AND "));
  std::string wh = plan.where ? " WHERE " + RenderExpr(*plan.where) + " AND " + filter
                              : " WHERE " + filter;
  out.withheld_units = fmt::format("SELECT ({}) FROM {}{}", fmt::join(unit_terms, " AND "),
                                   from, wh);
  return out;
}

}  // namespace cr::query
