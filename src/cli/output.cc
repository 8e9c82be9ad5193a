#include "cli/output.h"

#include <cstdio>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace cr::cli {

Status CheckFormat(std::string_view command, std::string_view format,
                   const std::vector<std::string>& supported) {
  for (const auto& f : supported) {
    if (f == format) return Ok();
  }
  std::string list;
  for (size_t i = 0; i < supported.size(); ++i) {
    if (i) list += i + 1 == supported.size() ? " or " : ", ";
    list += supported[i];
  }
  return Fail(ErrorCode::USAGE, "{} prints --format {}, not {}", command, list, format);
}

void PrintJson(const nlohmann::json& doc) { fmt::print("{}\n", doc.dump()); }

std::string CsvField(std::string_view s) {
  if (s.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

void PrintCsv(const std::vector<std::string>& header,
              const std::vector<std::vector<std::string>>& rows) {
  auto line = [](const std::vector<std::string>& fields) {
    std::string out;
    for (size_t i = 0; i < fields.size(); ++i) out += (i ? "," : "") + CsvField(fields[i]);
    return out + "\n";
  };
  std::string out = line(header);
  for (const auto& r : rows) out += line(r);
  fmt::print("{}", out);
}

std::string CellText(const nlohmann::json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string s;
    for (const auto& e : v) s += (s.empty() ? "" : ";") + CellText(e);
    return s;
  }
  return v.dump();
}

std::string Counted(int64_t n, std::string_view singular, std::string_view plural) {
  if (n == 1) return fmt::format("1 {}", singular);
  if (plural.empty()) return fmt::format("{} {}s", n, singular);
  return fmt::format("{} {}", n, plural);
}

std::string WithheldClause(const std::optional<int64_t>& withheld) {
  if (!withheld || *withheld <= 0) return "";
  return fmt::format("; {} withheld below the threshold", Counted(*withheld, "row"));
}

void PrintError(const Error& e, bool json) {
  std::fflush(stdout);
  if (json) {
    nlohmann::ordered_json j;
    j["error"] = CodeName(e.code);
    j["message"] = e.message;
    j["exit"] = ExitCode(e.code);
    fmt::print(stderr, "{}\n", j.dump());
  } else {
    fmt::print(stderr, "{}\n", e.ToString());
  }
}

}  // namespace cr::cli
