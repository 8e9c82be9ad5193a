#include "ingest/prepare.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/files.h"
#include "common/progress.h"
#include "crypto/crypto.h"
#include "engine/engine.h"
#include "package/package.h"
#include "ingest/pseudonym.h"
#include "spec/spec.h"
#include "common/strings.h"

namespace cr::ingest {
namespace {

using engine::QuoteIdent;
using engine::QuoteLiteral;

std::string Lower(const std::string& s) { return AsciiLower(s); }

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && Lower(s.substr(s.size() - suffix.size())) == suffix;
}

enum class InputKind { kCsv, kParquet, kJson };

Result<InputKind> KindOf(const std::string& path) {
  if (EndsWith(path, ".csv") || EndsWith(path, ".tsv") || EndsWith(path, ".txt") ||
      EndsWith(path, ".csv.gz")) {
    return InputKind::kCsv;
  }
  if (EndsWith(path, ".parquet")) return InputKind::kParquet;
  if (EndsWith(path, ".json") || EndsWith(path, ".jsonl") || EndsWith(path, ".ndjson")) {
    return InputKind::kJson;
  }
  return Fail(ErrorCode::BAD_INPUT,
              "cannot tell the format of {}: use .csv, .tsv, .parquet, .json, .jsonl or .ndjson",
              path);
}

std::string SourceSql(InputKind kind, const std::string& path) {
  switch (kind) {
    case InputKind::kCsv:
      // All text: every cast is ours, so a bad value is an error with its row,
      // never a column silently sniffed as text or a value turned into NULL.
      return fmt::format("read_csv({}, header = true, all_varchar = true)", QuoteLiteral(path));
    case InputKind::kParquet:
      return fmt::format("read_parquet({})", QuoteLiteral(path));
    case InputKind::kJson:
      return fmt::format("read_json({}, format = 'newline_delimited')", QuoteLiteral(path));
  }
  return "";
}

std::string FunctionName(const spec::Column& c) { return "__cr_pseudonym_" + c.name; }

// ----- Strict casts ----------------------------------------------------------------
//
// DuckDB's own casts are lenient where a clean room must not be: '3.5' becomes
// the integer 4, '1e400' the double inf, '2026-10-01 10:00' the date
// 2026-10-01, '10:00+05:30' loses its offset, 'yes' is true. Each declared
// column therefore gets a predicate saying when a source value does not fit
// its type exactly, and the conversion raises error() on such a row: the
// check runs inside the same parallel pipeline, and DiagnoseCast finds the row
// afterwards. The rules are in docs/package-format.md.
//
// Three steps, so that a value is parsed once and then both checked and
// used: __cr_s<i> (the source), __cr_v<i> (the converted value, NULL where it
// does not convert), then the check.

struct Conversion {
  std::string source;  // over the input's columns
  std::string value;   // over __cr_s<i>
  std::string bad;     // over __cr_s<i> and __cr_v<i>; "" when nothing can fail
};

std::string S(size_t i) { return fmt::format("__cr_s{}", i); }
std::string V(size_t i) { return fmt::format("__cr_v{}", i); }

bool IsIntegerType(std::string_view t) {
  for (std::string_view x : {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                             "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}) {
    if (t == x) return true;
  }
  return false;
}

// Source types whose values can be compared with a cast of themselves.
bool IsScalarType(std::string_view t) {
  return IsIntegerType(t) || t == "FLOAT" || t == "DOUBLE" || t.starts_with("DECIMAL") ||
         t == "BOOLEAN" || t == "DATE" || t.starts_with("TIMESTAMP");
}

constexpr std::string_view kIntegerPattern = R"(\s*[+-]?[0-9_]+(\.0*)?\s*)";
// strptime matches the whole text (surrounding blanks aside) and knows the
// calendar; most common spelling first. It also reads 'epoch' and 'infinity'
// as 1900-01-01 and '26-10-01' as the year 26, hence the four-digit year first.
constexpr std::string_view kYearPrefix = R"(^\s*[0-9]{4}-)";
constexpr std::string_view kTimestampFormats =
    "['%Y-%m-%d %H:%M:%S', '%Y-%m-%d %H:%M:%S.%f', '%Y-%m-%d %H:%M', '%Y-%m-%dT%H:%M:%S', "
    "'%Y-%m-%dT%H:%M:%S.%f', '%Y-%m-%dT%H:%M', '%Y-%m-%d']";

// The rules for text, as value and check over source `s` and value `v`.
Conversion FromText(spec::ColumnType type, std::string source, const std::string& s,
                    const std::string& v) {
  std::string value, bad;
  switch (type) {
    case spec::ColumnType::kInteger:
      value = fmt::format("TRY_CAST({} AS BIGINT)", s);
      bad = fmt::format("{} IS NULL OR NOT regexp_full_match({}, {})", v, s,
                        QuoteLiteral(kIntegerPattern));
      break;
    case spec::ColumnType::kDouble:
      value = fmt::format("TRY_CAST({} AS DOUBLE)", s);
      bad = fmt::format("NOT coalesce(isfinite({}), false)", v);
      break;
    case spec::ColumnType::kBoolean:
      value = fmt::format("TRY_CAST(trim({}) AS BOOLEAN)", s);
      bad = fmt::format("lower(trim({})) NOT IN ('true', 'false', 't', 'f', '1', '0')", s);
      break;
    case spec::ColumnType::kDate:
      value = fmt::format("CAST(try_strptime({}, '%Y-%m-%d') AS DATE)", s);
      bad = fmt::format("{} IS NULL OR NOT regexp_matches({}, {})", v, s,
                        QuoteLiteral(kYearPrefix));
      break;
    case spec::ColumnType::kTimestamp:
      value = fmt::format("try_strptime({}, {})", s, kTimestampFormats);
      bad = fmt::format("{} IS NULL OR NOT regexp_matches({}, {})", v, s,
                        QuoteLiteral(kYearPrefix));
      break;
    case spec::ColumnType::kString:
      return {std::move(source), fmt::format("CAST({} AS VARCHAR)", s), ""};
  }
  return {std::move(source), value, fmt::format("{} IS NOT NULL AND ({})", s, bad)};
}

// Column `c` (the i-th declared) from input column `src` of DuckDB type `src_type`.
Conversion Convert(const spec::Column& c, size_t i, const std::string& src,
                   const std::string& src_type) {
  std::string in = QuoteIdent(src), s = S(i), v = V(i);
  if (c.role == spec::Role::kJoinKey) {
    return {in, fmt::format("{}(CAST({} AS VARCHAR))", FunctionName(c), s), ""};
  }
  if (c.type == spec::ColumnType::kString) {
    switch (c.normalize) {
      case spec::Normalize::kEmail:
        return {in, fmt::format("NULLIF(lower(trim(CAST({} AS VARCHAR))), '')", s), ""};
      case spec::Normalize::kPhone:
        return {
            in,
            fmt::format("NULLIF(regexp_replace(CAST({} AS VARCHAR), '[^0-9]', '', 'g'), '')", s),
            ""};
      case spec::Normalize::kText:
        return {in, fmt::format("trim(CAST({} AS VARCHAR))", s), ""};
      case spec::Normalize::kNone:
        return {in, fmt::format("CAST({} AS VARCHAR)", s), ""};
    }
  }
  std::string_view to = spec::DuckDbType(c.type);
  bool has_infinity = c.type == spec::ColumnType::kDouble || c.type == spec::ColumnType::kDate ||
                      c.type == spec::ColumnType::kTimestamp;
  if (src_type == "VARCHAR") return FromText(c.type, in, s, v);
  if (src_type == "JSON") {
    return FromText(c.type, fmt::format("json_extract_string({}, '$')", in), s, v);
  }
  if (src_type == to) {
    // Already the type; only infinities and NaN do not count as values.
    return {in, s, has_infinity ? fmt::format("{} IS NOT NULL AND NOT isfinite({})", s, s) : ""};
  }
  if (!IsScalarType(src_type)) {
    return {in, fmt::format("CAST(NULL AS {})", to), fmt::format("{} IS NOT NULL", s)};
  }
  // Another scalar type fits when it survives the way there and back: 3.5 does
  // not (integer 4), a timestamp with a time of day does not (a date), nor does
  // 2^53 + 1 (a double).
  std::string bad = fmt::format("{} IS NULL OR CAST({} AS {}) <> {}", v, v, src_type, s);
  if (has_infinity) bad += fmt::format(" OR NOT isfinite({})", v);
  return {in, fmt::format("TRY_CAST({} AS {})", s, to),
          fmt::format("{} IS NOT NULL AND ({})", s, bad)};
}

// SELECT ... FROM `relation` with each conversion's source and value, in two
// steps (and the input's row number first when `numbered`).
std::string Converted(const std::vector<Conversion>& conv, const std::string& relation,
                      bool numbered) {
  std::string sources = numbered ? "row_number() OVER () AS __cr_rn" : "";
  std::string values = numbered ? "__cr_rn" : "";
  for (size_t i = 0; i < conv.size(); ++i) {
    std::string sep = sources.empty() ? "" : ", ";
    sources += fmt::format("{}{} AS {}", sep, conv[i].source, S(i));
    values += fmt::format("{}{}, {} AS {}", sep, S(i), conv[i].value, V(i));
  }
  return fmt::format("SELECT {} FROM (SELECT {} FROM {})", values, sources, relation);
}

// The rows to write: each value, or error() where it does not fit.
std::string CheckedSelect(const spec::Dataset& ds, const std::vector<Conversion>& conv,
                          const std::string& relation) {
  std::string select;
  for (size_t i = 0; i < ds.columns.size(); ++i) {
    if (i) select += ", ";
    if (conv[i].bad.empty()) {
      select += V(i);
    } else {
      select += fmt::format(
          "CASE WHEN {} THEN error('cleanroom: a value does not fit its "
          "column') ELSE {} END",
          conv[i].bad, V(i));
    }
    select += " AS " + QuoteIdent(ds.columns[i].name);
  }
  return fmt::format("SELECT {} FROM ({})", select, Converted(conv, relation, false));
}

std::string_view Expected(spec::ColumnType t) {
  switch (t) {
    case spec::ColumnType::kInteger:
      return "a whole number within 64 bits, no fraction or exponent";
    case spec::ColumnType::kDouble:
      return "a finite number";
    case spec::ColumnType::kBoolean:
      return "true/false, t/f or 1/0";
    case spec::ColumnType::kDate:
      return "YYYY-MM-DD";
    case spec::ColumnType::kTimestamp:
      return "YYYY-MM-DD[ HH:MM[:SS[.ffffff]]], no time zone";
    case spec::ColumnType::kString:
      break;
  }
  return "text";
}

// ----- CSV shape -------------------------------------------------------------------

char CsvDelimiter(const std::string& path, std::string_view header) {
  if (EndsWith(path, ".tsv")) return '\t';
  if (EndsWith(path, ".txt")) {
    // As the sniffer would, roughly: the likeliest separator of the header.
    char best = ',';
    size_t most = 0;
    for (char d : {',', '\t', ';', '|'}) {
      size_t n = static_cast<size_t>(std::count(header.begin(), header.end(), d));
      if (n > most) best = d, most = n;
    }
    return best;
  }
  return ',';
}

// Walks the records of a CSV file as RFC 4180 reads them (quotes, "" inside
// quotes, newlines inside quotes; blank lines skipped as DuckDB skips them),
// calling visit(record, first_line, fields) for each; record 0 is the header.
// visit returns false to stop. Only messages use it: it runs after a failure.
template <typename Visit>
Status WalkCsv(const std::string& path, Visit visit) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Fail(ErrorCode::FILE_UNREADABLE, "cannot read {}", path);
  std::string first;
  {
    int ch;
    while ((ch = std::fgetc(f)) != EOF && ch != '\n') first.push_back(static_cast<char>(ch));
    std::rewind(f);
  }
  const char delim = CsvDelimiter(path, first);
  int64_t line = 1, record = 0, start_line = 1;
  size_t fields = 1, field_chars = 0, record_chars = 0;
  bool quoted = false, after_quote = false, go = true;
  auto end_record = [&] {
    if (record_chars > 0) go = visit(record++, start_line, fields);
    fields = 1, field_chars = 0, record_chars = 0;
  };
  std::vector<char> buf(1 << 20);
  size_t n;
  while (go && (n = std::fread(buf.data(), 1, buf.size(), f)) > 0) {
    for (size_t i = 0; go && i < n; ++i) {
      char c = buf[i];
      if (record_chars == 0 && c != '\n' && c != '\r') start_line = line;
      if (c == '\n') ++line;
      if (quoted) {
        if (c == '"') quoted = false, after_quote = true;
        continue;
      }
      if (c == '"') {
        // Opening a field, or the second quote of "" inside a quoted field.
        if (field_chars == 0 || after_quote) quoted = true;
        after_quote = false;
        ++field_chars, ++record_chars;
        continue;
      }
      after_quote = false;
      if (c == '\n') {
        end_record();
      } else if (c == '\r') {
        continue;
      } else if (c == delim) {
        ++fields, field_chars = 0, ++record_chars;
      } else {
        ++field_chars, ++record_chars;
      }
    }
  }
  if (go) end_record();
  std::fclose(f);
  return Ok();
}

bool IsPlainCsv(InputKind kind, const std::string& path) {
  return kind == InputKind::kCsv && !EndsWith(path, ".gz");
}

// BAD_INPUT naming the first record whose field count differs from the
// header's: the reader's own error would be about the header or quote a row.
Status CheckCsvShape(const std::string& path) {
  size_t header = 0;
  std::optional<std::pair<int64_t, size_t>> odd;
  CR_TRY(WalkCsv(path, [&](int64_t record, int64_t line, size_t fields) {
    if (record == 0)
      header = fields;
    else if (fields != header)
      odd = {line, fields};
    return !odd;
  }));
  if (odd) {
    return Fail(ErrorCode::BAD_INPUT, "{} line {} has {} field{}; the header has {}", path,
                odd->first, odd->second, odd->second == 1 ? "" : "s", header);
  }
  return Ok();
}

// The line a data record (1-based) starts on, for messages.
int64_t CsvLineOf(const std::string& path, int64_t row) {
  int64_t found = row + 1;  // one line per record, if the file cannot be walked
  // Best effort: an unwalkable file keeps the one-line-per-record estimate.
  (void)WalkCsv(path, [&](int64_t record, int64_t line, size_t) {
    if (record == row) found = line;
    return record < row;
  });
  return found;
}

// After a failed conversion: the first row and column whose value does not
// fit, found through `relation` with `conv` (never printing the value).
Error DiagnoseCast(engine::Database& db, InputKind kind, const std::string& input,
                   const spec::Dataset& ds, const std::vector<Conversion>& conv,
                   const std::string& relation) {
  std::string flags, any;
  std::vector<size_t> checked;
  for (size_t i = 0; i < ds.columns.size(); ++i) {
    if (conv[i].bad.empty()) continue;
    flags += fmt::format(", coalesce({}, false) AS __cr_bad_{}", conv[i].bad, checked.size());
    any += fmt::format("{}__cr_bad_{}", any.empty() ? "" : " OR ", checked.size());
    checked.push_back(i);
  }
  if (!checked.empty()) {
    auto r = db.Query(fmt::format("SELECT * FROM (SELECT __cr_rn{} FROM ({})) WHERE {} ORDER BY "
                                  "__cr_rn LIMIT 1",
                                  flags, Converted(conv, relation, true), any),
                      ErrorCode::BAD_INPUT, false);
    if (r && r->row_count() == 1) {
      int64_t rn = r->ScalarInt();
      for (size_t k = 0; k < checked.size(); ++k) {
        if (r->at(0, k + 1).value_or("") != "true") continue;
        const auto& c = ds.columns[checked[k]];
        std::string where = IsPlainCsv(kind, input) ? fmt::format("{} line {} (row {})", input,
                                                                  CsvLineOf(input, rn), rn)
                                                    : fmt::format("row {} of {}", rn, input);
        return Error{ErrorCode::CAST_FAILED,
                     fmt::format("{}: column '{}' does not fit {} exactly (expected {})", where,
                                 c.name, spec::Name(c.type), Expected(c.type))};
      }
    }
  }
  return Error{ErrorCode::BAD_INPUT, "the input could not be read (malformed file?)"};
}

// ----- Counts the analyst should know about ------------------------------------------

std::optional<double> ToDouble(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(text->c_str(), &end);
  if (end == text->c_str() || *end != '\0') return std::nullopt;
  return v;
}

// Warnings about the written Parquet: rows outside a column's bounds (clamped
// at query time), join keys empty after normalisation (they join nothing), no
// rows at all. Counts only. Parquet's own statistics answer most of it; a
// column is scanned only when its min/max say something is out of bounds.
struct Warning {
  std::string fact;         // what --strict refuses
  std::string consequence;  // what happens without --strict
};

Result<std::vector<Warning>> InputWarnings(engine::Database& db, const spec::Dataset& ds,
                                           const std::string& parquet, int64_t rows) {
  std::vector<Warning> out;
  if (rows == 0) {
    out.push_back({"the input has no rows", "the package will hold none"});
    return out;
  }
  std::string file = QuoteLiteral(parquet);
  CR_ASSIGN(auto stats,
            db.Query(fmt::format("SELECT path_in_schema, sum(stats_null_count), "
                                 "count(*) - count(stats_null_count), "
                                 "min(TRY_CAST(stats_min_value AS DOUBLE)), "
                                 "max(TRY_CAST(stats_max_value AS DOUBLE)), "
                                 "2 * count(*) - count(stats_min_value) - count(stats_max_value) "
                                 "FROM parquet_metadata({}) GROUP BY path_in_schema",
                                 file),
                     ErrorCode::INTERNAL, false));
  auto stat_row = [&](const std::string& column) -> std::optional<size_t> {
    for (size_t r = 0; r < stats.row_count(); ++r) {
      if (stats.at(r, 0).value_or("") == column) return r;
    }
    return std::nullopt;
  };
  auto count = [&](const std::string& where) -> Result<int64_t> {
    CR_ASSIGN(auto r,
              db.Query(fmt::format("SELECT count(*) FROM read_parquet({}) WHERE {}", file, where),
                       ErrorCode::INTERNAL, false));
    return r.ScalarInt();
  };
  for (const auto& c : ds.columns) {
    if (!c.bounds) continue;
    auto [lo, hi] = *c.bounds;
    auto r = stat_row(c.name);
    bool maybe = true;
    if (r && stats.at(*r, 5).value_or("1") == "0") {
      auto min = ToDouble(stats.at(*r, 3)), max = ToDouble(stats.at(*r, 4));
      if (min && max) maybe = *min < lo || *max > hi;
    }
    if (!maybe) continue;
    CR_ASSIGN(int64_t n, count(fmt::format("{0} < {1} OR {0} > {2}", QuoteIdent(c.name),
                                           fmt::format("{}", lo), fmt::format("{}", hi))));
    if (n > 0) {
      out.push_back({fmt::format("{} row{} of {} {} outside bounds [{}, {}]", n, n == 1 ? "" : "s",
                                 c.name, n == 1 ? "is" : "are", lo, hi),
                     n == 1 ? "it will be clamped" : "they will be clamped"});
    }
  }
  for (const auto& c : ds.columns) {
    if (c.role != spec::Role::kJoinKey) continue;
    auto r = stat_row(c.name);
    int64_t n = 0;
    auto nulls =
        r && stats.at(*r, 2).value_or("1") == "0" ? ToDouble(stats.at(*r, 1)) : std::nullopt;
    if (nulls) {
      n = static_cast<int64_t>(*nulls);
    } else {
      CR_ASSIGN(n, count(QuoteIdent(c.name) + " IS NULL"));
    }
    if (n > 0) {
      out.push_back({fmt::format("{} row{} {} an empty {}", n, n == 1 ? "" : "s",
                                 n == 1 ? "has" : "have", c.name),
                     n == 1 ? "NULL after normalisation: it joins nothing"
                            : "NULL after normalisation: they join nothing"});
    }
  }
  return out;
}

}  // namespace

