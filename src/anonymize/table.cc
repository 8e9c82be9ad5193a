#include "anonymize/table.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <set>

#include <fmt/format.h>

#include "common/files.h"
#include "crypto/crypto.h"
#include "engine/engine.h"
#include "common/strings.h"

namespace cr::anonymize {

int Table::Find(std::string_view name) const {
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

void Table::SetValues(size_t i, const std::vector<std::string>& values) {
  Column& c = columns_[i];
  std::unordered_map<std::string_view, uint32_t> index;
  c.dict.clear();
  c.dict.reserve(values.size() / 4 + 1);
  c.codes.assign(values.size(), 0);
  // Two passes so string_views into `values` stay valid while indexing.
  for (size_t r = 0; r < values.size(); ++r) {
    auto [it, inserted] = index.try_emplace(values[r], static_cast<uint32_t>(index.size()));
    c.codes[r] = it->second;
  }
  c.dict.resize(index.size());
  for (auto& [v, code] : index) c.dict[code] = std::string(v);
  num_rows_ = values.size();
}

std::vector<std::string> Table::Values(size_t i) const {
  const Column& c = columns_[i];
  std::vector<std::string> out;
  out.reserve(num_rows_);
  for (uint32_t code : c.codes) out.push_back(c.dict[code]);
  return out;
}

void Table::SelectRows(const std::vector<uint32_t>& rows) {
  for (Column& c : columns_) {
    std::vector<uint32_t> codes;
    codes.reserve(rows.size());
    for (uint32_t r : rows) codes.push_back(c.codes[r]);
    c.codes = std::move(codes);
  }
  num_rows_ = rows.size();
}

void Table::Replicate(size_t times) {
  for (Column& c : columns_) {
    size_t n = c.codes.size();
    c.codes.reserve(n * (times + 1));
    for (size_t t = 0; t < times; ++t)
      c.codes.insert(c.codes.end(), c.codes.begin(), c.codes.begin() + static_cast<long>(n));
  }
  num_rows_ *= times + 1;
}

TableBuilder::TableBuilder(std::vector<std::string> names) {
  for (auto& n : names) table_.columns_.push_back(Column{std::move(n), {}, {}});
  index_.resize(table_.columns_.size());
}

Status TableBuilder::AddRow(const std::vector<std::string_view>& fields) {
  if (fields.size() != table_.columns_.size()) {
    return Fail(ErrorCode::BAD_INPUT, "row {} has {} fields, the header has {}",
                table_.num_rows_ + 2, fields.size(), table_.columns_.size());
  }
  for (size_t i = 0; i < fields.size(); ++i) {
    Column& c = table_.columns_[i];
    auto it = index_[i].find(fields[i]);
    uint32_t code;
    if (it == index_[i].end()) {
      code = static_cast<uint32_t>(c.dict.size());
      c.dict.emplace_back(fields[i]);
      index_[i].emplace(c.dict.back(), code);
    } else {
      code = it->second;
    }
    c.codes.push_back(code);
  }
  ++table_.num_rows_;
  return Ok();
}

Table TableBuilder::Finish() {
  index_.clear();
  return std::move(table_);
}

char DetectSeparator(std::string_view text) {
  static constexpr std::array<char, 4> kCandidates = {',', ';', '\t', '|'};
  std::array<size_t, 4> counts{};
  bool quoted = false;
  for (char ch : text) {
    if (ch == '"') quoted = !quoted;
    if (quoted) continue;
    if (ch == '\n') break;
    for (size_t i = 0; i < kCandidates.size(); ++i) {
      if (ch == kCandidates[i]) ++counts[i];
    }
  }
  size_t best = 0;
  for (size_t i = 1; i < counts.size(); ++i) {
    if (counts[i] > counts[best]) best = i;
  }
  return kCandidates[best];
}

namespace {

// Splits one record starting at `pos`; unquoted fields are views into `text`,
// quoted ones are unescaped into `scratch` (reserved so views stay valid).
Status ParseRecord(std::string_view text, size_t* pos, char sep,
                   std::vector<std::string_view>* fields, std::vector<std::string>* scratch) {
  fields->clear();
  size_t i = *pos;
  const size_t n = text.size();
  size_t scratch_used = 0;
  while (true) {
    if (i < n && text[i] == '"') {
      if (scratch_used == scratch->size()) scratch->emplace_back();
      std::string& s = (*scratch)[scratch_used++];
      s.clear();
      ++i;
      while (true) {
        if (i >= n) return Fail(ErrorCode::BAD_INPUT, "unterminated quoted field");
        if (text[i] == '"') {
          if (i + 1 < n && text[i + 1] == '"') {
            s.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        s.push_back(text[i++]);
      }
      fields->push_back(s);
      if (i < n && text[i] != sep && text[i] != '\n' && text[i] != '\r') {
        return Fail(ErrorCode::BAD_INPUT, "text after a closing quote");
      }
    } else {
      size_t start = i;
      while (i < n && text[i] != sep && text[i] != '\n' && text[i] != '\r') ++i;
      fields->push_back(text.substr(start, i - start));
    }
    if (i < n && text[i] == sep) {
      ++i;
      continue;
    }
    if (i < n && text[i] == '\r') ++i;
    if (i < n && text[i] == '\n') ++i;
    break;
  }
  *pos = i;
  return Ok();
}

}  // namespace

Result<Table> ReadCsv(std::string_view text, const CsvOptions& options) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  if (text.empty()) return Fail(ErrorCode::BAD_INPUT, "the CSV input is empty");
  char sep = options.separator ? options.separator : DetectSeparator(text);
  std::vector<std::string_view> fields;
  std::vector<std::string> scratch;
  scratch.reserve(1024);
  size_t pos = 0;
  CR_TRY(ParseRecord(text, &pos, sep, &fields, &scratch));
  std::vector<std::string> names(fields.begin(), fields.end());
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty()) return Fail(ErrorCode::BAD_INPUT, "column {} has an empty name", i + 1);
    for (size_t j = 0; j < i; ++j) {
      if (names[i] == names[j])
        return Fail(ErrorCode::BAD_INPUT, "column {} appears twice", names[i]);
    }
  }
  TableBuilder builder(names);
  while (pos < text.size()) {
    // Skip blank lines (a trailing newline, or CRLF leftovers).
    if (text[pos] == '\n' || text[pos] == '\r') {
      ++pos;
      continue;
    }
    CR_TRY(ParseRecord(text, &pos, sep, &fields, &scratch));
    CR_TRY(builder.AddRow(fields));
  }
  return builder.Finish();
}

bool IsParquetPath(const std::string& path) {
  return AsciiLower(path).ends_with(".parquet");
}

Result<std::string> ReadTableText(const std::string& path, char separator) {
  if (!IsParquetPath(path)) return ReadFile(path);
  if (!PathExists(path)) return Fail(ErrorCode::FILE_UNREADABLE, "cannot read {}", path);
  CR_ASSIGN(auto db, engine::Database::Open());
  CR_ASSIGN(auto mem, engine::MemFile::Create("cleanroom-table"));
  std::string sep(1, separator ? separator : ',');
  if (!db.Execute(fmt::format("COPY (SELECT * FROM read_parquet({})) TO {} (FORMAT csv, HEADER, "
                              "DELIMITER {}, USE_TMP_FILE false)",
                              engine::QuoteLiteral(path), engine::QuoteLiteral(mem.path()),
                              engine::QuoteLiteral(sep)),
                  ErrorCode::BAD_INPUT, false)) {
    return Fail(ErrorCode::BAD_INPUT, "cannot read {} as Parquet", path);
  }
  CR_ASSIGN(uint64_t size, mem.Size());
  std::string text;
  CR_TRY(mem.ReadAt(0, size, &text));
  return text;
}

Result<Table> ReadTableFile(const std::string& path, const CsvOptions& options) {
  CR_ASSIGN(std::string text, ReadTableText(path, options.separator));
  auto table = ReadCsv(text, options);
  if (!table) return Fail(table.error().code, "{}: {}", path, table.error().message);
  return table;
}

namespace {
void AppendField(std::string* out, const std::string& v, char sep) {
  bool needs = v.find_first_of(std::string{sep, '"', '\n', '\r'}) != std::string::npos ||
               (!v.empty() && (v.front() == ' ' || v.back() == ' '));
  if (!needs) {
    out->append(v);
    return;
  }
  out->push_back('"');
  for (char c : v) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}
}  // namespace

std::string WriteCsv(const Table& table, char separator) {
  std::string out;
  for (size_t c = 0; c < table.num_columns(); ++c) {
    if (c) out.push_back(separator);
    AppendField(&out, table.column(c).name, separator);
  }
  out.push_back('\n');
  // Quote each dictionary entry once, then copy per row.
  std::vector<std::vector<std::string>> rendered(table.num_columns());
  for (size_t c = 0; c < table.num_columns(); ++c) {
    for (const auto& v : table.column(c).dict) {
      std::string s;
      AppendField(&s, v, separator);
      rendered[c].push_back(std::move(s));
    }
  }
  for (size_t r = 0; r < table.num_rows(); ++r) {
    for (size_t c = 0; c < table.num_columns(); ++c) {
      if (c) out.push_back(separator);
      out.append(rendered[c][table.column(c).codes[r]]);
    }
    out.push_back('\n');
  }
  return out;
}

Result<std::string> TableToParquet(const Table& table) {
  std::set<std::string> lowered;
  for (const auto& c : table.columns()) {
    std::string l = AsciiLower(c.name);
    if (!lowered.insert(l).second) {
      return Fail(ErrorCode::BAD_INPUT,
                  "columns named '{}' differ from another only in case: Parquet output cannot "
                  "keep both (write CSV instead)",
                  c.name);
    }
  }
  CR_ASSIGN(auto db, engine::Database::Open());
  CR_ASSIGN(auto csv, engine::MemFile::Create("cleanroom-table-csv"));
  CR_ASSIGN(auto parquet, engine::MemFile::Create("cleanroom-table-parquet"));
  CR_TRY(csv.Append(WriteCsv(table, ',')));
  std::vector<std::string> columns;
  for (const auto& c : table.columns()) columns.push_back(engine::QuoteLiteral(c.name) + ": 'VARCHAR'");
  // No NULL marker can occur in the text: a random token stands for NULL, so
  // an empty field stays an empty string.
  const std::string null_token = "\x01cleanroom-null-" + crypto::RandomId();
  auto copied = db.Execute(
      fmt::format("COPY (SELECT * FROM read_csv({}, auto_detect = false, header = true, "
                  "delim = ',', quote = '\"', escape = '\"', new_line = '\\n', "
                  "nullstr = {}, columns = {{{}}})) TO {} (FORMAT parquet, USE_TMP_FILE false)",
                  engine::QuoteLiteral(csv.path()), engine::QuoteLiteral(null_token),
                  fmt::join(columns, ", "), engine::QuoteLiteral(parquet.path())),
      ErrorCode::BAD_INPUT, false);
  if (!copied) {
    return Fail(ErrorCode::BAD_INPUT,
                "the table cannot be written as Parquet (values must be UTF-8 text)");
  }
  CR_ASSIGN(uint64_t size, parquet.Size());
  std::string bytes;
  CR_TRY(parquet.ReadAt(0, size, &bytes));
  return bytes;
}

bool SameCells(const Table& a, const Table& b) {
  if (a.num_rows() != b.num_rows() || a.num_columns() != b.num_columns()) return false;
  for (size_t c = 0; c < a.num_columns(); ++c) {
    const Column& x = a.column(c);
    const Column& y = b.column(c);
    if (x.name != y.name) return false;
    for (size_t r = 0; r < a.num_rows(); ++r) {
      if (x.Value(r) != y.Value(r)) return false;
    }
  }
  return true;
}

}  // namespace cr::anonymize
