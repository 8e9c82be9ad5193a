// The front of the query pipeline: DuckDB's own parser turns SQL text into a
// syntax tree (json_serialize_sql), so what we check is exactly what DuckDB
// would have run. Nothing here executes the SQL.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "engine/engine.h"

namespace cr::query {

// Longest SQL text accepted; longer text is refused before parsing.
inline constexpr size_t kMaxSqlBytes = 64 * 1024;

// Parses `sql` with `db`'s parser and returns the one statement's "node"
// object. SQL_INVALID for syntax errors; QUERY_REFUSED for text that parses
// but is not exactly one SELECT statement, for SQL over kMaxSqlBytes, and for
// expressions nested beyond DuckDB's depth limit. The messages never quote the
// SQL text (an analyst's literals can be guesses at someone's data).
Result<nlohmann::json> ParseSelect(engine::Database& db, std::string_view sql);

}  // namespace cr::query
