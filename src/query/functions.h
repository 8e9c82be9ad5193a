// The allow-lists of the query checker: scalar functions and operators an
// analyst may use (modelled on AWS Clean Rooms' list, in DuckDB spelling), and
// the aggregate functions a rule can grant.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spec/spec.h"

namespace cr::query {

struct ScalarFunction {
  std::string_view name;      // canonical DuckDB name rendered into generated SQL
  int min_args;
  int max_args;
  bool infix;                 // rendered as (a OP b) / (OP a)
};

// Looks up `name` (any case, aliases such as ceiling/ucase/substr accepted) on
// the scalar allow-list; nullptr when it is not allowed.
const ScalarFunction* FindScalar(std::string_view name);

// Maps a DuckDB aggregate spelling to the spec's AggFn ("count" with DISTINCT is
// count_distinct). nullopt for every other aggregate (min, max, list, ...).
std::optional<spec::AggFn> FindAggregate(std::string_view name, bool distinct);

// True for every name DuckDB knows as an aggregate we recognise, allowed or
// not, so a refusal can say "aggregate X is not allowed" instead of "unknown".
bool LooksLikeAggregate(std::string_view name);

// The DuckDB SQL of an allowed aggregate (e.g. "count(DISTINCT ", closed by the caller).
std::string_view AggregateSqlName(spec::AggFn fn);

// Cast target types an analyst may use (DuckDB type ids, upper case).
bool AllowedCastType(std::string_view type_id);

// The documented allow-list, for docs and error messages.
std::vector<std::string> ScalarAllowList();

}  // namespace cr::query
