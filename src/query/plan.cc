#include "query/plan.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <numeric>
#include <set>

#include <fmt/format.h>

#include "query/ast.h"
#include "query/functions.h"

namespace cr::query {
namespace {

using nlohmann::json;

const json kNullJson;

const json& Get(const json& j, const char* key) {
  if (j.is_object()) {
    auto it = j.find(key);
    if (it != j.end()) return *it;
  }
  return kNullJson;
}

std::string Str(const json& j, const char* key) {
  const json& v = Get(j, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

template <typename... Args>
std::unexpected<Error> Refuse(fmt::format_string<Args...> f, Args&&... args) {
  return Fail(ErrorCode::QUERY_REFUSED, f, std::forward<Args>(args)...);
}

enum class Clause { kSelect, kWhere, kGroupBy, kHaving, kOrderBy };

std::string_view ClauseName(Clause c) {
  switch (c) {
    case Clause::kSelect: return "SELECT";
    case Clause::kWhere: return "WHERE";
    case Clause::kGroupBy: return "GROUP BY";
    case Clause::kHaving: return "HAVING";
    case Clause::kOrderBy: return "ORDER BY";
  }
  return "?";
}

// Formats a double so DuckDB reads back the same value.
std::string NumberLiteral(double v) {
  std::string s = fmt::format("{}", v);
  return v < 0 ? "(" + s + ")" : s;
}

std::string AllowedList(const std::vector<spec::AggFn>& fns) {
  std::vector<std::string> names;
  for (auto f : fns) names.emplace_back(spec::Name(f));
  return names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "));
}

class Checker {
 public:
  Checker(engine::Database& db, const CheckContext& ctx) : db_(db), ctx_(ctx), spec_(*ctx.spec) {}

  Result<Plan> Run(const json& node);

 private:
  struct PendingJoin {
    size_t node;
    const json* condition;
    std::vector<int> scope;
  };

  Result<int> AddFrom(const json& t, std::vector<int>* scope);
  Result<Expr> CheckJoinCondition(const json& c, const std::vector<int>& scope, int depth);
  Result<Expr> Check(const json& e, Clause clause, bool in_aggregate, int depth);
  Result<Expr> CheckColumn(const json& e, Clause clause);
  Result<Expr> CheckAggregate(const json& e, Clause clause, bool in_aggregate);
  Result<Expr> CheckConstant(const json& e);
  Result<Expr> BindParameter(const json& e);
  Result<std::pair<int, const spec::Column*>> Resolve(const json& names,
                                                      const std::vector<int>* scope);
  Status CheckGrouped(const Expr& e, const std::set<std::string>& groups, Clause clause);
  Result<size_t> OutputFor(const json& e, Clause clause);
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
    for (size_t i = 0; i < plan_.tables.size(); ++i) {
      int t = static_cast<int>(i);
      if (plan_.tables[i].alias != alias || !in_scope(t)) continue;
      const spec::Column* c = find_col(t);
      if (!c) return Refuse("unknown column '{}' in dataset {}", col, plan_.tables[i].dataset);
      return std::make_pair(t, c);
    }
    return Refuse("unknown dataset or alias '{}'", alias);
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
  if (found < 0) return Refuse("unknown column '{}'", col);
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
    for (const auto& d : spec_.datasets) {
      if (Lower(d.name) == name) ds = &d;
    }
    if (!ds) return Refuse("unknown dataset '{}'", name);
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

Result<Expr> Checker::CheckConstant(const json& e) {
  const json& v = Get(e, "value");
  Expr x;
  x.kind = Expr::Kind::kConstant;
  if (Get(v, "is_null").is_boolean() && Get(v, "is_null").get<bool>()) {
    x.literal = "NULL";
    return x;
  }
  std::string id = Str(Get(v, "type"), "id");
  const json& val = Get(v, "value");
  if (id == "VARCHAR" && val.is_string()) {
    x.literal = engine::QuoteLiteral(val.get<std::string>());
    return x;
  }
  if ((id == "INTEGER" || id == "BIGINT" || id == "SMALLINT" || id == "TINYINT" ||
       id == "UTINYINT" || id == "USMALLINT" || id == "UINTEGER" || id == "UBIGINT") &&
      val.is_number_integer()) {
    x.literal = val.is_number_unsigned() ? std::to_string(val.get<uint64_t>())
                                         : std::to_string(val.get<int64_t>());
    if (x.literal[0] == '-') x.literal = "(" + x.literal + ")";
    return x;
  }
  if ((id == "DOUBLE" || id == "FLOAT") && val.is_number()) {
    double d = val.get<double>();
    if (!std::isfinite(d)) return Refuse("non-finite number literals are not allowed");
    x.literal = NumberLiteral(d);
    return x;
  }
  if (id == "DECIMAL" && val.is_number_integer()) {
    const json& ti = Get(Get(v, "type"), "type_info");
    int64_t scale = Get(ti, "scale").is_number_integer() ? Get(ti, "scale").get<int64_t>() : -1;
    if (scale < 0 || scale > 18) return Refuse("unreadable decimal literal");
    int64_t raw = val.get<int64_t>();
    if (raw == INT64_MIN) return Refuse("decimal literal out of range");
    bool neg = raw < 0;
    std::string digits = std::to_string(neg ? -raw : raw);
    while (static_cast<int64_t>(digits.size()) <= scale) digits.insert(digits.begin(), '0');
    if (scale > 0) digits.insert(digits.end() - scale, '.');
    x.literal = neg ? "(-" + digits + ")" : digits;
    return x;
  }
  if (id == "HUGEINT" || id == "UHUGEINT") return Refuse("number literal too large");
  return Refuse("literals of type {} are not allowed", id.empty() ? "?" : id);
}

Result<Expr> Checker::BindParameter(const json& e) {
  std::string name = Str(e, "identifier");
  if (!ctx_.tmpl) {
    return Refuse("parameters ($name, ?) are only for templates: write literal values");
  }
  const spec::TemplateParam* p = nullptr;
  for (const auto& tp : ctx_.tmpl->parameters) {
    if (tp.name == name) p = &tp;
  }
  if (!p) {
    return Fail(ErrorCode::BAD_INPUT, "template {} uses ${} which it does not declare",
                ctx_.tmpl->name, name);
  }
  auto it = ctx_.params.find(name);
  if (it == ctx_.params.end()) {
    return Fail(ErrorCode::BAD_INPUT, "template {} needs --param {}=<{}>", ctx_.tmpl->name, name,
                spec::Name(p->type));
  }
  const std::string& raw = it->second;
  auto bad = [&]() {
    return Fail(ErrorCode::BAD_INPUT, "parameter {} of template {} must be a {}", name,
                ctx_.tmpl->name, spec::Name(p->type));
  };
  // The value becomes a typed constant node of the checked tree: rendered by
  // us (quoted or formatted), never spliced into the template's text.
  Expr x;
  x.kind = Expr::Kind::kConstant;
  switch (p->type) {
    case spec::ColumnType::kString:
      x.literal = engine::QuoteLiteral(raw);
      break;
    case spec::ColumnType::kInteger: {
      int64_t v = 0;
      auto [ptr, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), v);
      if (raw.empty() || ec != std::errc() || ptr != raw.data() + raw.size()) return bad();
      x.literal = v < 0 ? "(" + std::to_string(v) + ")" : std::to_string(v);
      break;
    }
    case spec::ColumnType::kDouble: {
      char* end = nullptr;
      double v = std::strtod(raw.c_str(), &end);
      if (raw.empty() || end != raw.c_str() + raw.size() || !std::isfinite(v)) return bad();
      x.literal = NumberLiteral(v);
      break;
    }
    case spec::ColumnType::kBoolean: {
      std::string l = Lower(raw);
      if (l == "true") {
        x.literal = "TRUE";
      } else if (l == "false") {
        x.literal = "FALSE";
      } else {
        return bad();
      }
      break;
    }
    case spec::ColumnType::kDate:
    case spec::ColumnType::kTimestamp: {
      std::string type(spec::DuckDbType(p->type));
      for (char c : raw) {
        if (!std::isdigit(static_cast<unsigned char>(c)) && c != '-' && c != ':' && c != ' ' &&
            c != 'T' && c != '.') {
          return bad();
        }
      }
      auto ok = db_.Query(fmt::format("SELECT TRY_CAST({} AS {}) IS NOT NULL",
                                      engine::QuoteLiteral(raw), type),
                          ErrorCode::BAD_INPUT, false);
      if (!ok || ok->Scalar() != std::optional<std::string>("true")) return bad();
      x.literal = fmt::format("CAST({} AS {})", engine::QuoteLiteral(raw), type);
      break;
    }
  }
  return x;
}

Result<Expr> Checker::CheckColumn(const json& e, Clause clause) {
  CR_ASSIGN(auto rc, Resolve(Get(e, "column_names"), nullptr));
  auto [t, col] = rc;
  const spec::Dataset& ds = *plan_.tables[static_cast<size_t>(t)].ds;
  switch (col->role) {
    case spec::Role::kJoinKey:
      return Refuse("{}: join key '{}' in {}: join keys may be used only in join conditions (=) "
                    "and COUNT(DISTINCT {})",
                    Label(t), col->name, ClauseName(clause), col->name);
    case spec::Role::kMetric:
    case spec::Role::kSensitive: {
      auto it = ds.rule.aggregates.find(col->name);
      return Refuse("{}: {} column '{}' in {}: it may appear only inside an allowed aggregate "
                    "(allowed: {})",
                    Label(t), spec::Name(col->role), col->name, ClauseName(clause),
                    it == ds.rule.aggregates.end() ? std::string("none") : AllowedList(it->second));
    }
    case spec::Role::kDimension:
      break;
  }
  Expr x;
  x.kind = Expr::Kind::kColumn;
  x.table = t;
  x.column = col->name;
  x.role = col->role;
  return x;
}

Result<Expr> Checker::CheckAggregate(const json& e, Clause clause, bool in_aggregate) {
  std::string name = Lower(Str(e, "function_name"));
  bool distinct = Get(e, "distinct").is_boolean() && Get(e, "distinct").get<bool>();
  if (name == "count_star") {
    return Refuse("COUNT(*) is not allowed: count a column the rule allows, e.g. "
                  "COUNT(DISTINCT email)");
  }
  if (clause == Clause::kWhere || clause == Clause::kGroupBy) {
    return Refuse("aggregates are not allowed in {}", ClauseName(clause));
  }
  if (in_aggregate) return Refuse("nested aggregates are not allowed");
  if (plan_.kind == QueryKind::kList) return Refuse("list rule: aggregates are not allowed");
  if (!Get(e, "filter").is_null()) return Refuse("FILTER on aggregates is not allowed");
  const json& ob = Get(Get(e, "order_bys"), "orders");
  if (ob.is_array() && !ob.empty()) return Refuse("ORDER BY inside aggregates is not allowed");
  if (Get(e, "export_state").is_boolean() && Get(e, "export_state").get<bool>()) {
    return Refuse("EXPORT_STATE is not allowed");
  }
  auto fn = FindAggregate(name, distinct);
  if (!fn) {
    return Refuse("aggregate {}{} is not allowed (rules grant count, count_distinct, sum, avg, "
                  "stddev, median)",
                  name, distinct ? "(DISTINCT)" : "");
  }
  const json& ch = Get(e, "children");
  if (!ch.is_array() || ch.size() != 1 || Str(ch[0], "class") != "COLUMN_REF") {
    return Refuse("{} must be applied to one column directly: arithmetic, casts and functions "
                  "inside aggregates are not allowed",
                  spec::Name(*fn));
  }
  CR_ASSIGN(auto rc, Resolve(Get(ch[0], "column_names"), nullptr));
  auto [t, col] = rc;
  const spec::Dataset& ds = *plan_.tables[static_cast<size_t>(t)].ds;
  if (col->role == spec::Role::kJoinKey && *fn != spec::AggFn::kCountDistinct) {
    return Refuse("{}: join key '{}' may be aggregated only as COUNT(DISTINCT {})", Label(t),
                  col->name, col->name);
  }
  if (!Permissive(t)) {
    auto it = ds.rule.aggregates.find(col->name);
    if (it == ds.rule.aggregates.end() ||
        std::find(it->second.begin(), it->second.end(), *fn) == it->second.end()) {
      return Refuse("{}: {} of '{}' is not allowed (allowed: {})", Label(t), spec::Name(*fn),
                    col->name,
                    it == ds.rule.aggregates.end() ? std::string("none") : AllowedList(it->second));
    }
  }
  Expr arg;
  arg.kind = Expr::Kind::kColumn;
  arg.table = t;
  arg.column = col->name;
  arg.role = col->role;
  Expr x;
  x.kind = Expr::Kind::kAggregate;
  x.agg = *fn;
  if (col->role == spec::Role::kMetric || col->role == spec::Role::kSensitive) x.clamp = col->bounds;
  x.args.push_back(std::move(arg));
  return x;
}

Result<Expr> Checker::Check(const json& e, Clause clause, bool in_aggregate, int depth) {
  if (depth > kMaxExprDepth) return Refuse("expression nested too deeply (over {} levels)", kMaxExprDepth);
  std::string cls = Str(e, "class"), type = Str(e, "type");
  auto sub = [&](const json& c) { return Check(c, clause, in_aggregate, depth + 1); };
  auto children = [&](Expr* x, const json& ch) -> Status {
    if (!ch.is_array()) return Refuse("unreadable expression");
    for (const auto& c : ch) {
      CR_ASSIGN(auto s, sub(c));
      x->args.push_back(std::move(s));
    }
    return Ok();
  };
  Expr x;
  if (cls == "COLUMN_REF") return CheckColumn(e, clause);
  if (cls == "CONSTANT") return CheckConstant(e);
  if (cls == "PARAMETER") return BindParameter(e);
  if (cls == "FUNCTION") {
    std::string name = Lower(Str(e, "function_name"));
    // The parser itself files SQL-standard forms (SUBSTRING, TRIM, EXTRACT)
    // under schema "main"; any other schema or catalog is refused.
    std::string schema = Lower(Str(e, "schema"));
    if ((!schema.empty() && schema != "main") || !Str(e, "catalog").empty()) {
      return Refuse("schema-qualified functions are not allowed");
    }
    if (FindAggregate(name, false) || FindAggregate(name, true) || LooksLikeAggregate(name)) {
      return CheckAggregate(e, clause, in_aggregate);
    }
    const ScalarFunction* fn = FindScalar(name);
    if (!fn) {
      return Refuse("function {} is not on the allow-list (see docs/query-rules.md)", name);
    }
    if (Get(e, "distinct").is_boolean() && Get(e, "distinct").get<bool>()) {
      return Refuse("DISTINCT is not allowed in {}", name);
    }
    if (!Get(e, "filter").is_null()) return Refuse("FILTER is not allowed in {}", name);
    const json& ch = Get(e, "children");
    if (!ch.is_array() || static_cast<int>(ch.size()) < fn->min_args ||
        static_cast<int>(ch.size()) > fn->max_args) {
      return Refuse("function {} takes {} to {} arguments", name, fn->min_args, fn->max_args);
    }
    x.kind = fn->infix ? Expr::Kind::kInfix : Expr::Kind::kFunction;
    x.op = std::string(fn->name);
    CR_TRY(children(&x, ch));
    return x;
  }
  if (cls == "COMPARISON") {
    static const std::map<std::string, std::string> kOps = {
        {"COMPARE_EQUAL", "="},
        {"COMPARE_NOTEQUAL", "<>"},
        {"COMPARE_LESSTHAN", "<"},
        {"COMPARE_GREATERTHAN", ">"},
        {"COMPARE_LESSTHANOREQUALTO", "<="},
        {"COMPARE_GREATERTHANOREQUALTO", ">="},
        {"COMPARE_DISTINCT_FROM", "IS DISTINCT FROM"},
        {"COMPARE_NOT_DISTINCT_FROM", "IS NOT DISTINCT FROM"}};
    auto it = kOps.find(type);
    if (it == kOps.end()) return Refuse("comparison {} is not allowed", type);
    x.kind = Expr::Kind::kCompare;
    x.op = it->second;
    CR_ASSIGN(auto l, sub(Get(e, "left")));
    CR_ASSIGN(auto r, sub(Get(e, "right")));
    x.args.push_back(std::move(l));
    x.args.push_back(std::move(r));
    return x;
  }
  if (cls == "CONJUNCTION") {
    if (type == "CONJUNCTION_AND") {
      x.kind = Expr::Kind::kAnd;
    } else if (type == "CONJUNCTION_OR") {
      x.kind = Expr::Kind::kOr;
    } else {
      return Refuse("operator {} is not allowed", type);
    }
    CR_TRY(children(&x, Get(e, "children")));
    if (x.args.size() < 2) return Refuse("unreadable expression");
    return x;
  }
  if (cls == "OPERATOR") {
    const json& ch = Get(e, "children");
    if (type == "OPERATOR_NOT") {
      x.kind = Expr::Kind::kNot;
    } else if (type == "OPERATOR_IS_NULL" || type == "OPERATOR_IS_NOT_NULL") {
      x.kind = Expr::Kind::kIsNull;
      x.negated = type == "OPERATOR_IS_NOT_NULL";
    } else if (type == "COMPARE_IN" || type == "COMPARE_NOT_IN") {
      x.kind = Expr::Kind::kIn;
      x.negated = type == "COMPARE_NOT_IN";
    } else if (type == "OPERATOR_COALESCE") {
      x.kind = Expr::Kind::kCoalesce;
    } else {
      return Refuse("operator {} is not allowed", type);
    }
    CR_TRY(children(&x, ch));
    size_t need = x.kind == Expr::Kind::kIn ? 2 : 1;
    if (x.args.size() < need || ((x.kind == Expr::Kind::kNot || x.kind == Expr::Kind::kIsNull) &&
                                 x.args.size() != 1)) {
      return Refuse("unreadable expression");
    }
    return x;
  }
  if (cls == "BETWEEN") {
    x.kind = Expr::Kind::kBetween;
    x.negated = type == "COMPARE_NOT_BETWEEN";
    for (const char* k : {"input", "lower", "upper"}) {
      CR_ASSIGN(auto s, sub(Get(e, k)));
      x.args.push_back(std::move(s));
    }
    return x;
  }
  if (cls == "CAST") {
    const json& ct = Get(e, "cast_type");
    std::string id = Str(ct, "id");
    if (!AllowedCastType(id)) return Refuse("CAST to {} is not allowed", id.empty() ? "?" : id);
    x.kind = Expr::Kind::kCast;
    x.op = id;
    if (id == "DECIMAL") {
      const json& ti = Get(ct, "type_info");
      const json& w = Get(ti, "width");
      const json& s = Get(ti, "scale");
      if (!w.is_number_unsigned() || !s.is_number_unsigned() || w.get<uint64_t>() > 38 ||
          s.get<uint64_t>() > w.get<uint64_t>()) {
        return Refuse("unreadable DECIMAL type");
      }
      x.op = fmt::format("DECIMAL({}, {})", w.get<uint64_t>(), s.get<uint64_t>());
    } else if (!Get(ct, "type_info").is_null()) {
      return Refuse("CAST to a parameterised {} type is not allowed", id);
    }
    x.negated = Get(e, "try_cast").is_boolean() && Get(e, "try_cast").get<bool>();
    CR_ASSIGN(auto c, sub(Get(e, "child")));
    x.args.push_back(std::move(c));
    return x;
  }
  if (cls == "CASE") {
    x.kind = Expr::Kind::kCase;
    const json& checks = Get(e, "case_checks");
    if (!checks.is_array() || checks.empty()) return Refuse("unreadable CASE");
    for (const auto& c : checks) {
      CR_ASSIGN(auto w, sub(Get(c, "when_expr")));
      CR_ASSIGN(auto t, sub(Get(c, "then_expr")));
      x.args.push_back(std::move(w));
      x.args.push_back(std::move(t));
    }
    if (!Get(e, "else_expr").is_null()) {
      CR_ASSIGN(auto el, sub(Get(e, "else_expr")));
      x.args.push_back(std::move(el));
      x.negated = true;
    }
    return x;
  }
  if (cls == "SUBQUERY") return Refuse("subqueries are not allowed (in {})", ClauseName(clause));
  if (cls == "WINDOW") return Refuse("window functions are not allowed");
  if (cls == "STAR") return Refuse("SELECT * (and COLUMNS(...)) is not allowed: name the columns");
  if (cls == "COLLATE") return Refuse("COLLATE is not allowed");
  if (cls == "LAMBDA") return Refuse("lambda functions are not allowed");
  if (cls == "POSITIONAL_REFERENCE") return Refuse("positional column references (#n) are not allowed");
  return Refuse("expression {} is not allowed", cls.empty() ? "?" : cls);
}

Status Checker::CheckGrouped(const Expr& e, const std::set<std::string>& groups, Clause clause) {
  if (e.kind == Expr::Kind::kAggregate || e.kind == Expr::Kind::kConstant) return Ok();
  if (groups.count(RenderExpr(e))) return Ok();
  if (e.kind == Expr::Kind::kColumn) {
    return Refuse("'{}' in {} must be in GROUP BY or inside an aggregate", e.column,
                  ClauseName(clause));
  }
  for (const auto& a : e.args) CR_TRY(CheckGrouped(a, groups, clause));
  return Ok();
}

// ORDER BY / GROUP BY items that name an output: a 1-based position or an alias.
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

Result<Plan> Checker::Run(const json& node) {
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

  // Modifiers.
  bool distinct = false;
  const json* order = nullptr;
  const json* limit = nullptr;
  const json* offset = nullptr;
  const json& mods = Get(node, "modifiers");
  if (mods.is_array()) {
    for (const auto& m : mods) {
      std::string mt = Str(m, "type");
      if (mt == "DISTINCT_MODIFIER") {
        const json& on = Get(m, "distinct_on_targets");
        if (on.is_array() && !on.empty()) return Refuse("DISTINCT ON is not allowed");
        distinct = true;
      } else if (mt == "ORDER_MODIFIER") {
        if (order) return Refuse("ORDER BY given twice");
        order = &Get(m, "orders");
      } else if (mt == "LIMIT_MODIFIER") {
        limit = &Get(m, "limit");
        offset = &Get(m, "offset");
      } else {
        return Refuse("{} is not allowed", mt == "LIMIT_PERCENT_MODIFIER" ? "LIMIT n%" : mt);
      }
    }
  }

  // FROM: datasets, aliases, join tree.
  std::vector<int> all;
  CR_TRY(AddFrom(Get(node, "from_table"), &all));

  // Rules of the touched datasets.
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

  // Join conditions, now that every table and rule is known.
  bool any_or = false;
  for (const auto& j : joins_) {
    CR_ASSIGN(auto cond, CheckJoinCondition(*j.condition, j.scope, 0));
    std::function<bool(const Expr&)> has_or = [&](const Expr& e) {
      if (e.kind == Expr::Kind::kOr) return true;
      for (const auto& a : e.args) {
        if (has_or(a)) return true;
      }
      return false;
    };
    any_or = any_or || has_or(cond);
    plan_.from[j.node].condition = std::move(cond);
  }
  // Privacy-unit classes (see Plan::unit_class).
  plan_.unit_class.resize(plan_.tables.size());
  std::iota(plan_.unit_class.begin(), plan_.unit_class.end(), 0);
  if (!any_or) {
    std::function<int(int)> find = [&](int a) {
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

  // WHERE.
  if (!Get(node, "where_clause").is_null()) {
    CR_ASSIGN(auto w, Check(Get(node, "where_clause"), Clause::kWhere, false, 0));
    plan_.where = std::move(w);
  }

  // SELECT list.
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
        name = fmt::format("{}_{}", spec::Name(ex.agg), ex.args[0].column);
      } else {
        name = fmt::format("col{}", i + 1);
      }
    }
    std::string unique = name;
    for (int n = 2; names.count(Lower(unique)); ++n) unique = fmt::format("{}_{}", name, n);
    names.insert(Lower(unique));
    plan_.outputs.push_back({unique, std::move(ex)});
  }

  // GROUP BY.
  const json& groups = Get(node, "group_expressions");
  const json& sets = Get(node, "group_sets");
  if (sets.is_array() && sets.size() > 1) {
    return Refuse("GROUPING SETS, ROLLUP and CUBE are not allowed");
  }
  if (sets.is_array() && sets.size() == 1 && groups.is_array() &&
      sets[0].size() != groups.size()) {
    return Refuse("GROUPING SETS, ROLLUP and CUBE are not allowed");
  }
  std::set<std::string> group_sql;
  if (groups.is_array()) {
    for (const auto& g : groups) {
      Expr ex;
      if (Str(g, "class") == "CONSTANT") {
        CR_ASSIGN(size_t pos, OutputFor(g, Clause::kGroupBy));
        ex = plan_.outputs[pos].expr;
      } else {
        const json& cn = Get(g, "column_names");
        bool alias_ref = false;
        if (Str(g, "class") == "COLUMN_REF" && cn.is_array() && cn.size() == 1 &&
            cn[0].is_string()) {
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
      if (group_sql.insert(RenderExpr(ex)).second) plan_.group_by.push_back(std::move(ex));
    }
  }

  // HAVING.
  if (!Get(node, "having").is_null()) {
    if (plan_.kind == QueryKind::kList) return Refuse("list rule: HAVING is not allowed");
    CR_ASSIGN(auto h, Check(Get(node, "having"), Clause::kHaving, false, 0));
    CR_TRY(CheckGrouped(h, group_sql, Clause::kHaving));
    plan_.having = std::move(h);
  }

  if (plan_.kind == QueryKind::kAggregation) {
    if (distinct) {
      return Refuse("SELECT DISTINCT is for list rules; aggregation queries use GROUP BY");
    }
    bool any_aggregate = false;
    for (const auto& o : plan_.outputs) {
      any_aggregate = any_aggregate || o.expr.HasAggregate();
      CR_TRY(CheckGrouped(o.expr, group_sql, Clause::kSelect));
    }
    if (!any_aggregate) {
      return Refuse("aggregation rule: the SELECT list needs at least one allowed aggregate");
    }
  } else {
    if (!distinct) return Refuse("list rule: only SELECT DISTINCT of list columns is allowed");
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
      if (group_sql.insert(RenderExpr(ex)).second) plan_.group_by.push_back(ex);
    }
    if (plan_.tables.size() < 2) {
      return Refuse("list rule: a list query must join at least two datasets");
    }
    bool owns = false;
    for (const auto& t : plan_.tables) owns = owns || t.ds->owner == ctx_.caller;
    if (!owns) {
      return Refuse("list rule: the join must include a dataset contributed by {}", ctx_.caller);
    }
  }

  // ORDER BY: only outputs (by position, alias or the same expression).
  if (order && order->is_array()) {
    for (const auto& o : *order) {
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
      } else if (Str(ex, "class") == "COLUMN_REF" && Get(ex, "column_names").size() == 1) {
        std::string n = Lower(Get(ex, "column_names")[0].get<std::string>());
        auto it = std::find(aliases_.begin(), aliases_.end(), n);
        if (it != aliases_.end()) {
          item.output = static_cast<size_t>(it - aliases_.begin());
          found = true;
        }
      }
      if (!found) {
        CR_ASSIGN(auto checked, Check(ex, Clause::kOrderBy, false, 0));
        std::string sql = RenderExpr(checked);
        for (size_t i = 0; i < plan_.outputs.size() && !found; ++i) {
          if (RenderExpr(plan_.outputs[i].expr) == sql) {
            item.output = i;
            found = true;
          }
        }
        if (!found) return Refuse("ORDER BY may only name output columns");
      }
      plan_.order.push_back(item);
    }
  }
  auto count_of = [&](const json* j, const char* what) -> Result<std::optional<int64_t>> {
    if (!j || j->is_null()) return std::optional<int64_t>();
    if (Str(*j, "class") != "CONSTANT") return Refuse("{} must be a number", what);
    const json& v = Get(Get(*j, "value"), "value");
    if (!v.is_number_integer() || v.get<int64_t>() < 0) {
      return Refuse("{} must be a non-negative whole number", what);
    }
    return std::optional<int64_t>(v.get<int64_t>());
  };
  CR_ASSIGN(plan_.limit, count_of(limit, "LIMIT"));
  CR_ASSIGN(plan_.offset, count_of(offset, "OFFSET"));

  for (const auto& t : plan_.tables) {
    plan_.min_distinct_units = std::max(plan_.min_distinct_units, spec_.MinDistinctUnits(*t.ds));
  }
  if (ctx_.tmpl) plan_.template_name = ctx_.tmpl->name;
  return std::move(plan_);
}

std::string JoinArgs(const std::vector<Expr>& args, size_t from = 0) {
  std::string out;
  for (size_t i = from; i < args.size(); ++i) {
    if (i > from) out += ", ";
    out += RenderExpr(args[i]);
  }
  return out;
}

}  // namespace

bool Expr::HasAggregate() const {
  if (kind == Kind::kAggregate) return true;
  for (const auto& a : args) {
    if (a.HasAggregate()) return true;
  }
  return false;
}

std::string RenderExpr(const Expr& e) {
  switch (e.kind) {
    case Expr::Kind::kColumn:
      return engine::QuoteIdent(fmt::format("t{}", e.table)) + "." + engine::QuoteIdent(e.column);
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
      return std::string(e.negated ? "TRY_CAST(" : "CAST(") + RenderExpr(e.args[0]) + " AS " +
             e.op + ")";
    case Expr::Kind::kCase: {
      std::string out = "(CASE";
      size_t pairs = (e.args.size() - (e.negated ? 1 : 0)) / 2;
      for (size_t i = 0; i < pairs; ++i) {
        out += " WHEN " + RenderExpr(e.args[2 * i]) + " THEN " + RenderExpr(e.args[2 * i + 1]);
      }
      if (e.negated) out += " ELSE " + RenderExpr(e.args.back());
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
    Checker c(db, ctx);
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
        return Fail(ErrorCode::BAD_INPUT, "template {} needs --param {}=<{}>", ctx.tmpl->name,
                    p.name, spec::Name(p.type));
      }
    }
  }
  CR_ASSIGN(auto node, ParseSelect(db, sql));
  return CheckStatement(db, node, ctx);
}

}  // namespace cr::query
