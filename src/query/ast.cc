#include "query/ast.h"

#include <string>

namespace cr::query {

Result<nlohmann::json> ParseSelect(engine::Database& db, std::string_view sql) {
  if (sql.size() > kMaxSqlBytes) {
    return Fail(ErrorCode::QUERY_REFUSED, "the SQL is longer than {} bytes", kMaxSqlBytes);
  }
  if (sql.find('\0') != std::string_view::npos) {
    return Fail(ErrorCode::SQL_INVALID, "the SQL contains a NUL byte");
  }
  // The text reaches DuckDB only as a quoted string literal argument: it is
  // parsed, never executed.
  CR_ASSIGN(auto r, db.Query("SELECT json_serialize_sql(" + engine::QuoteLiteral(sql) + ")",
                             ErrorCode::SQL_INVALID, /*with_detail=*/false));
  auto text = r.Scalar();
  if (!text) return Fail(ErrorCode::SQL_INVALID, "the SQL could not be parsed");
  nlohmann::json tree = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (tree.is_discarded() || !tree.is_object()) {
    return Fail(ErrorCode::INTERNAL, "the parser returned an unreadable tree");
  }
  if (tree.value("error", false)) {
    std::string type = tree.value("error_type", "");
    std::string msg = tree.value("error_message", "");
    if (msg.find("expression depth") != std::string::npos) {
      return Fail(ErrorCode::QUERY_REFUSED, "the SQL nests expressions too deeply");
    }
    if (type == "parser") {
      // DuckDB's message quotes the text near the error; keep only the position.
      std::string pos = tree.contains("position") && tree["position"].is_string()
                            ? tree["position"].get<std::string>()
                            : "";
      return Fail(ErrorCode::SQL_INVALID, "syntax error{}",
                  pos.empty() ? std::string() : " at character " + pos);
    }
    if (msg.find("Only SELECT") != std::string::npos) {
      return Fail(ErrorCode::QUERY_REFUSED, "only a single SELECT statement is allowed");
    }
    return Fail(ErrorCode::QUERY_REFUSED, "the SQL uses a construct the room does not run ({})",
                type);
  }
  const auto& stmts = tree["statements"];
  if (!stmts.is_array() || stmts.empty()) {
    return Fail(ErrorCode::SQL_INVALID, "the SQL holds no statement");
  }
  if (stmts.size() != 1) {
    return Fail(ErrorCode::QUERY_REFUSED,
                "only a single SELECT statement is allowed ({} statements given)", stmts.size());
  }
  if (!stmts[0].is_object() || !stmts[0].contains("node") || !stmts[0]["node"].is_object()) {
    return Fail(ErrorCode::QUERY_REFUSED, "only a single SELECT statement is allowed");
  }
  return stmts[0]["node"];
}

}  // namespace cr::query
