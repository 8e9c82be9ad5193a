#include "query/ast.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>

#include <fmt/format.h>

namespace cr::query {
namespace {

bool IdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         (static_cast<unsigned char>(c) & 0x80);
}

// Columns count characters, not bytes: UTF-8 continuation bytes add none.
size_t Width(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// The token starting at `offset`: a quoted string or identifier up to its
// closing quote (or the end of the line), a word, or one character.
std::string_view TokenAt(std::string_view line, size_t offset) {
  if (offset >= line.size()) return {};
  char c = line[offset];
  size_t end = offset + 1;
  if (c == '\'' || c == '"') {
    while (end < line.size() && line[end] != c) ++end;
    if (end < line.size()) ++end;
  } else if (IdentChar(c)) {
    while (end < line.size() && IdentChar(line[end])) ++end;
  }
  return line.substr(offset, end - offset);
}

}  // namespace

SourcePosition Locate(std::string_view sql, size_t offset) {
  offset = std::min(offset, sql.size());
  SourcePosition p;
  size_t start = 0;
  for (size_t i = 0; i < offset; ++i) {
    if (sql[i] == '\n') {
      ++p.line;
      start = i + 1;
    }
  }
  size_t end = sql.find('\n', start);
  if (end == std::string_view::npos) end = sql.size();
  p.line_text = sql.substr(start, end - start);
  if (!p.line_text.empty() && p.line_text.back() == '\r') p.line_text.remove_suffix(1);
  p.column = 1 + Width(sql.substr(start, offset - start));
  p.token = TokenAt(p.line_text, offset - start);
  return p;
}

std::string DescribeSyntaxError(std::string_view sql, size_t offset) {
  SourcePosition p = Locate(sql, offset);
  std::string what;
  if (p.token.empty()) {
    what = offset >= sql.size() ? "at the end of the SQL" : "at the end of the line";
  } else if ((p.token[0] == '\'' || p.token[0] == '"') &&
             sql.find(p.token[0], offset + 1) == std::string_view::npos) {
    // A quoted string may run over several lines; only one that never
    // closes is unterminated.
    what = "at an unterminated quoted string";
  } else {
    std::string shown(p.token.substr(0, kMaxTokenShown));
    if (p.token.size() > kMaxTokenShown) shown += "...";
    what = fmt::format("at \"{}\"", shown);
  }
  // A long line is shown as a window around the error, so the caret stays
  // under the token on a terminal.
  std::string_view text = p.line_text;
  size_t col = p.column;  // 1-based, in characters
  std::string prefix;
  if (col > kContextChars) {
    size_t skip = 0, chars = 0;
    while (skip < text.size() && chars < col - kContextChars / 2) {
      ++skip;
      while (skip < text.size() && (static_cast<unsigned char>(text[skip]) & 0xC0) == 0x80) ++skip;
      ++chars;
    }
    text.remove_prefix(skip);
    col -= chars;
    prefix = "...";
  }
  std::string suffix;
  for (size_t i = 0, chars = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) continue;
    if (++chars > 2 * kContextChars + kMaxTokenShown) {
      text = text.substr(0, i);
      suffix = "...";
      break;
    }
  }
  std::string shown_line = prefix + std::string(text) + suffix;
  size_t caret_col = col + prefix.size();
  std::string caret;
  // Tabs are copied so the caret lines up however the terminal expands them.
  for (size_t i = 0, c = 1; i < shown_line.size() && c < caret_col; ++i) {
    if ((static_cast<unsigned char>(shown_line[i]) & 0xC0) == 0x80) continue;
    caret += shown_line[i] == '\t' ? '\t' : ' ';
    ++c;
  }
  size_t len = std::max<size_t>(1, std::min(Width(p.token), kMaxTokenShown));
  caret += std::string(len, '^');
  return fmt::format("syntax error at line {}, column {}, {}\n  {}\n  {}", p.line, p.column, what,
                     shown_line, caret);
}

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
      // DuckDB's message quotes the text near the error in its own words;
      // we keep only the byte offset and describe it ourselves.
      const auto& pos = tree.contains("position") ? tree["position"] : nlohmann::json();
      size_t offset = sql.size();
      if (pos.is_string()) {
        const std::string& p = pos.get_ref<const std::string&>();
        size_t v = 0;
        auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
        if (ec == std::errc() && ptr == p.data() + p.size()) offset = std::min(v, sql.size());
      } else if (pos.is_number_unsigned()) {
        offset = std::min(pos.get<size_t>(), sql.size());
      }
      return std::unexpected(Error{ErrorCode::SQL_INVALID, DescribeSyntaxError(sql, offset)});
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
