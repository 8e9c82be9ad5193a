// Private to the query checker: the Checker class that turns DuckDB's parsed
// SELECT into a checked Plan, split like DuckDB's binder into the FROM clause
// (check_from.cc), expressions (check_expr.cc) and the SELECT node with its
// clauses and modifiers (check_select.cc). Include only from those files.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "engine/engine.h"
#include "query/plan.h"
#include "spec/spec.h"

namespace cr::query::internal {

using nlohmann::json;

// Missing keys and non-objects read as null, so a tree of an unexpected shape
// is refused by the checks instead of throwing half way.
const json& Get(const json& j, const char* key);
std::string Str(const json& j, const char* key);
std::string Lower(std::string_view s);

template <typename... Args>
std::unexpected<Error> Refuse(fmt::format_string<Args...> f, Args&&... args) {
  return Fail(ErrorCode::QUERY_REFUSED, f, std::forward<Args>(args)...);
}

enum class Clause { kSelect, kWhere, kGroupBy, kHaving, kOrderBy };
std::string_view ClauseName(Clause c);

class Checker {
 public:
  Checker(engine::Database& db, const CheckContext& ctx) : db_(db), ctx_(ctx), spec_(*ctx.spec) {}

  // Checks one SELECT_NODE; each phase below refuses on the first violation.
  Result<Plan> Run(const json& node);

 private:
  struct PendingJoin {
    size_t node;
    const json* condition;
    std::vector<int> scope;
  };
  // The modifiers of the SELECT node, read before anything else is checked.
  struct Modifiers {
    bool distinct = false;
    const json* order = nullptr;
    const json* limit = nullptr;
    const json* offset = nullptr;
  };

  // check_select.cc: the phases of Run, in order.
  Status CheckNodeShape(const json& node);
  Result<Modifiers> ReadModifiers(const json& node);
  Status CheckWhere(const json& node);
  Status CheckSelectList(const json& node);
  Status CheckGroupBy(const json& node);
  Status CheckHaving(const json& node);
  Status CheckAggregationShape(const Modifiers& mods);
  Status CheckListShape(const Modifiers& mods);
  Status CheckOrderBy(const Modifiers& mods);
  Status CheckLimit(const Modifiers& mods);
  void Finish();
  Result<size_t> OutputFor(const json& e, Clause clause);
  Status CheckGrouped(const Expr& e, Clause clause);
  void AddGroup(Expr e);

  // check_from.cc: datasets, aliases, the join tree and unit classes.
  Result<int> AddFrom(const json& t, std::vector<int>* scope);
  Status CheckRuleKinds();
  Status CheckJoins();
  void ComputeUnitClasses(bool any_or);
  Result<Expr> CheckJoinCondition(const json& c, const std::vector<int>& scope, int depth);
  Result<std::pair<int, const spec::Column*>> Resolve(const json& names,
                                                      const std::vector<int>* scope);
  // "impressions: email, campaign, ..." for each table in `scope` (all when
  // null): names only, so an "unknown column" refusal says what exists.
  std::string ColumnsInScope(const std::vector<int>* scope) const;
  // The privacy-unit columns of the tables in the query, for hints.
  std::string UnitColumnHint() const;

  // check_expr.cc: one expression of a clause, recursively.
  Result<Expr> Check(const json& e, Clause clause, bool in_aggregate, int depth);
  Result<Expr> CheckColumn(const json& e, Clause clause);
  Result<Expr> CheckAggregate(const json& e, Clause clause, bool in_aggregate);
  Result<Expr> CheckFunction(const json& e, Clause clause, bool in_aggregate, int depth);
  Result<Expr> CheckOperator(const json& e, Clause clause, bool in_aggregate, int depth);
  Result<Expr> CheckCast(const json& e, Clause clause, bool in_aggregate, int depth);
  Result<Expr> CheckCase(const json& e, Clause clause, bool in_aggregate, int depth);
  Result<Expr> CheckConstant(const json& e);
  Result<Expr> BindParameter(const json& e);
  Status CheckChildren(Expr* x, const json& children, Clause clause, bool in_aggregate, int depth);

  std::string Label(int table) const {
    const auto& t = plan_.tables[static_cast<size_t>(table)];
    return fmt::format("{} ({} rule)", t.dataset, spec::Name(t.ds->rule.kind));
  }
  bool Permissive(int table) const {
    // Datasets with a custom rule are reached only through a template the
    // parties signed; role limits still apply, the rule's lists do not.
    return plan_.tables[static_cast<size_t>(table)].ds->rule.kind == spec::RuleKind::kCustom;
  }

  engine::Database& db_;
  const CheckContext& ctx_;
  const spec::Spec& spec_;
  Plan plan_;
  std::vector<PendingJoin> joins_;
  std::vector<std::string> aliases_;  // lower-cased output aliases
};

}  // namespace cr::query::internal