Result<PrepareReport> Prepare(const PrepareOptions& o) {
  auto started = std::chrono::steady_clock::now();
  CR_ASSIGN(auto spec, spec::Load(o.spec_path));
  const spec::Dataset* ds = spec.FindDataset(o.dataset);
  if (!ds) return Fail(ErrorCode::UNKNOWN_DATASET, "the spec has no dataset '{}'", o.dataset);
  CR_ASSIGN(auto owner, crypto::Identity::Load(o.key_path));
  const spec::Party* party = spec.FindPartyByKey(owner.pub());
  if (!party) {
    return Fail(ErrorCode::UNKNOWN_SIGNER, "the key {} belongs to no party of the spec",
                o.key_path);
  }
  if (ds->pooled() && !ds->Contributes(party->name)) {
    return Fail(ErrorCode::NOT_AUTHORIZED, "'{}' is not a contributor of pooled dataset '{}'",
                party->name, ds->name);
  }
  if (!ds->pooled() && party->name != ds->owner) {
    return Fail(ErrorCode::NOT_AUTHORIZED, "dataset '{}' is owned by '{}', not '{}'", ds->name,
                ds->owner, party->name);
  }
  CR_ASSIGN(auto secret, crypto::LoadSharedSecret(o.secret_path));
  CR_ASSIGN(auto room_pub, crypto::LoadPublic(o.room_pub));
  CR_ASSIGN(auto kind, KindOf(o.input));
  if (!PathExists(o.input)) return Fail(ErrorCode::FILE_UNREADABLE, "cannot read {}", o.input);

  engine::Options eo;
  eo.threads = o.threads;
  CR_ASSIGN(auto db, engine::Database::Open(eo));
  for (const auto& c : ds->columns) {
    if (c.role != spec::Role::kJoinKey) continue;
    auto key = PseudonymKey(secret, spec.collaboration, c.name);
    CR_TRY(db.RegisterUuidFunction(FunctionName(c),
                                   std::make_shared<Pseudonymizer>(key, c.normalize)));
  }
  if (!db.Execute("CREATE VIEW __cr_input AS SELECT * FROM " + SourceSql(kind, o.input),
                  ErrorCode::BAD_INPUT, false)) {
    // A ragged row in the sniffer's sample makes it give up on the dialect.
    if (IsPlainCsv(kind, o.input)) CR_TRY(CheckCsvShape(o.input));
    return Fail(ErrorCode::BAD_INPUT, "cannot read {} as {}", o.input,
                kind == InputKind::kCsv       ? "CSV"
                : kind == InputKind::kParquet ? "Parquet"
                                              : "JSON lines");
  }
  CR_ASSIGN(auto described, db.Query("DESCRIBE __cr_input", ErrorCode::BAD_INPUT, false));

  // Map declared columns to input columns (case-insensitively, as SQL does).
  std::vector<std::string> sources;
  std::vector<bool> used(described.row_count(), false);
  std::vector<size_t> used_row;  // per declared column, its row in `described`
  for (const auto& c : ds->columns) {
    std::optional<size_t> found;
    for (size_t r = 0; r < described.row_count(); ++r) {
      if (Lower(described.at(r, 0).value_or("")) == Lower(c.name)) found = r;
    }
    if (!found) {
      // Or a ragged row made the sniffer read the header as one column.
      if (IsPlainCsv(kind, o.input)) CR_TRY(CheckCsvShape(o.input));
      return Fail(ErrorCode::SCHEMA_MISMATCH, "the input has no column '{}' (declared in the spec)",
                  c.name);
    }
    used[*found] = true;
    used_row.push_back(*found);
    sources.push_back(*described.at(*found, 0));
  }
  PrepareReport report;
  for (size_t r = 0; r < described.row_count(); ++r) {
    if (!used[r]) report.dropped_columns.push_back(described.at(r, 0).value_or(""));
  }
  for (const auto& c : ds->columns) report.kept_columns.push_back(c.name);
  // The conversions from what the input holds: text for CSV, the file's own
  // types for Parquet and JSON.
  std::vector<Conversion> conv;
  for (size_t i = 0; i < ds->columns.size(); ++i) {
    conv.push_back(
        Convert(ds->columns[i], i, sources[i], described.at(used_row[i], 1).value_or("")));
  }
  // For CSV the conversion itself reads doubles typed: the reader parses them
  // straight from the bytes (faster than text then CAST), and DuckDB's double
  // parse is exact, so only infinities and NaN are left to refuse. Every other
  // column is read as text, where the strict rules apply. A value that does
  // not parse fails the COPY, and DiagnoseCast then finds its row through the
  // all-text view.
  std::string source = "__cr_input";
  std::vector<Conversion> fast = conv;
  if (kind == InputKind::kCsv) {
    std::string types;
    for (size_t i = 0; i < ds->columns.size(); ++i) {
      const auto& c = ds->columns[i];
      bool typed = c.role != spec::Role::kJoinKey && c.type == spec::ColumnType::kDouble;
      if (typed) fast[i] = Convert(c, i, sources[i], "DOUBLE");
      types += fmt::format("{}{}: '{}'", i ? ", " : "", QuoteLiteral(sources[i]),
                           typed ? "DOUBLE" : "VARCHAR");
    }
    source =
        fmt::format("read_csv({}, header = true, types = {{{}}})", QuoteLiteral(o.input), types);
  }
  std::string select = CheckedSelect(*ds, fast, source);

  // Input -> normalised, pseudonymised Parquet, in memory only.
  CR_ASSIGN(auto parquet, engine::MemFile::Create("cleanroom-prepare"));
  uint64_t input_bytes = 0;
  {
    struct stat st;
    if (::stat(o.input.c_str(), &st) == 0) input_bytes = static_cast<uint64_t>(st.st_size);
  }
  Progress reading("prepare " + ds->name + ": reading, pseudonymising");
  std::atomic<bool> done{false};
  std::thread watcher;
  if (reading.enabled()) {
    // DuckDB tracks query progress only with its progress bar on (printing off).
    CR_TRY(db.Execute("SET enable_progress_bar = true; SET enable_progress_bar_print = false"));
    watcher = std::thread([&] {
      while (!done.load()) {
        double p = db.Progress();
        if (p > 0) reading.Update(0, static_cast<uint64_t>(p * input_bytes));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }
  auto copied = db.Query(fmt::format("COPY ({}) TO {} (FORMAT parquet, USE_TMP_FILE false)", select,
                                     QuoteLiteral(parquet.path())),
                         ErrorCode::BAD_INPUT, false);
  done = true;
  if (watcher.joinable()) watcher.join();
  if (!copied) {
    if (IsPlainCsv(kind, o.input)) CR_TRY(CheckCsvShape(o.input));
    return std::unexpected(DiagnoseCast(db, kind, o.input, *ds, conv, "__cr_input"));
  }
  report.rows = copied->ScalarInt();
  reading.Finish(static_cast<uint64_t>(report.rows), input_bytes);
  CR_ASSIGN(auto warnings, InputWarnings(db, *ds, parquet.path(), report.rows));
  if (o.strict && !warnings.empty()) {
    std::vector<std::string> facts;
    for (const auto& w : warnings) facts.push_back(w.fact);
    return Fail(ErrorCode::BAD_INPUT, "strict mode refuses this input: {}; nothing was written",
                fmt::join(facts, "; "));
  }
  for (const auto& w : warnings) report.warnings.push_back(w.fact + " (" + w.consequence + ")");
  Progress progress("prepare " + ds->name + ": encrypting, signing");
  CR_ASSIGN(report.parquet_bytes, parquet.Size());

  // Encrypt with a fresh data key sealed to the room, sign as the owner.
  crypto::SecureBuffer data_key(crypto::kKeyBytes);
  crypto::RandomBytes(data_key.data(), data_key.size());
  package::Header h;
  h.package_id = crypto::RandomId();
  h.collaboration = spec.collaboration;
  h.spec_hash = spec.hash;
  h.dataset = ds->name;
  h.signer = owner.pub().ToText();
  h.room_key = room_pub.Fingerprint();
  h.created_at = NowRfc3339();
  h.row_count = report.rows;
  h.plaintext_bytes = report.parquet_bytes;
  for (const auto& c : ds->columns) {
    h.schema.push_back({c.name,
                        c.role == spec::Role::kJoinKey ? "UUID"
                                                       : std::string(spec::DuckDbType(c.type)),
                        std::string(spec::Name(c.role))});
  }
  h.sealed_data_key = crypto::Seal(room_pub, data_key.view());
  CR_ASSIGN(auto writer, package::Writer::Create(o.out, h, data_key));
  std::string buf;
  constexpr uint64_t kReadBytes = 16 * package::kChunkSize;
  for (uint64_t off = 0; off < report.parquet_bytes; off += kReadBytes) {
    size_t len = static_cast<size_t>(std::min<uint64_t>(kReadBytes, report.parquet_bytes - off));
    CR_TRY(parquet.ReadAt(off, len, &buf));
    CR_TRY(writer.Write(buf));
    progress.Update(static_cast<uint64_t>(report.rows), off + len);
  }
  sodium_memzero(buf.data(), buf.size());
  CR_TRY(writer.Finish(owner));
  report.package_bytes = writer.bytes_written();
  report.package_id = h.package_id;
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  progress.Finish(static_cast<uint64_t>(report.rows), report.package_bytes);
  return report;
}

}  // namespace cr::ingest
