// Expressions: column references and their roles, aggregates against the
// rule's grants, allow-listed functions and operators, casts, CASE, literals
// re-rendered by us, and template parameters bound as typed constants.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <map>

#include "query/checker.h"
#include "query/functions.h"
#include "query/rewrite.h"
#include "common/strings.h"

namespace cr::query::internal {

const json& Get(const json& j, const char* key) {
  static const json kNullJson;
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

std::string Lower(std::string_view s) { return AsciiLower(s); }

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

namespace {

std::string AllowedList(const std::vector<spec::AggFn>& fns) {
  std::vector<std::string> names;
  for (auto f : fns) names.emplace_back(spec::Name(f));
  return names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "));
}

bool Flag(const json& e, const char* key) {
  const json& v = Get(e, key);
  return v.is_boolean() && v.get<bool>();
}

// A checked reference to column `col` of the table at index `t` in scope.
Expr ColumnExpr(int t, const spec::Column& col) {
  Expr x;
  x.kind = Expr::Kind::kColumn;
  x.table = t;
  x.column = col.name;
  x.role = col.role;
  return x;
}

}  // namespace

Result<Expr> Checker::CheckConstant(const json& e) {
  const json& v = Get(e, "value");
  Expr x;
  x.kind = Expr::Kind::kConstant;
  if (Flag(v, "is_null")) {
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
    return Fail(ErrorCode::BAD_INPUT, "template {} needs the parameter {} (a {})", ctx_.tmpl->name, name,
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
  return ColumnExpr(t, *col);
}

Result<Expr> Checker::CheckAggregate(const json& e, Clause clause, bool in_aggregate) {
  std::string name = Lower(Str(e, "function_name"));
  bool distinct = Flag(e, "distinct");
  if (name == "count_star" && !ctx_.dp) {
    // A row count grows with every join row; the privacy units do not.
    return Refuse("COUNT(*) is not allowed: count a column the rule allows, e.g. {}",
                  UnitColumnHint());
  }
  if (clause == Clause::kWhere || clause == Clause::kGroupBy) {
    return Refuse("aggregates are not allowed in {}", ClauseName(clause));
  }
  if (in_aggregate) return Refuse("nested aggregates are not allowed");
  if (plan_.kind == QueryKind::kList) return Refuse("list rule: aggregates are not allowed");
  if (name == "count_star") {
    // Under differential privacy a row count is safe: the bounding SQL counts
    // at most max_contributions_per_group rows of each unit in each group.
    if (!Get(e, "filter").is_null()) return Refuse("FILTER on aggregates is not allowed");
    Expr x;
    x.kind = Expr::Kind::kAggregate;
    x.agg = spec::AggFn::kCount;
    return x;
  }
  if (!Get(e, "filter").is_null()) return Refuse("FILTER on aggregates is not allowed");
  const json& ob = Get(Get(e, "order_bys"), "orders");
  if (ob.is_array() && !ob.empty()) return Refuse("ORDER BY inside aggregates is not allowed");
  if (Flag(e, "export_state")) return Refuse("EXPORT_STATE is not allowed");
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
  Expr arg = ColumnExpr(t, *col);
  Expr x;
  x.kind = Expr::Kind::kAggregate;
  x.agg = *fn;
  if (col->role == spec::Role::kMetric || col->role == spec::Role::kSensitive) x.clamp = col->bounds;
  x.args.push_back(std::move(arg));
  return x;
}

Status Checker::CheckChildren(Expr* x, const json& children, Clause clause, bool in_aggregate,
                              int depth) {
  if (!children.is_array()) return Refuse("unreadable expression");
  for (const auto& c : children) {
    CR_ASSIGN(auto s, Check(c, clause, in_aggregate, depth + 1));
    x->args.push_back(std::move(s));
  }
  return Ok();
}

Result<Expr> Checker::CheckFunction(const json& e, Clause clause, bool in_aggregate, int depth) {
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
  if (Flag(e, "distinct")) return Refuse("DISTINCT is not allowed in {}", name);
  if (!Get(e, "filter").is_null()) return Refuse("FILTER is not allowed in {}", name);
  const json& ch = Get(e, "children");
  if (!ch.is_array() || static_cast<int>(ch.size()) < fn->min_args ||
      static_cast<int>(ch.size()) > fn->max_args) {
    return Refuse("function {} takes {} to {} arguments", name, fn->min_args, fn->max_args);
  }
  Expr x;
  x.kind = fn->infix ? Expr::Kind::kInfix : Expr::Kind::kFunction;
  x.op = std::string(fn->name);
  CR_TRY(CheckChildren(&x, ch, clause, in_aggregate, depth));
  return x;
}

Result<Expr> Checker::CheckOperator(const json& e, Clause clause, bool in_aggregate, int depth) {
  std::string type = Str(e, "type");
  Expr x;
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
  CR_TRY(CheckChildren(&x, Get(e, "children"), clause, in_aggregate, depth));
  size_t need = x.kind == Expr::Kind::kIn ? 2 : 1;
  if (x.args.size() < need ||
      ((x.kind == Expr::Kind::kNot || x.kind == Expr::Kind::kIsNull) && x.args.size() != 1)) {
    return Refuse("unreadable expression");
  }
  return x;
}

Result<Expr> Checker::CheckCast(const json& e, Clause clause, bool in_aggregate, int depth) {
  const json& ct = Get(e, "cast_type");
  std::string id = Str(ct, "id");
  if (!AllowedCastType(id)) return Refuse("CAST to {} is not allowed", id.empty() ? "?" : id);
  Expr x;
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
  x.try_cast = Flag(e, "try_cast");
  CR_ASSIGN(auto c, Check(Get(e, "child"), clause, in_aggregate, depth + 1));
  x.args.push_back(std::move(c));
  return x;
}

Result<Expr> Checker::CheckCase(const json& e, Clause clause, bool in_aggregate, int depth) {
  Expr x;
  x.kind = Expr::Kind::kCase;
  const json& checks = Get(e, "case_checks");
  if (!checks.is_array() || checks.empty()) return Refuse("unreadable CASE");
  for (const auto& c : checks) {
    CR_ASSIGN(auto w, Check(Get(c, "when_expr"), clause, in_aggregate, depth + 1));
    CR_ASSIGN(auto t, Check(Get(c, "then_expr"), clause, in_aggregate, depth + 1));
    x.args.push_back(std::move(w));
    x.args.push_back(std::move(t));
  }
  if (!Get(e, "else_expr").is_null()) {
    CR_ASSIGN(auto el, Check(Get(e, "else_expr"), clause, in_aggregate, depth + 1));
    x.args.push_back(std::move(el));
    x.has_else = true;
  }
  return x;
}

Result<Expr> Checker::Check(const json& e, Clause clause, bool in_aggregate, int depth) {
  if (depth > kMaxExprDepth) return Refuse("expression nested too deeply (over {} levels)", kMaxExprDepth);
  std::string cls = Str(e, "class"), type = Str(e, "type");
  if (cls == "COLUMN_REF") return CheckColumn(e, clause);
  if (cls == "CONSTANT") return CheckConstant(e);
  if (cls == "PARAMETER") return BindParameter(e);
  if (cls == "FUNCTION") return CheckFunction(e, clause, in_aggregate, depth);
  if (cls == "OPERATOR") return CheckOperator(e, clause, in_aggregate, depth);
  if (cls == "CAST") return CheckCast(e, clause, in_aggregate, depth);
  if (cls == "CASE") return CheckCase(e, clause, in_aggregate, depth);
  Expr x;
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
    CR_ASSIGN(auto l, Check(Get(e, "left"), clause, in_aggregate, depth + 1));
    CR_ASSIGN(auto r, Check(Get(e, "right"), clause, in_aggregate, depth + 1));
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
    CR_TRY(CheckChildren(&x, Get(e, "children"), clause, in_aggregate, depth));
    if (x.args.size() < 2) return Refuse("unreadable expression");
    return x;
  }
  if (cls == "BETWEEN") {
    x.kind = Expr::Kind::kBetween;
    x.negated = type == "COMPARE_NOT_BETWEEN";
    for (const char* k : {"input", "lower", "upper"}) {
      CR_ASSIGN(auto s, Check(Get(e, k), clause, in_aggregate, depth + 1));
      x.args.push_back(std::move(s));
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

}  // namespace cr::query::internal
