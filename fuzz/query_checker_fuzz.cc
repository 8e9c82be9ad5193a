// libFuzzer target for the SQL checker: any input must never crash, and any
// query it accepts must only touch what the rules allow. The invariants are
// re-checked on the checked plan itself, independently of the checker:
// only spec datasets, join keys only in join conditions and COUNT(DISTINCT),
// metrics only inside aggregates the rule grants, at least one aggregate, and
// the generated SQL must parse as one SELECT.
#include <algorithm>
#include <cstddef>
#include <functional>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "crypto/crypto.h"
#include "demo/campaign_spec.h"
#include "query/ast.h"
#include "query/plan.h"
#include "query/rewrite.h"
#include "spec/spec.h"

namespace {


struct Env {
  cr::spec::Spec spec;
  std::unique_ptr<cr::engine::Database> db;
};

Env* Setup() {
  if (!cr::crypto::Init()) std::abort();
  std::string dir = std::filesystem::temp_directory_path() / "cleanroom-fuzz-spec";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  for (const char* n : {"acme", "newsco"}) {
    if (!cr::crypto::WriteIdentityFiles(cr::crypto::Identity::Generate(), dir, n)) std::abort();
  }
  FILE* f = std::fopen((dir + "/spec.yaml").c_str(), "w");
  std::fputs(cr::demo::CampaignSpec({"fuzz-query", "fuzzing", ""}).c_str(), f);
  std::fclose(f);
  auto spec = cr::spec::Load(dir + "/spec.yaml");
  if (!spec) std::abort();
  auto db = cr::engine::Database::Open({.threads = 1, .memory_limit = "256MB"});
  if (!db) std::abort();
  return new Env{std::move(*spec), std::make_unique<cr::engine::Database>(std::move(*db))};
}

void Die(const char* why) {
  std::fprintf(stderr, "invariant broken: %s\n", why);
  std::abort();
}

bool Allowed(const cr::spec::Dataset& d, const std::string& col, cr::spec::AggFn fn) {
  auto it = d.rule.aggregates.find(col);
  if (it == d.rule.aggregates.end()) return false;
  for (auto f : it->second) {
    if (f == fn) return true;
  }
  return false;
}

// Walks an expression: `agg_ok` says whether aggregates may appear here.
void Verify(const cr::query::Plan& p, const cr::query::Expr& e, bool agg_ok) {
  using K = cr::query::Expr::Kind;
  if (e.kind == K::kAggregate) {
    if (!agg_ok) Die("aggregate where none is allowed");
    const auto& c = e.args.at(0);
    if (c.kind != K::kColumn) Die("aggregate over an expression");
    const auto& d = *p.tables.at(static_cast<size_t>(c.table)).ds;
    if (!Allowed(d, c.column, e.agg)) Die("aggregate not granted by the rule");
    return;
  }
  if (e.kind == K::kColumn) {
    const auto& d = *p.tables.at(static_cast<size_t>(e.table)).ds;
    const auto* col = d.FindColumn(e.column);
    if (!col || col->role != cr::spec::Role::kDimension) Die("non-dimension column outside aggregates");
    return;
  }
  for (const auto& a : e.args) Verify(p, a, agg_ok);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Env* env = Setup();
  std::string sql(reinterpret_cast<const char*>(data), size);
  cr::query::CheckContext ctx;
  ctx.spec = &env->spec;
  ctx.caller = "acme";
  auto plan = cr::query::BuildPlan(*env->db, sql, ctx);
  if (!plan) return 0;
  // Accepted: re-check what it may touch.
  if (plan->tables.empty() || plan->tables.size() > cr::query::kMaxDatasets) Die("dataset count");
  for (const auto& t : plan->tables) {
    if (!env->spec.FindDataset(t.dataset)) Die("unknown dataset accepted");
  }
  bool any_agg = false;
  for (const auto& o : plan->outputs) {
    Verify(*plan, o.expr, true);
    any_agg = any_agg || o.expr.HasAggregate();
  }
  if (!any_agg) Die("aggregation query without an aggregate");
  if (plan->where) Verify(*plan, *plan->where, false);
  for (const auto& g : plan->group_by) Verify(*plan, g, false);
  if (plan->having) Verify(*plan, *plan->having, true);
  for (const auto& n : plan->from) {
    if (!n.condition) continue;
    std::function<void(const cr::query::Expr&)> join = [&](const cr::query::Expr& e) {
      using K = cr::query::Expr::Kind;
      if (e.kind == K::kAnd || e.kind == K::kOr) {
        for (const auto& a : e.args) join(a);
        return;
      }
      if (e.kind != K::kCompare || e.op != "=") Die("join condition is not an equality");
      for (const auto& c : e.args) {
        const auto* col = plan->tables.at(static_cast<size_t>(c.table)).ds->FindColumn(c.column);
        if (c.kind != K::kColumn || !col || col->role != cr::spec::Role::kJoinKey) {
          Die("join on a non-key column");
        }
      }
    };
    join(*n.condition);
  }
  int64_t strictest = 0;
  for (const auto& t : plan->tables) strictest = std::max(strictest, env->spec.MinDistinctUnits(*t.ds));
  if (plan->min_distinct_units != strictest) Die("threshold is not the strictest involved");
  // The generated statements are single SELECTs our own parser accepts.
  auto gen = cr::query::Generate(*plan);
  auto parsed = cr::query::ParseSelect(*env->db, gen.released);
  if (!parsed) Die("generated SQL does not parse");
  // The room decrypts and mounts only Plan::Columns(): each is declared, the
  // privacy unit column is there, and the generated SQL binds against empty
  // tables holding exactly those columns (a column the room did not decrypt
  // would be a binder error here).
  auto columns = plan->Columns();
  for (const auto& t : plan->tables) {
    if (!columns.count(t.dataset)) Die("a touched dataset is not mounted");
  }
  std::vector<std::string> created;
  for (const auto& [name, cols] : columns) {
    const auto* ds = env->spec.FindDataset(name);
    if (!ds || !cols.count(ds->privacy_unit_column)) Die("unit column not mounted");
    std::vector<std::string> defs;
    for (const auto& c : cols) {
      const auto* col = ds->FindColumn(c);
      if (!col) Die("undeclared column mounted");
      std::string type = col->role == cr::spec::Role::kJoinKey ? "UUID" : std::string(cr::spec::DuckDbType(col->type));
      defs.push_back(cr::engine::QuoteIdent(c) + " " + type);
    }
    if (!env->db->Execute(fmt::format("CREATE OR REPLACE TEMP TABLE {} ({})",
                                      cr::engine::QuoteIdent(name), fmt::join(defs, ", ")))) {
      Die("cannot create the mounted columns");
    }
    created.push_back(name);
  }
  // Type errors may fail here (the checker leaves typing to DuckDB: such a
  // query fails when it runs); a column missing from the mounted tables is
  // what this checks.
  auto bound = env->db->Query("EXPLAIN " + gen.groups, cr::ErrorCode::INTERNAL, true);
  auto missing = [](const std::string& m) {
    return m.find("does not have a column") != std::string::npos ||
           m.find("Referenced column") != std::string::npos ||
           m.find("Referenced table") != std::string::npos ||
           m.find("does not exist") != std::string::npos;
  };
  if (!bound && missing(bound.error().message)) {
    std::fprintf(stderr, "%s\n%s\n", gen.groups.c_str(), bound.error().message.c_str());
    Die("generated SQL reads a column that is not mounted");
  }
  for (const auto& name : created) {
    (void)env->db->Execute("DROP TABLE IF EXISTS " + cr::engine::QuoteIdent(name));
  }
  return 0;
}
