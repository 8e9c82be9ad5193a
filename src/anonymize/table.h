// The in-memory microdata table the anonymizer works on (string columns,
// dictionary-encoded), and the CSV reader/writer that fill and serialise it.
// Another reader (Parquet through the engine) only has to fill a TableBuilder.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/error.h"

namespace cr::anonymize {

// One column: the distinct values (dictionary) and one code per row. Codes are
// dense and in order of first appearance, so encoding is deterministic.
struct Column {
  std::string name;
  std::vector<std::string> dict;
  std::vector<uint32_t> codes;

  const std::string& Value(size_t row) const { return dict[codes[row]]; }
};

class Table {
 public:
  Table() = default;
  size_t num_rows() const { return num_rows_; }
  size_t num_columns() const { return columns_.size(); }
  const Column& column(size_t i) const { return columns_[i]; }
  Column& mutable_column(size_t i) { return columns_[i]; }
  const std::vector<Column>& columns() const { return columns_; }
  // Index of the column called `name`, or -1.
  int Find(std::string_view name) const;

  // Replaces column i's values row by row (re-encodes).
  void SetValues(size_t i, const std::vector<std::string>& values);
  std::vector<std::string> Values(size_t i) const;
  void RemoveColumn(size_t i) { columns_.erase(columns_.begin() + static_cast<long>(i)); }
  // Keeps only `rows` (in that order) in every column.
  void SelectRows(const std::vector<uint32_t>& rows);
  // Appends `times` copies of all rows (benchmarks and tests scale data this way).
  void Replicate(size_t times);

 private:
  friend class TableBuilder;
  std::vector<Column> columns_;
  size_t num_rows_ = 0;
};

// Builds a Table row by row, encoding values as they come.
class TableBuilder {
 public:
  explicit TableBuilder(std::vector<std::string> names);
  // BAD_INPUT when the row has the wrong number of fields.
  Status AddRow(const std::vector<std::string_view>& fields);
  Table Finish();

 private:
  // Transparent hash so lookups by string_view do not allocate.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  Table table_;
  std::vector<std::unordered_map<std::string, uint32_t, Hash, std::equal_to<>>> index_;
};

struct CsvOptions {
  char separator = 0;  // 0: detect from the header line among , ; TAB |
};

// Picks the separator that occurs most often (outside quotes) in the first line.
char DetectSeparator(std::string_view text);

// RFC 4180 CSV with a header line: quoted fields, "" escapes, CRLF or LF.
// BAD_INPUT on ragged rows, duplicate or empty column names, unterminated quotes.
Result<Table> ReadCsv(std::string_view text, const CsvOptions& options = {});

// Whether `path` names a Parquet file (by its extension, any case).
bool IsParquetPath(const std::string& path);
// A table file's text: a CSV file as it is; a Parquet file (`.parquet`) read by
// DuckDB and rendered as CSV in memory (a memfd) with `separator` (',' when 0),
// so one reader sees one form. FILE_UNREADABLE / BAD_INPUT when it cannot be read.
Result<std::string> ReadTableText(const std::string& path, char separator = 0);
// ReadTableText + ReadCsv: a CSV or Parquet file as a table.
Result<Table> ReadTableFile(const std::string& path, const CsvOptions& options = {});

// Serialises with a header, quoting fields that need it.
std::string WriteCsv(const Table& table, char separator);

// The table as Parquet bytes, every column VARCHAR with its exact name and
// values (empty strings stay empty strings: the table has no NULLs). Built in
// memory through DuckDB with every CSV option pinned (no detection).
// BAD_INPUT for column names that differ only in case (Parquet readers such
// as DuckDB would rename one) or values that are not UTF-8.
Result<std::string> TableToParquet(const Table& table);

// Whether two tables have the same column names and the same values, cell by cell.
bool SameCells(const Table& a, const Table& b);

}  // namespace cr::anonymize
