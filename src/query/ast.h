// The front of the query pipeline: DuckDB's own parser turns SQL text into a
// syntax tree (json_serialize_sql), so what we check is exactly what DuckDB
// would have run. Nothing here executes the SQL.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "engine/engine.h"

namespace cr::query {

// Longest SQL text accepted; longer text is refused before parsing.
inline constexpr size_t kMaxSqlBytes = 64 * 1024;

// Where a byte offset of the SQL falls: 1-based line and column (in
// characters), the text of that line and the token starting there.
struct SourcePosition {
  size_t line = 1;
  size_t column = 1;
  std::string_view line_text;
  std::string_view token;
};
SourcePosition Locate(std::string_view sql, size_t offset);

// Longest token quoted in a syntax error, and the characters of context kept
// before it on a long line.
inline constexpr size_t kMaxTokenShown = 40;
inline constexpr size_t kContextChars = 60;

// "syntax error at line L, column C, at "TOKEN"" followed by the SQL line
// and a caret line under the token. The SQL is the analyst's own text shown
// back to them; SQL_INVALID reasons are never written to the audit log
// (service.cc), so its literals go no further.
std::string DescribeSyntaxError(std::string_view sql, size_t offset);

// Parses `sql` with `db`'s parser and returns the one statement's "node"
// object. SQL_INVALID for syntax errors (with line, column and token, see
// DescribeSyntaxError); QUERY_REFUSED for text that parses
// but is not exactly one SELECT statement, for SQL over kMaxSqlBytes, and for
// expressions nested beyond DuckDB's depth limit. Only syntax errors quote the
// SQL (the line in error, see above).
Result<nlohmann::json> ParseSelect(engine::Database& db, std::string_view sql);

}  // namespace cr::query
