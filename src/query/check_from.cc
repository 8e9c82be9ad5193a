// The FROM clause: datasets and aliases, the inner-join tree, join conditions
// on join keys, the rules of the touched datasets, and privacy-unit classes.
#include <algorithm>
#include <functional>
#include <numeric>

#include "query/checker.h"

namespace cr::query::internal {

std::string Checker::ColumnsInScope(const std::vector<int>* scope) const {
  std::vector<std::string> parts;
  for (size_t i = 0; i < plan_.tables.size(); ++i) {
    int t = static_cast<int>(i);
    if (scope && std::find(scope->begin(), scope->end(), t) == scope->end()) continue;
    const auto& tr = plan_.tables[i];
    std::vector<std::string> cols;
    for (const auto& c : tr.ds->columns) cols.push_back(c.name);
    std::string who = tr.alias == Lower(tr.dataset) ? tr.dataset
                                                    : fmt::format("{} ({})", tr.alias, tr.dataset);
    parts.push_back(fmt::format("{}: {}", who, fmt::join(cols, ", ")));
  }
  return fmt::format("{}", fmt::join(parts, "; "));
}

std::string Checker::UnitColumnHint() const {
  if (plan_.tables.empty()) return "COUNT(DISTINCT <privacy unit column>)";
  const auto& t = plan_.tables.front();
  if (plan_.tables.size() == 1) return fmt::format("COUNT(DISTINCT {})", t.ds->privacy_unit_column);
  return fmt::format("COUNT(DISTINCT {}.{})", t.alias, t.ds->privacy_unit_column);
}

Result<std::pair<int, const spec::Column*>> Checker::Resolve(const json& names,
                                                             const std::vector<int>* scope) {
  if (!names.is_array() || names.empty() || names.size() > 2) {
    return Refuse("column references must be COLUMN or ALIAS.COLUMN (no schemas or struct fields)");
  }
  for (const auto& n : names) {
    if (!n.is_string()) return Refuse("unreadable column reference");
  }
  std::string col = Lower(names.back().get<std::string>());
  auto in_scope = [&](int t) {
    return !scope || std::find(scope->begin(), scope->end(), t) != scope->end();
  };
  auto find_col = [&](int t) -> const spec::Column* {
    for (const auto& c : plan_.tables[static_cast<size_t>(t)].ds->columns) {
      if (Lower(c.name) == col) return &c;
    }
    return nullptr;
  };
  if (names.size() == 2) {
    std::string alias = Lower(names[0].get<std::string>());
    std::vector<std::string> known;
    for (size_t i = 0; i < plan_.tables.size(); ++i) {
      int t = static_cast<int>(i);
      if (!in_scope(t)) continue;
      known.push_back(plan_.tables[i].alias);
      if (plan_.tables[i].alias != alias) continue;
      const spec::Column* c = find_col(t);
      if (!c) {
        std::vector<int> one = {t};
        return Refuse("unknown column '{}' in {}", col, ColumnsInScope(&one));
      }
      return std::make_pair(t, c);
    }
    return Refuse("unknown dataset or alias '{}' (in scope: {})", alias, fmt::join(known, ", "));
  }
  int found = -1;
  const spec::Column* fc = nullptr;
  for (size_t i = 0; i < plan_.tables.size(); ++i) {
    int t = static_cast<int>(i);
    if (!in_scope(t)) continue;
    if (const spec::Column* c = find_col(t)) {
      if (found >= 0) return Refuse("column '{}' is ambiguous: qualify it with a dataset alias", col);
      found = t;
      fc = c;
    }
  }
  if (found < 0) return Refuse("unknown column '{}' (columns in scope: {})", col, ColumnsInScope(scope));
  return std::make_pair(found, fc);
}

Result<int> Checker::AddFrom(const json& t, std::vector<int>* scope) {
  std::string type = Str(t, "type");
  if (!Get(t, "sample").is_null()) return Refuse("TABLESAMPLE is not allowed");
  if (type == "BASE_TABLE") {
    if (!Str(t, "schema_name").empty() || !Str(t, "catalog_name").empty()) {
      return Refuse("schema- or catalog-qualified tables are not allowed: name a dataset");
    }
    if (!Get(t, "at_clause").is_null()) return Refuse("AT (time travel) is not allowed");
    const json& cna = Get(t, "column_name_alias");
    if (cna.is_array() && !cna.empty()) return Refuse("column aliases on a dataset are not allowed");
    std::string name = Lower(Str(t, "table_name"));
    const spec::Dataset* ds = nullptr;
    std::vector<std::string> known;
    for (const auto& d : spec_.datasets) {
      known.push_back(d.name);
      if (Lower(d.name) == name) ds = &d;
    }
    if (!ds) return Refuse("unknown dataset '{}' (the spec's datasets: {})", name, fmt::join(known, ", "));
    if (plan_.tables.size() >= kMaxDatasets) {
      return Refuse("a query may touch at most {} datasets", kMaxDatasets);
    }
    std::string alias = Lower(Str(t, "alias"));
    if (alias.empty()) alias = name;
    for (const auto& existing : plan_.tables) {
      if (existing.alias == alias) return Refuse("alias '{}' is used twice", alias);
    }
    plan_.tables.push_back({ds->name, alias, ds});
    int idx = static_cast<int>(plan_.tables.size() - 1);
    scope->push_back(idx);
    FromNode n;
    n.table = idx;
    plan_.from.push_back(std::move(n));
    return static_cast<int>(plan_.from.size() - 1);
  }
  if (type == "JOIN") {
    if (!Str(t, "alias").empty()) return Refuse("aliases on a join are not allowed");
    std::string jt = Str(t, "join_type"), rt = Str(t, "ref_type");
    if (rt == "CROSS") return Refuse("cross joins (and comma-separated FROM lists) are not allowed");
    if (rt == "NATURAL") return Refuse("NATURAL joins are not allowed: join on join keys with ON");
    if (rt == "POSITIONAL") return Refuse("POSITIONAL joins are not allowed");
    if (rt == "ASOF") return Refuse("ASOF joins are not allowed");
    if (rt == "DEPENDENT" || rt == "LATERAL") return Refuse("LATERAL joins are not allowed");
    if (rt != "REGULAR") return Refuse("join kind {} is not allowed", rt);
    if (jt != "INNER") {
      return Refuse("{} joins are not allowed: only INNER JOIN", jt.empty() ? "these" : jt);
    }
    const json& using_cols = Get(t, "using_columns");
    if (using_cols.is_array() && !using_cols.empty()) {
      return Refuse("JOIN ... USING is not allowed: write ON a.key = b.key");
    }
    const json& cond = Get(t, "condition");
    if (cond.is_null()) return Refuse("a join needs an ON condition on join keys");
    std::vector<int> sub;
    CR_ASSIGN(int l, AddFrom(Get(t, "left"), &sub));
    CR_ASSIGN(int r, AddFrom(Get(t, "right"), &sub));
    FromNode n;
    n.left = l;
    n.right = r;
    plan_.from.push_back(std::move(n));
    size_t idx = plan_.from.size() - 1;
    joins_.push_back({idx, &cond, sub});
    scope->insert(scope->end(), sub.begin(), sub.end());
    return static_cast<int>(idx);
  }
  if (type == "TABLE_FUNCTION") {
    std::string fn = Str(Get(t, "function"), "function_name");
    return Refuse("table functions ({}) are not allowed: name a dataset", fn.empty() ? "?" : fn);
  }
  if (type == "SUBQUERY") return Refuse("subqueries are not allowed (in FROM)");
  if (type == "EMPTY") return Refuse("a query must read at least one dataset (FROM is missing)");
  if (type == "EXPRESSION_LIST") return Refuse("VALUES lists are not allowed");
  if (type == "PIVOT") return Refuse("PIVOT/UNPIVOT is not allowed");
  return Refuse("FROM item of type {} is not allowed", type);
}

Status Checker::CheckRuleKinds() {
  bool any_list = false, any_agg = false;
  for (size_t i = 0; i < plan_.tables.size(); ++i) {
    const auto& ds = *plan_.tables[i].ds;
    switch (ds.rule.kind) {
      case spec::RuleKind::kCustom: {
        if (!ctx_.tmpl) {
          return Refuse("{}: only its templates may run ({})", Label(static_cast<int>(i)),
                        ds.rule.templates.empty() ? std::string("none")
                                                  : fmt::format("{}", fmt::join(ds.rule.templates, ", ")));
        }
        const auto& tl = ds.rule.templates;
        if (std::find(tl.begin(), tl.end(), ctx_.tmpl->name) == tl.end()) {
          return Refuse("{}: template {} is not one of its templates", Label(static_cast<int>(i)),
                        ctx_.tmpl->name);
        }
        any_agg = true;  // templates are aggregations under the threshold
        break;
      }
      case spec::RuleKind::kList:
        any_list = true;
        break;
      case spec::RuleKind::kAggregation:
        any_agg = true;
        break;
    }
  }
  if (any_list && any_agg) {
    return Refuse("a query cannot mix datasets with list and aggregation rules");
  }
  plan_.kind = any_list ? QueryKind::kList : QueryKind::kAggregation;
  return Ok();
}

Result<Expr> Checker::CheckJoinCondition(const json& c, const std::vector<int>& scope, int depth) {
  if (depth > kMaxExprDepth) return Refuse("join condition nested too deeply");
  std::string cls = Str(c, "class"), type = Str(c, "type");
  if (cls == "CONJUNCTION") {
    Expr e;
    if (type == "CONJUNCTION_AND") {
      e.kind = Expr::Kind::kAnd;
    } else if (type == "CONJUNCTION_OR") {
      for (int t : scope) {
        const auto& ops = plan_.tables[static_cast<size_t>(t)].ds->rule.join_operators;
        if (std::find(ops.begin(), ops.end(), "or") == ops.end()) {
          return Refuse("{}: OR in join conditions is not allowed (join_operators)", Label(t));
        }
      }
      e.kind = Expr::Kind::kOr;
    } else {
      return Refuse("join condition operator {} is not allowed", type);
    }
    const json& ch = Get(c, "children");
    if (!ch.is_array() || ch.size() < 2) return Refuse("unreadable join condition");
    for (const auto& x : ch) {
      CR_ASSIGN(auto sub, CheckJoinCondition(x, scope, depth + 1));
      e.args.push_back(std::move(sub));
    }
    return e;
  }
  if (cls == "COMPARISON" && type == "COMPARE_EQUAL") {
    const json& l = Get(c, "left");
    const json& r = Get(c, "right");
    if (Str(l, "class") != "COLUMN_REF" || Str(r, "class") != "COLUMN_REF") {
      return Refuse("join conditions may only compare join key columns directly (a.key = b.key)");
    }
    CR_ASSIGN(auto lc, Resolve(Get(l, "column_names"), &scope));
    CR_ASSIGN(auto rc, Resolve(Get(r, "column_names"), &scope));
    for (const auto& [t, col] : {lc, rc}) {
      if (col->role != spec::Role::kJoinKey) {
        return Refuse("{}: join on '{}' is not allowed: only join_key columns may be joined on",
                      Label(t), col->name);
      }
    }
    if (lc.first == rc.first) return Refuse("a join condition must compare two different datasets");
    Expr e;
    e.kind = Expr::Kind::kCompare;
    e.op = "=";
    for (const auto& [t, col] : {lc, rc}) {
      Expr x;
      x.kind = Expr::Kind::kColumn;
      x.table = t;
      x.column = col->name;
      x.role = col->role;
      e.args.push_back(std::move(x));
    }
    return e;
  }
  return Refuse("join conditions may only be a.key = b.key on join keys, combined with AND");
}

Status Checker::CheckJoins() {
  bool any_or = false;
  std::function<bool(const Expr&)> has_or = [&](const Expr& e) {
    if (e.kind == Expr::Kind::kOr) return true;
    for (const auto& a : e.args) {
      if (has_or(a)) return true;
    }
    return false;
  };
  for (const auto& j : joins_) {
    CR_ASSIGN(auto cond, CheckJoinCondition(*j.condition, j.scope, 0));
    any_or = any_or || has_or(cond);
    plan_.from[j.node].condition = std::move(cond);
  }
  ComputeUnitClasses(any_or);
  return Ok();
}

void Checker::ComputeUnitClasses(bool any_or) {
  plan_.unit_class.resize(plan_.tables.size());
  std::iota(plan_.unit_class.begin(), plan_.unit_class.end(), 0);
  // With an OR anywhere in the joins, equal unit columns are not guaranteed
  // on every row: each table keeps its own count.
  if (any_or) return;
  auto find = [&](int a) {
    while (plan_.unit_class[static_cast<size_t>(a)] != a) a = plan_.unit_class[static_cast<size_t>(a)];
    return a;
  };
  std::function<void(const Expr&)> unite = [&](const Expr& e) {
    if (e.kind == Expr::Kind::kAnd) {
      for (const auto& a : e.args) unite(a);
    } else if (e.kind == Expr::Kind::kCompare && e.op == "=") {
      const Expr& l = e.args[0];
      const Expr& r = e.args[1];
      if (l.column == plan_.tables[static_cast<size_t>(l.table)].ds->privacy_unit_column &&
          r.column == plan_.tables[static_cast<size_t>(r.table)].ds->privacy_unit_column) {
        plan_.unit_class[static_cast<size_t>(find(l.table))] = find(r.table);
      }
    }
  };
  for (const auto& n : plan_.from) {
    if (n.condition) unite(*n.condition);
  }
  for (size_t i = 0; i < plan_.unit_class.size(); ++i) {
    plan_.unit_class[i] = find(static_cast<int>(i));
  }
}

}  // namespace cr::query::internal
