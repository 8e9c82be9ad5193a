#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "common/strings.h"
#include "query/dp.h"
#include "query/rewrite.h"

namespace cr::query {
namespace {

using engine::QuoteIdent;
using engine::QuoteLiteral;

std::unexpected<Error> Refuse(std::string msg) {
  return std::unexpected(Error{ErrorCode::QUERY_REFUSED, std::move(msg)});
}

// Public values as DuckDB prints the column's values, so they compare with
// CAST(key AS VARCHAR): the spec may write 007 or yes where DuckDB prints 7, true.
Result<std::pair<std::string, nlohmann::json>> PublicValue(const spec::Column& c,
                                                           const std::string& v) {
  try {
    switch (c.type) {
      case spec::ColumnType::kInteger: {
        long long n = std::stoll(v);
        return std::make_pair(std::to_string(n), nlohmann::json(n));
      }
      case spec::ColumnType::kDouble: {
        double d = std::stod(v);
        std::string text = fmt::format("{}", d);
        if (text.find_first_of(".en") == std::string::npos) text += ".0";
        return std::make_pair(text, nlohmann::json(d));
      }
      case spec::ColumnType::kBoolean: {
        std::string l = AsciiLower(v);
        bool b = l == "true" || l == "yes" || l == "on" || l == "y";
        return std::make_pair(std::string(b ? "true" : "false"), nlohmann::json(b));
      }
      default:
        return std::make_pair(v, nlohmann::json(v));
    }
  } catch (const std::exception&) {
    return Fail(ErrorCode::INTERNAL, "public value of {} does not read as a {}", c.name,
                spec::Name(c.type));
  }
}

std::string UnitRef(const Plan& plan) {
  return QuoteIdent("t0") + "." + QuoteIdent(plan.tables[0].ds->privacy_unit_column);
}

std::string Clamp(const std::string& x, double lo, double hi) {
  return fmt::format("greatest(least({}, {}), {})", x, NumberLiteral(hi), NumberLiteral(lo));
}

// The rank of a (unit, group) row among its unit's groups. DuckDB's hash of
// the tuple (no strings built, NULL keys hashed apart from every value), then
// XORed with the query's key and hashed again: the outer hash is a
// multiply-xorshift mix, so the order of a unit's groups depends nonlinearly
// on the key. (Mixing the key in by XOR alone, or as the first argument of a
// multi-argument hash, would only XOR every group of a unit with one constant
// and leave the order of their hashes largely fixed.)
std::string KeyedGroupHash(const std::vector<std::string>& keys, std::string_view key) {
  return fmt::format("hash(xor(hash(\"__u\", {}), hash({})))", fmt::join(keys, ", "),
                     QuoteLiteral(std::string(key)));
}

}  // namespace

Result<bool> NeedsDp(const spec::Spec& spec, const Plan& plan, bool epsilon_requested) {
  if (epsilon_requested && !spec.privacy.dp) {
    return Refuse(
        "--epsilon needs differential privacy, and this collaboration's spec has no privacy.dp "
        "(the parties would have to agree a budget first)");
  }
  if (!spec.privacy.dp) return false;
  if (epsilon_requested) return true;
  for (const auto& t : plan.tables) {
    if (t.ds->rule.require_dp) return true;
  }
  return false;
}

Result<DpPlan> PlanDp(const spec::Spec& spec, const Plan& plan, double epsilon) {
  if (!spec.privacy.dp) return Fail(ErrorCode::INTERNAL, "no privacy.dp to plan with");
  const spec::Dp& sdp = *spec.privacy.dp;
  if (!(epsilon > 0) || !std::isfinite(epsilon)) {
    return Fail(ErrorCode::BAD_INPUT, "epsilon must be a finite number greater than 0");
  }
  if (epsilon > sdp.max_query_epsilon) {
    return Refuse(fmt::format("epsilon {} is above what one query may spend ({}: "
                              "privacy.dp.max_query_epsilon, or the whole budget epsilon)",
                              epsilon, sdp.max_query_epsilon));
  }
  if (plan.kind != QueryKind::kAggregation) {
    return Refuse("differential privacy: list queries release exact values and cannot be "
                  "answered with noise");
  }
  if (plan.having) {
    return Refuse("differential privacy: HAVING is not allowed (it would filter on exact "
                  "aggregates); filter the released rows instead");
  }
  for (size_t t = 1; t < plan.unit_class.size(); ++t) {
    if (plan.unit_class[t] != plan.unit_class[0]) {
      return Refuse(fmt::format(
          "differential privacy: every joined dataset's privacy unit must be equated with an "
          "AND-only join ({} and {} are not), so each unit's contribution can be bounded",
          plan.tables[0].dataset, plan.tables[t].dataset));
    }
  }

  DpPlan out;
  out.epsilon = epsilon;
  out.delta = sdp.delta;
  out.max_contributions = sdp.max_contributions_per_group;
  out.max_groups = plan.group_by.empty() ? 1 : sdp.max_groups_per_unit;
  const double c = static_cast<double>(out.max_contributions);
  int draws = 0;
  for (size_t i = 0; i < plan.outputs.size(); ++i) {
    const Expr& e = plan.outputs[i].expr;
    auto key = std::find(plan.group_by.begin(), plan.group_by.end(), e);
    if (key != plan.group_by.end()) {
      out.key_of_output.push_back(static_cast<int>(key - plan.group_by.begin()));
      continue;
    }
    out.key_of_output.push_back(-1);
    if (e.kind != Expr::Kind::kAggregate) {
      return Refuse(fmt::format(
          "differential privacy: output {} must be a GROUP BY key or one aggregate (noise is "
          "added to each aggregate; arithmetic on them is left to the receiver)",
          plan.outputs[i].name));
    }
    DpAggregate a;
    a.output = i;
    a.fn = e.agg;
    if (e.args.empty()) {
      a.count_star = true;
    } else {
      const Expr& col = e.args[0];
      a.column = col.column;
      const spec::Dataset& ds = *plan.tables[static_cast<size_t>(col.table)].ds;
      if (e.agg == spec::AggFn::kCountDistinct && col.column != ds.privacy_unit_column) {
        return Refuse(fmt::format(
            "differential privacy: COUNT(DISTINCT {}) is not supported; only the privacy unit "
            "can be counted distinctly (COUNT(DISTINCT {}))",
            col.column, ds.privacy_unit_column));
      }
      if (e.agg == spec::AggFn::kSum || e.agg == spec::AggFn::kAvg) {
        const spec::Column* sc = ds.FindColumn(col.column);
        if (!sc || !sc->bounds) {
          return Refuse(fmt::format(
              "differential privacy: {} of {} needs the column's bounds in the spec",
              spec::Name(e.agg), col.column));
        }
        a.bounds = *sc->bounds;
        a.real_valued = sc->type == spec::ColumnType::kDouble;
      }
    }
    switch (a.fn) {
      case spec::AggFn::kCountDistinct:
        a.linf = 1;
        draws += 1;
        break;
      case spec::AggFn::kCount:
        a.linf = c;
        draws += 1;
        break;
      case spec::AggFn::kSum:
        a.linf = c * std::max(std::abs(a.bounds.first), std::abs(a.bounds.second));
        draws += 1;
        break;
      case spec::AggFn::kAvg:
        a.linf = c * std::max(std::abs(a.bounds.first), std::abs(a.bounds.second));
        draws += 2;
        break;
      default:
        return Refuse(fmt::format(
            "differential privacy: {} is not supported (COUNT(*), COUNT(column), "
            "COUNT(DISTINCT unit), SUM and AVG are)",
            spec::Name(a.fn)));
    }
    if (!(a.linf > 0)) a.linf = 1;  // bounds [0, 0]: every contribution is 0
    out.aggregates.push_back(std::move(a));
  }
  if (out.aggregates.empty()) {
    return Refuse("differential privacy: the SELECT list needs at least one aggregate");
  }

  // Public groups: every key is a plain column whose values the spec lists.
  bool all_public = !plan.group_by.empty();
  for (const auto& g : plan.group_by) {
    if (g.kind != Expr::Kind::kColumn) {
      all_public = false;
      break;
    }
    const spec::Dataset& ds = *plan.tables[static_cast<size_t>(g.table)].ds;
    auto it = ds.rule.public_values.find(g.column);
    if (it == ds.rule.public_values.end()) {
      all_public = false;
      break;
    }
    std::vector<std::string> text;
    std::vector<nlohmann::json> cells;
    for (const auto& v : it->second) {
      CR_ASSIGN(auto p, PublicValue(*ds.FindColumn(g.column), v));
      text.push_back(std::move(p.first));
      cells.push_back(std::move(p.second));
    }
    out.public_text.push_back(std::move(text));
    out.public_cells.push_back(std::move(cells));
  }
  if (!all_public) {
    out.public_text.clear();
    out.public_cells.clear();
  }
  out.select_partitions = !plan.group_by.empty() && !all_public;
  if (out.select_partitions && !(sdp.delta > 0)) {
    return Refuse(
        "differential privacy: GROUP BY on values that are not public needs partition "
        "selection, which needs privacy.dp.delta greater than 0 (or public_values for every "
        "grouping column)");
  }
  // An even split: each noise draw and the selection get the same share, so
  // no aggregate is much noisier than another (docs/query-rules.md).
  const int shares = draws + (out.select_partitions ? 1 : 0);
  out.epsilon_each = epsilon / shares;
  out.epsilon_selection = out.select_partitions ? epsilon / shares : 0;
  return out;
}

std::string BoundedSql(const Plan& plan, const DpPlan& dp, std::string_view key_hex) {
  const size_t ng = plan.group_by.size();
  std::vector<std::string> keys;
  for (size_t i = 0; i < ng; ++i) keys.push_back(QuoteIdent(fmt::format("g{}", i)));

  // 1. The rows, with the unit and the group keys; rows without a unit
  //    cannot be bounded and are left out.
  std::vector<std::string> cols = {UnitRef(plan) + " AS \"__u\""};
  for (size_t i = 0; i < ng; ++i) cols.push_back(RenderExpr(plan.group_by[i]) + " AS " + keys[i]);
  for (size_t j = 0; j < dp.aggregates.size(); ++j) {
    const DpAggregate& a = dp.aggregates[j];
    if (a.column.empty() || a.fn == spec::AggFn::kCountDistinct) continue;
    const Expr& arg = plan.outputs[a.output].expr.args[0];
    std::string v = RenderExpr(arg);
    if (a.fn != spec::AggFn::kCount) v = Clamp(v, a.bounds.first, a.bounds.second);
    cols.push_back(v + " AS " + QuoteIdent(fmt::format("v{}", j)));
  }
  std::vector<std::string> where = {UnitRef(plan) + " IS NOT NULL"};
  if (plan.where) where.push_back(RenderExpr(*plan.where));
  // Public groups: only the listed values can be released, so only their rows are read.
  for (size_t i = 0; i < dp.public_text.size(); ++i) {
    std::vector<std::string> lits;
    for (const auto& v : dp.public_text[i]) lits.push_back(QuoteLiteral(v));
    where.push_back(fmt::format("CAST({} AS VARCHAR) IN ({})", RenderExpr(plan.group_by[i]),
                                fmt::join(lits, ", ")));
  }
  std::string rows = fmt::format("SELECT {} FROM {} WHERE {}", fmt::join(cols, ", "),
                                 RenderFrom(plan), fmt::join(where, " AND "));

  // 2. Per (unit, group): the unit's rows, capped at C, each row's value
  //    clamped; a unit with more than C rows contributes C rows at its mean.
  const std::string c = std::to_string(dp.max_contributions);
  std::vector<std::string> per = {"\"__u\""};
  per.insert(per.end(), keys.begin(), keys.end());
  per.push_back(fmt::format("least(count(*), {}) AS \"__n\"", c));
  for (size_t j = 0; j < dp.aggregates.size(); ++j) {
    const DpAggregate& a = dp.aggregates[j];
    if (a.column.empty() || a.fn == spec::AggFn::kCountDistinct) continue;
    std::string v = QuoteIdent(fmt::format("v{}", j));
    per.push_back(fmt::format("least(count({}), {}) AS {}", v, c, QuoteIdent(fmt::format("n{}", j))));
    if (a.fn != spec::AggFn::kCount) {
      per.push_back(fmt::format(
          "coalesce(CAST(sum({0}) AS DOUBLE) * least(count({0}), {1}) / nullif(count({0}), 0), "
          "0) AS {2}",
          v, c, QuoteIdent(fmt::format("s{}", j))));
    }
  }
  std::vector<std::string> unit_keys = {"\"__u\""};
  unit_keys.insert(unit_keys.end(), keys.begin(), keys.end());
  std::string per_unit = fmt::format("SELECT {} FROM \"__cr_rows\" GROUP BY {}", fmt::join(per, ", "),
                                     fmt::join(unit_keys, ", "));

  // 3. At most L0 groups per unit, ranked by a keyed 64-bit hash: a fresh
  //    key per query, so which groups a unit keeps can be neither predicted
  //    nor steered (docs/privacy.md, "Bounding"). row_number() keeps exactly
  //    L0 even if two of a unit's groups hash alike.
  std::string bounded = "\"__cr_units\"";
  std::string ranked;
  if (ng > 0) {
    ranked = fmt::format(
        ", \"__cr_ranked\" AS (SELECT *, row_number() OVER (PARTITION BY \"__u\" ORDER BY {}) "
        "AS \"__rank\" FROM \"__cr_units\")",
        KeyedGroupHash(keys, key_hex));
    bounded = fmt::format("\"__cr_ranked\" WHERE \"__rank\" <= {}", dp.max_groups);
  }

  // 4. Per group: the bounded sums and counts, and the distinct units.
  std::vector<std::string> fin = keys;
  fin.push_back("count(*) AS \"__units\"");
  for (size_t j = 0; j < dp.aggregates.size(); ++j) {
    const DpAggregate& a = dp.aggregates[j];
    std::string out = QuoteIdent(fmt::format("a{}", j));
    switch (a.fn) {
      case spec::AggFn::kCountDistinct:
        fin.push_back("count(*) AS " + out);
        break;
      case spec::AggFn::kCount:
        fin.push_back(fmt::format("CAST(coalesce(sum({}), 0) AS BIGINT) AS {}",
                                  a.count_star ? "\"__n\"" : QuoteIdent(fmt::format("n{}", j)),
                                  out));
        break;
      default:  // SUM, and AVG's sum followed by its count
        fin.push_back(fmt::format("CAST(coalesce(sum({}), 0) AS DOUBLE) AS {}",
                                  QuoteIdent(fmt::format("s{}", j)), out));
        if (a.fn == spec::AggFn::kAvg) {
          fin.push_back(fmt::format("CAST(coalesce(sum({}), 0) AS BIGINT) AS {}",
                                    QuoteIdent(fmt::format("n{}", j)),
                                    QuoteIdent(fmt::format("b{}", j))));
        }
        break;
    }
  }
  std::string sql = fmt::format("WITH \"__cr_rows\" AS ({}), \"__cr_units\" AS ({}){} SELECT {} FROM {}", rows, per_unit,
                                ranked, fmt::join(fin, ", "), bounded);
  if (ng > 0) {
    sql += fmt::format(" GROUP BY {} ORDER BY {}", fmt::join(keys, ", "), fmt::join(keys, ", "));
  }
  return sql;
}

std::string CanonicalText(const Plan& plan, const DpPlan& dp) {
  std::string out = "cleanroom-dp-query-v1\n" + BoundedSql(plan, dp, "") + "\n";
  for (const auto& o : plan.outputs) out += o.name + "\n";
  for (const auto& o : plan.order) {
    out += fmt::format("order {} {} {}\n", o.output, o.descending, o.nulls);
  }
  if (plan.limit) out += fmt::format("limit {}\n", *plan.limit);
  if (plan.offset) out += fmt::format("offset {}\n", *plan.offset);
  out += fmt::format("epsilon {:.17g}\n", dp.epsilon);
  if (!plan.template_name.empty()) out += "template " + plan.template_name + "\n";
  return out;
}

}  // namespace cr::query
