#include "query/plan.h"

#include <algorithm>

#include "query/ast.h"
#include "query/checker.h"

namespace cr::query {

bool Expr::HasAggregate() const {
  if (kind == Kind::kAggregate) return true;
  for (const auto& a : args) {
    if (a.HasAggregate()) return true;
  }
  return false;
}

std::vector<std::string> Plan::Datasets() const {
  std::vector<std::string> out;
  for (const auto& t : tables) {
    if (std::find(out.begin(), out.end(), t.dataset) == out.end()) out.push_back(t.dataset);
  }
  return out;
}

namespace {

void CollectColumns(const Plan& plan, const Expr& e, std::map<std::string, std::set<std::string>>* out) {
  if (e.kind == Expr::Kind::kColumn && e.table >= 0) {
    (*out)[plan.tables[static_cast<size_t>(e.table)].dataset].insert(e.column);
  }
  for (const auto& a : e.args) CollectColumns(plan, a, out);
}

}  // namespace

std::map<std::string, std::set<std::string>> Plan::Columns() const {
  std::map<std::string, std::set<std::string>> out;
  for (const auto& t : tables) {
    auto& cols = out[t.dataset];
    if (t.ds) cols.insert(t.ds->privacy_unit_column);
  }
  for (const auto& n : from) {
    if (n.condition) CollectColumns(*this, *n.condition, &out);
  }
  if (where) CollectColumns(*this, *where, &out);
  for (const auto& g : group_by) CollectColumns(*this, g, &out);
  for (const auto& o : outputs) CollectColumns(*this, o.expr, &out);
  if (having) CollectColumns(*this, *having, &out);
  return out;
}

Result<Plan> CheckStatement(engine::Database& db, const nlohmann::json& node,
                            const CheckContext& ctx) {
  if (!ctx.spec) return Fail(ErrorCode::INTERNAL, "no spec to check against");
  try {
    internal::Checker c(db, ctx);
    return c.Run(node);
  } catch (const std::exception&) {
    // Fail closed: a tree we cannot read is a query we do not run.
    return Fail(ErrorCode::QUERY_REFUSED, "the query could not be checked");
  }
}

Result<Plan> BuildPlan(engine::Database& db, std::string_view sql, const CheckContext& ctx) {
  if (ctx.tmpl) {
    for (const auto& [k, v] : ctx.params) {
      bool declared = false;
      for (const auto& p : ctx.tmpl->parameters) declared = declared || p.name == k;
      if (!declared) {
        return Fail(ErrorCode::BAD_INPUT, "template {} has no parameter {}", ctx.tmpl->name, k);
      }
    }
  }
  if (ctx.tmpl) {
    for (const auto& p : ctx.tmpl->parameters) {
      if (!ctx.params.count(p.name)) {
        return Fail(ErrorCode::BAD_INPUT, "template {} needs the parameter {} (a {})", ctx.tmpl->name,
                    p.name, spec::Name(p.type));
      }
    }
  }
  CR_ASSIGN(auto node, ParseSelect(db, sql));
  return CheckStatement(db, node, ctx);
}

}  // namespace cr::query
