// Shared printing for every command: the --format check, one JSON document or
// CSV table on stdout, counted nouns, and errors as a line or a JSON object.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace cr::cli {

// USAGE unless `format` is one of `supported` (a command never ignores a
// format it cannot print). The message names the formats the command has.
Status CheckFormat(std::string_view command, std::string_view format,
                   const std::vector<std::string>& supported);

// The whole of stdout for --format json: one document, one line.
void PrintJson(const nlohmann::json& doc);

// RFC 4180 field: quoted only when it holds a comma, quote or line break.
std::string CsvField(std::string_view s);
// A header line and the rows, each field through CsvField.
void PrintCsv(const std::vector<std::string>& header,
              const std::vector<std::vector<std::string>>& rows);

// A JSON value as a cell: strings unquoted, arrays joined by ';', null empty.
std::string CellText(const nlohmann::json& v);

// "1 row", "2 rows", "0 rows"; `plural` defaults to singular + "s".
std::string Counted(int64_t n, std::string_view singular, std::string_view plural = {});

// "; 3 rows withheld below the threshold" when a known count above zero was
// withheld, empty otherwise: no count, no phrase (an unreleasable count is null).
std::string WithheldClause(const std::optional<int64_t>& withheld);

// The error report on stderr: `cleanroom: error[CODE]: message`, or with
// `json` one object {"error": CODE, "message": ..., "exit": N}.
void PrintError(const Error& e, bool json);

}  // namespace cr::cli
