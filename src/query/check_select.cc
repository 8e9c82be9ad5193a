// The SELECT node: its shape and modifiers, then FROM, WHERE, the SELECT
// list, GROUP BY, HAVING, the aggregation or list rule's shape, ORDER BY and
// LIMIT, in that order (later phases rely on what earlier ones checked).
#include <algorithm>
#include <set>

#include "query/checker.h"

namespace cr::query::internal {

Result<Plan> Checker::Run(const json& node) {
  CR_TRY(CheckNodeShape(node));
  CR_ASSIGN(Modifiers mods, ReadModifiers(node));
  std::vector<int> all;
  CR_TRY(AddFrom(Get(node, "from_table"), &all));
  // Rule kinds before anything else, so join and expression checks know
  // whether this is a list or an aggregation query.
  CR_TRY(CheckRuleKinds());
  CR_TRY(CheckJoins());
  CR_TRY(CheckWhere(node));
  CR_TRY(CheckSelectList(node));
  CR_TRY(CheckGroupBy(node));
  CR_TRY(CheckHaving(node));
  if (plan_.kind == QueryKind::kAggregation) {
    CR_TRY(CheckAggregationShape(mods));
  } else {
    CR_TRY(CheckListShape(mods));
  }
  CR_TRY(CheckOrderBy(mods));
  CR_TRY(CheckLimit(mods));
  Finish();
  return std::move(plan_);
}

Status Checker::CheckNodeShape(const json& node) {
  std::string ntype = Str(node, "type");
  if (ntype == "SET_OPERATION_NODE") {
    return Refuse("set operations (UNION, INTERSECT, EXCEPT) are not allowed");
  }
  if (ntype == "CTE_NODE" || ntype == "RECURSIVE_CTE_NODE") return Refuse("CTEs (WITH) are not allowed");
  if (ntype != "SELECT_NODE") return Refuse("only a plain SELECT is allowed ({})", ntype);
  const json& ctes = Get(Get(node, "cte_map"), "map");
  if (ctes.is_array() && !ctes.empty()) return Refuse("CTEs (WITH) are not allowed");
  if (!Get(node, "sample").is_null()) return Refuse("USING SAMPLE is not allowed");
  if (!Get(node, "qualify").is_null()) return Refuse("QUALIFY (window filters) is not allowed");
  std::string handling = Str(node, "aggregate_handling");
  if (!handling.empty() && handling != "STANDARD_HANDLING") {
    return Refuse("GROUP BY ALL is not allowed: list the grouping dimensions");
  }
  return Ok();
}

Result<Checker::Modifiers> Checker::ReadModifiers(const json& node) {
  Modifiers out;
  const json& mods = Get(node, "modifiers");
  if (!mods.is_array()) return out;
  for (const auto& m : mods) {
    std::string mt = Str(m, "type");
    if (mt == "DISTINCT_MODIFIER") {
      const json& on = Get(m, "distinct_on_targets");
      if (on.is_array() && !on.empty()) return Refuse("DISTINCT ON is not allowed");
      out.distinct = true;
    } else if (mt == "ORDER_MODIFIER") {
      if (out.order) return Refuse("ORDER BY given twice");
      out.order = &Get(m, "orders");
    } else if (mt == "LIMIT_MODIFIER") {
      out.limit = &Get(m, "limit");
      out.offset = &Get(m, "offset");
    } else {
      return Refuse("{} is not allowed", mt == "LIMIT_PERCENT_MODIFIER" ? "LIMIT n%" : mt);
    }
  }
  return out;
}

Status Checker::CheckWhere(const json& node) {
  if (Get(node, "where_clause").is_null()) return Ok();
  CR_ASSIGN(auto w, Check(Get(node, "where_clause"), Clause::kWhere, false, 0));
  plan_.where = std::move(w);
  return Ok();
}

Status Checker::CheckSelectList(const json& node) {
  const json& sel = Get(node, "select_list");
  if (!sel.is_array() || sel.empty()) return Refuse("empty SELECT list");
  std::set<std::string> names;
  for (size_t i = 0; i < sel.size(); ++i) {
    const json& item = sel[i];
    if (Str(item, "class") == "STAR") return Refuse("SELECT * is not allowed: name the columns");
    CR_ASSIGN(auto ex, Check(item, Clause::kSelect, false, 0));
    std::string name = Str(item, "alias");
    aliases_.push_back(Lower(name));
    if (name.empty()) {
      if (ex.kind == Expr::Kind::kColumn) {
        name = ex.column;
      } else if (ex.kind == Expr::Kind::kAggregate) {
        name = ex.args.empty() ? std::string("count")  // COUNT(*)
                               : fmt::format("{}_{}", spec::Name(ex.agg), ex.args[0].column);
      } else {
        name = fmt::format("col{}", i + 1);
      }
    }
    std::string unique = name;
    for (int n = 2; names.count(Lower(unique)); ++n) unique = fmt::format("{}_{}", name, n);
    names.insert(Lower(unique));
    plan_.outputs.push_back({unique, std::move(ex)});
  }
  return Ok();
}

void Checker::AddGroup(Expr e) {
  if (std::find(plan_.group_by.begin(), plan_.group_by.end(), e) == plan_.group_by.end()) {
    plan_.group_by.push_back(std::move(e));
  }
}

Status Checker::CheckGroupBy(const json& node) {
  const json& groups = Get(node, "group_expressions");
  const json& sets = Get(node, "group_sets");
  if (sets.is_array() && sets.size() > 1) {
    return Refuse("GROUPING SETS, ROLLUP and CUBE are not allowed");
  }
  if (sets.is_array() && sets.size() == 1 && groups.is_array() &&
      sets[0].size() != groups.size()) {
    return Refuse("GROUPING SETS, ROLLUP and CUBE are not allowed");
  }
  if (!groups.is_array()) return Ok();
  for (const auto& g : groups) {
    Expr ex;
    if (Str(g, "class") == "CONSTANT") {
      CR_ASSIGN(size_t pos, OutputFor(g, Clause::kGroupBy));
      ex = plan_.outputs[pos].expr;
    } else {
      const json& cn = Get(g, "column_names");
      bool alias_ref = false;
      if (Str(g, "class") == "COLUMN_REF" && cn.is_array() && cn.size() == 1 && cn[0].is_string()) {
        // A dataset column of that name wins over an output alias, as in DuckDB.
        std::string n = Lower(cn[0].get<std::string>());
        auto as_column = Resolve(cn, nullptr);
        auto it = std::find(aliases_.begin(), aliases_.end(), n);
        if (!as_column && it != aliases_.end()) {
          ex = plan_.outputs[static_cast<size_t>(it - aliases_.begin())].expr;
          alias_ref = true;
        }
      }
      if (!alias_ref) {
        CR_ASSIGN(ex, Check(g, Clause::kGroupBy, false, 0));
      }
    }
    if (ex.HasAggregate()) return Refuse("aggregates are not allowed in GROUP BY");
    AddGroup(std::move(ex));
  }
  return Ok();
}

Status Checker::CheckHaving(const json& node) {
  if (Get(node, "having").is_null()) return Ok();
  if (plan_.kind == QueryKind::kList) return Refuse("list rule: HAVING is not allowed");
  CR_ASSIGN(auto h, Check(Get(node, "having"), Clause::kHaving, false, 0));
  CR_TRY(CheckGrouped(h, Clause::kHaving));
  plan_.having = std::move(h);
  return Ok();
}

Status Checker::CheckAggregationShape(const Modifiers& mods) {
  if (mods.distinct) {
    return Refuse("SELECT DISTINCT is for list rules; aggregation queries use GROUP BY");
  }
  bool any_aggregate = false;
  for (const auto& o : plan_.outputs) {
    any_aggregate = any_aggregate || o.expr.HasAggregate();
    CR_TRY(CheckGrouped(o.expr, Clause::kSelect));
  }
  if (!any_aggregate) {
    return Refuse("aggregation rule: the SELECT list needs at least one allowed aggregate");
  }
  return Ok();
}

Status Checker::CheckListShape(const Modifiers& mods) {
  if (!mods.distinct) return Refuse("list rule: only SELECT DISTINCT of list columns is allowed");
  if (!plan_.group_by.empty()) return Refuse("list rule: GROUP BY is not allowed");
  for (const auto& o : plan_.outputs) {
    const Expr& ex = o.expr;
    if (ex.kind != Expr::Kind::kColumn) {
      return Refuse("list rule: the SELECT list may hold only list columns");
    }
    const auto& lc = plan_.tables[static_cast<size_t>(ex.table)].ds->rule.list_columns;
    if (std::find(lc.begin(), lc.end(), ex.column) == lc.end()) {
      return Refuse("{}: '{}' is not one of its list columns", Label(ex.table), ex.column);
    }
    // DISTINCT over the outputs is a GROUP BY of them: each listed value is
    // a group that must reach the threshold.
    AddGroup(ex);
  }
  if (plan_.tables.size() < 2) {
    return Refuse("list rule: a list query must join at least two datasets");
  }
  bool owns = false;
  for (const auto& t : plan_.tables) owns = owns || t.ds->Contributes(ctx_.caller);
  if (!owns) {
    return Refuse("list rule: the join must include a dataset contributed by {}", ctx_.caller);
  }
  return Ok();
}

Status Checker::CheckOrderBy(const Modifiers& mods) {
  // Only outputs (by position, alias or the same expression): the released
  // rows are ordered after the threshold, where nothing else exists.
  if (!mods.order || !mods.order->is_array()) return Ok();
  for (const auto& o : *mods.order) {
    OrderItem item;
    std::string ot = Str(o, "type");
    item.descending = ot == "DESCENDING";
    if (ot != "DESCENDING" && ot != "ASCENDING" && ot != "ORDER_DEFAULT") {
      return Refuse("ORDER BY {} is not allowed", ot);
    }
    std::string nulls = Str(o, "null_order");
    if (nulls == "NULLS_FIRST") item.nulls = "NULLS FIRST";
    if (nulls == "NULLS_LAST") item.nulls = "NULLS LAST";
    const json& ex = Get(o, "expression");
    bool found = false;
    if (Str(ex, "class") == "CONSTANT") {
      CR_ASSIGN(item.output, OutputFor(ex, Clause::kOrderBy));
      found = true;
    } else if (Str(ex, "class") == "COLUMN_REF" && Get(ex, "column_names").size() == 1 &&
               Get(ex, "column_names")[0].is_string()) {
      std::string n = Lower(Get(ex, "column_names")[0].get<std::string>());
      auto it = std::find(aliases_.begin(), aliases_.end(), n);
      if (it != aliases_.end()) {
        item.output = static_cast<size_t>(it - aliases_.begin());
        found = true;
      }
    }
    if (!found) {
      CR_ASSIGN(auto checked, Check(ex, Clause::kOrderBy, false, 0));
      for (size_t i = 0; i < plan_.outputs.size() && !found; ++i) {
        if (plan_.outputs[i].expr == checked) {
          item.output = i;
          found = true;
        }
      }
      if (!found) return Refuse("ORDER BY may only name output columns");
    }
    plan_.order.push_back(item);
  }
  return Ok();
}

Status Checker::CheckLimit(const Modifiers& mods) {
  auto count_of = [&](const json* j, const char* what) -> Result<std::optional<int64_t>> {
    if (!j || j->is_null()) return std::optional<int64_t>();
    if (Str(*j, "class") != "CONSTANT") return Refuse("{} must be a number", what);
    const json& v = Get(Get(*j, "value"), "value");
    if (!v.is_number_integer() || v.get<int64_t>() < 0) {
      return Refuse("{} must be a non-negative whole number", what);
    }
    return std::optional<int64_t>(v.get<int64_t>());
  };
  CR_ASSIGN(plan_.limit, count_of(mods.limit, "LIMIT"));
  CR_ASSIGN(plan_.offset, count_of(mods.offset, "OFFSET"));
  return Ok();
}

void Checker::Finish() {
  for (const auto& t : plan_.tables) {
    plan_.min_distinct_units = std::max(plan_.min_distinct_units, spec_.MinDistinctUnits(*t.ds));
  }
  if (ctx_.tmpl) plan_.template_name = ctx_.tmpl->name;
}

Status Checker::CheckGrouped(const Expr& e, Clause clause) {
  if (e.kind == Expr::Kind::kAggregate || e.kind == Expr::Kind::kConstant) return Ok();
  if (std::find(plan_.group_by.begin(), plan_.group_by.end(), e) != plan_.group_by.end()) {
    return Ok();
  }
  if (e.kind == Expr::Kind::kColumn) {
    return Refuse("'{}' in {} must be in GROUP BY or inside an aggregate", e.column,
                  ClauseName(clause));
  }
  for (const auto& a : e.args) CR_TRY(CheckGrouped(a, clause));
  return Ok();
}

// ORDER BY / GROUP BY items that name an output by its 1-based position.
Result<size_t> Checker::OutputFor(const json& e, Clause clause) {
  if (Str(e, "class") == "CONSTANT") {
    const json& v = Get(Get(e, "value"), "value");
    if (!v.is_number_integer() || v.get<int64_t>() < 1 ||
        v.get<int64_t>() > static_cast<int64_t>(plan_.outputs.size())) {
      return Refuse("{} position is out of range", ClauseName(clause));
    }
    return static_cast<size_t>(v.get<int64_t>() - 1);
  }
  return Refuse("not an output reference");
}

}  // namespace cr::query::internal
