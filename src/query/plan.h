// The checked plan: the analyst's parsed SELECT reduced to datasets, joins,
// filters, groups, aggregates and outputs, each checked against the analysis
// rule of every dataset it touches. Only a plan that passed every check
// exists; the SQL the room runs is generated from it (rewrite.h), never taken
// from the analyst's text.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "engine/engine.h"
#include "spec/spec.h"

namespace cr::query {

// More datasets than this in one query are refused (as AWS Clean Rooms does).
inline constexpr size_t kMaxDatasets = 15;
// Deepest expression the checker walks; deeper ones are refused.
inline constexpr int kMaxExprDepth = 48;

// A checked expression. Every string in it that reaches generated SQL is either
// a fixed token chosen by the checker (function names from the allow-list,
// operators, type names) or text re-rendered by the checker (quoted literals,
// numbers it formatted itself): analyst text never passes through verbatim.
struct Expr {
  enum class Kind {
    kColumn,     // table, column
    kConstant,   // literal (safe SQL)
    kFunction,   // op(args...) from the allow-list
    kInfix,      // (a op b) or (op a)
    kCompare,    // (a op b)
    kAnd,
    kOr,
    kNot,
    kIn,         // args[0] [NOT] IN (args[1..])
    kBetween,    // args[0] [NOT] BETWEEN args[1] AND args[2]
    kIsNull,     // args[0] IS [NOT] NULL
    kCoalesce,
    kCast,       // CAST/TRY_CAST(args[0] AS op)
    kCase,       // args: when, then, when, then, ..., [else] (has_else)
    kAggregate,  // agg(args[0]), clamped to bounds when set
  };
  Kind kind = Kind::kConstant;
  std::string op;
  bool negated = false;   // kIn, kBetween, kIsNull: NOT IN, NOT BETWEEN, IS NOT NULL
  bool try_cast = false;  // kCast: TRY_CAST (NULL on failure) rather than CAST
  bool has_else = false;  // kCase: the last arg is the ELSE branch
  std::vector<Expr> args;
  int table = -1;        // kColumn
  std::string column;    // kColumn (spec spelling)
  spec::Role role = spec::Role::kDimension;
  std::string literal;   // kConstant
  spec::AggFn agg = spec::AggFn::kCount;
  std::optional<std::pair<double, double>> clamp;

  bool HasAggregate() const;
  // Structural equality, as DuckDB's ParsedExpression::Equals: same kind,
  // operator, flags, column, literal and aggregate, and equal arguments in
  // order. GROUP BY, HAVING and ORDER BY match expressions with it; fields
  // derived from the column (role, clamp) are compared too, which can only
  // make a match stricter.
  bool operator==(const Expr& other) const = default;
};

struct TableRef {
  std::string dataset;  // spec name
  std::string alias;    // as the analyst wrote it (lower case), for messages only
  const spec::Dataset* ds = nullptr;
  // Every unit of the dataset is in exactly one of its rows (the room checked
  // each part at ingest: room::DatasetEntry::unique_units). Set by the query
  // service from the catalogue, never by the checker.
  bool unique_units = false;
};

// FROM clause as a tree of inner joins; leaves are tables.
struct FromNode {
  int table = -1;  // leaf when >= 0
  int left = -1, right = -1;
  std::optional<Expr> condition;
};

struct OutputColumn {
  std::string name;  // as shown to receivers
  Expr expr;
};

struct OrderItem {
  size_t output = 0;
  bool descending = false;
  std::string nulls;  // "", "NULLS FIRST", "NULLS LAST"
};

enum class QueryKind { kAggregation, kList };

struct Plan {
  QueryKind kind = QueryKind::kAggregation;
  std::vector<TableRef> tables;
  std::vector<FromNode> from;  // from.back() is the root
  std::optional<Expr> where;
  std::vector<Expr> group_by;  // for list queries: the outputs (DISTINCT)
  std::vector<OutputColumn> outputs;
  std::optional<Expr> having;
  std::vector<OrderItem> order;
  std::optional<int64_t> limit;
  std::optional<int64_t> offset;
  // Strictest min_distinct_units over the touched datasets.
  int64_t min_distinct_units = 0;
  // For each table, the index of its privacy-unit class: tables whose unit
  // columns are equated by an AND-only inner join share a class (their distinct
  // counts are equal on every row, so one count serves both).
  std::vector<int> unit_class;
  // Difference checks (diffcheck/unit_sets.h): the generated SQL also keeps
  // each group's distinct units, which the executor reads into unit sets.
  bool unit_sets = false;
  std::string template_name;  // set for template runs
  // A benchmark answer over a pooled dataset (query --benchmark, a template's
  // benchmark: true): each contributor's own figure beside its peers'.
  bool benchmark = false;

  // Distinct dataset names touched, in first-use order.
  std::vector<std::string> Datasets() const;
  // Per dataset, every column the generated SQL reads (the privacy unit
  // column included): the only columns the room decrypts and mounts.
  std::map<std::string, std::set<std::string>> Columns() const;
};

// Who asks, and for a template run, which template with which raw parameters.
struct CheckContext {
  const spec::Spec* spec = nullptr;
  std::string caller;  // party name
  const spec::Template* tmpl = nullptr;
  std::map<std::string, std::string> params;
  // Differential privacy: the plan will be answered with noise (dp.h), which
  // also admits COUNT(*) (bounded per unit there).
  bool dp = false;
};

// Parses `sql` (DuckDB's parser, through `db`) and checks it. QUERY_REFUSED
// names the rule and the offending column or construct; SQL_INVALID for text
// that does not parse; BAD_INPUT for missing, unknown or mistyped template
// parameters. Nothing is executed against data.
Result<Plan> BuildPlan(engine::Database& db, std::string_view sql, const CheckContext& ctx);

// Checks an already parsed statement node (from ParseSelect). `db` is used only
// to validate typed template parameters (date/timestamp casts of constants).
Result<Plan> CheckStatement(engine::Database& db, const nlohmann::json& node,
                            const CheckContext& ctx);

}  // namespace cr::query
