// The only unit that includes duckdb.h: an RAII wrapper over DuckDB's C API,
// in-memory files (memfd) for plaintext that must never touch the disk, and
// vectorised scalar functions backed by C++ callbacks.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace cr::engine {

// Maps one string to 16 bytes (e.g. a keyed pseudonym); returns false for NULL.
// Called concurrently from DuckDB's worker threads: implementations must be
// thread-safe and must not allocate per call if they want to be fast.
class StringMapper {
 public:
  virtual ~StringMapper() = default;
  virtual bool Map(std::string_view in, unsigned char out[16]) const = 0;
};

// A fully materialised query result with values as text (NULL = nullopt).
class QueryResult {
 public:
  size_t column_count() const { return names_.size(); }
  size_t row_count() const { return rows_.size(); }
  const std::vector<std::string>& names() const { return names_; }
  const std::vector<std::string>& types() const { return types_; }  // DuckDB type names
  const std::optional<std::string>& at(size_t row, size_t col) const { return rows_[row][col]; }
  // Convenience for single-value results: the first column of the first row.
  std::optional<std::string> Scalar() const;
  int64_t ScalarInt() const;

 private:
  friend class Database;
  std::vector<std::string> names_;
  std::vector<std::string> types_;
  std::vector<std::vector<std::optional<std::string>>> rows_;
};

struct Options {
  int threads = 0;             // 0: DuckDB's default (all cores)
  std::string memory_limit;    // "" : DuckDB's default
};

// Why the last statement failed, for callers that treat limits apart from
// bad input (the query executor) without reading DuckDB's message.
enum class FailureKind { kNone, kOutOfMemory, kInterrupted, kOther };

// An in-memory DuckDB database with one connection. Extension auto-install and
// auto-load are off (no network at run time). Move-only.
class Database {
 public:
  static Result<Database> Open(const Options& options = {});
  ~Database();
  Database(Database&& o) noexcept;
  Database& operator=(Database&& o) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs a statement, discarding rows. Errors carry `code` and DuckDB's message
  // only when `with_detail` (DuckDB messages can quote data values: callers
  // that handle user data pass false and say what failed in their own words).
  Status Execute(std::string_view sql, ErrorCode code = ErrorCode::INTERNAL,
                 bool with_detail = true);
  Result<QueryResult> Query(std::string_view sql, ErrorCode code = ErrorCode::INTERNAL,
                            bool with_detail = true);

  // Runs a query whose first column is a BIGINT row key and whose other
  // columns are lists of UUID or UBIGINT, and calls `fn(key, column, values,
  // n)` for each list cell (column counted from 1) without converting to text:
  // a UUID gives its lower 64 bits (for a keyed pseudonym, 64 uniform bits).
  // NULL elements and NULL lists are skipped. `values` is valid during the call.
  using ListFn = std::function<void(int64_t key, size_t column, const uint64_t* values, size_t n)>;
  Status ForEachList(std::string_view sql, const ListFn& fn, ErrorCode code = ErrorCode::INTERNAL,
                     bool with_detail = true);

  // Registers `name(VARCHAR) -> UUID` running `mapper` vectorised inside
  // DuckDB's parallel pipeline. UUID because it is a 128-bit integer inside
  // DuckDB (joins and COUNT(DISTINCT) at integer speed) that Parquet stores
  // losslessly as FIXED_LEN_BYTE_ARRAY(16); HUGEINT/UHUGEINT become DOUBLE there.
  Status RegisterUuidFunction(const std::string& name,
                                  std::shared_ptr<const StringMapper> mapper);
  // Registers `name(UUID) -> UBIGINT`: `fn` of the UUID's lower 64 bits (the
  // unit hash ForEachList gives), NULL for NULL. For the difference checks'
  // per-row fingerprints, summed inside the query.
  using UnitHashFn = uint64_t (*)(uint64_t);
  Status RegisterUnitHashFunction(const std::string& name, UnitHashFn fn);

  // Progress of the running query in [0, 1], or -1 when unknown; safe to call
  // from another thread while Execute/Query runs.
  double Progress() const;
  // Interrupts the running query (from another thread). DuckDB forgets an
  // interrupt when the next statement starts: callers enforcing a limit keep
  // interrupting until the work is done.
  void Interrupt();
  // The kind of the last failed statement (kNone after a success).
  FailureKind LastFailure() const;

 private:
  Database() = default;
  struct Handles;
  std::unique_ptr<Handles> h_;
};

// A file that lives only in memory (memfd_create): DuckDB reads and writes it
// through path(), so plaintext never reaches the disk. Move-only.
class MemFile {
 public:
  static Result<MemFile> Create(const std::string& name);
  ~MemFile();
  MemFile(MemFile&& o) noexcept;
  MemFile& operator=(MemFile&& o) noexcept;
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;

  int fd() const { return fd_; }
  std::string path() const;  // "/proc/self/fd/N"
  Status Append(std::string_view data);
  // Writes `data` at `offset` (growing the file if needed); thread-safe for
  // disjoint ranges.
  Status WriteAt(uint64_t offset, std::string_view data) const;
  Result<uint64_t> Size() const;
  // Reads [offset, offset+len) into *out.
  Status ReadAt(uint64_t offset, size_t len, std::string* out) const;
  // Overwrites the contents with zeros and truncates. Destruction only
  // truncates: released pages are zeroed by the kernel before any reuse.
  void Wipe();

 private:
  MemFile() = default;
  int fd_ = -1;
};

// SQL quoting: 'text' with '' escaping, and "identifier" with "" escaping.
std::string QuoteLiteral(std::string_view s);
std::string QuoteIdent(std::string_view s);

}  // namespace cr::engine
