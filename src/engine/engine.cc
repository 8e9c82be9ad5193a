#include "engine/engine.h"

#include <atomic>

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include <duckdb.h>
#include <fmt/format.h>

namespace cr::engine {

struct Database::Handles {
  duckdb_database db = nullptr;
  duckdb_connection conn = nullptr;
  std::atomic<FailureKind> last_failure{FailureKind::kNone};
  ~Handles() {
    if (conn) duckdb_disconnect(&conn);
    if (db) duckdb_close(&db);
  }
};

namespace {

const char* TypeName(duckdb_type t) {
  switch (t) {
    case DUCKDB_TYPE_BOOLEAN: return "BOOLEAN";
    case DUCKDB_TYPE_TINYINT: return "TINYINT";
    case DUCKDB_TYPE_SMALLINT: return "SMALLINT";
    case DUCKDB_TYPE_INTEGER: return "INTEGER";
    case DUCKDB_TYPE_BIGINT: return "BIGINT";
    case DUCKDB_TYPE_UTINYINT: return "UTINYINT";
    case DUCKDB_TYPE_USMALLINT: return "USMALLINT";
    case DUCKDB_TYPE_UINTEGER: return "UINTEGER";
    case DUCKDB_TYPE_UBIGINT: return "UBIGINT";
    case DUCKDB_TYPE_FLOAT: return "FLOAT";
    case DUCKDB_TYPE_DOUBLE: return "DOUBLE";
    case DUCKDB_TYPE_TIMESTAMP: return "TIMESTAMP";
    case DUCKDB_TYPE_DATE: return "DATE";
    case DUCKDB_TYPE_TIME: return "TIME";
    case DUCKDB_TYPE_INTERVAL: return "INTERVAL";
    case DUCKDB_TYPE_HUGEINT: return "HUGEINT";
    case DUCKDB_TYPE_UHUGEINT: return "UHUGEINT";
    case DUCKDB_TYPE_UUID: return "UUID";
    case DUCKDB_TYPE_VARCHAR: return "VARCHAR";
    case DUCKDB_TYPE_BLOB: return "BLOB";
    case DUCKDB_TYPE_DECIMAL: return "DECIMAL";
    case DUCKDB_TYPE_TIMESTAMP_TZ: return "TIMESTAMP WITH TIME ZONE";
    default: return "OTHER";
  }
}

struct MapperInfo {
  std::shared_ptr<const StringMapper> mapper;
};

void UuidFunction(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
  auto* mi = static_cast<MapperInfo*>(duckdb_scalar_function_get_extra_info(info));
  idx_t n = duckdb_data_chunk_get_size(input);
  duckdb_vector in = duckdb_data_chunk_get_vector(input, 0);
  auto* strings = static_cast<duckdb_string_t*>(duckdb_vector_get_data(in));
  uint64_t* in_valid = duckdb_vector_get_validity(in);
  auto* out = static_cast<duckdb_hugeint*>(duckdb_vector_get_data(output));
  duckdb_vector_ensure_validity_writable(output);
  uint64_t* out_valid = duckdb_vector_get_validity(output);
  unsigned char mac[16];
  for (idx_t i = 0; i < n; ++i) {
    if (in_valid && !duckdb_validity_row_is_valid(in_valid, i)) {
      duckdb_validity_set_row_invalid(out_valid, i);
      continue;
    }
    std::string_view s(duckdb_string_t_data(&strings[i]), duckdb_string_t_length(strings[i]));
    if (!mi->mapper->Map(s, mac)) {
      duckdb_validity_set_row_invalid(out_valid, i);
      continue;
    }
    uint64_t hi = 0, lo = 0;
    for (int b = 0; b < 8; ++b) hi = (hi << 8) | mac[b];
    for (int b = 8; b < 16; ++b) lo = (lo << 8) | mac[b];
    out[i].upper = static_cast<int64_t>(hi);
    out[i].lower = lo;
  }
}

void UnitHashFunction(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
  auto fn = reinterpret_cast<Database::UnitHashFn>(duckdb_scalar_function_get_extra_info(info));
  idx_t n = duckdb_data_chunk_get_size(input);
  duckdb_vector in = duckdb_data_chunk_get_vector(input, 0);
  const auto* units = static_cast<const duckdb_hugeint*>(duckdb_vector_get_data(in));
  uint64_t* in_valid = duckdb_vector_get_validity(in);
  auto* out = static_cast<uint64_t*>(duckdb_vector_get_data(output));
  if (in_valid) duckdb_vector_ensure_validity_writable(output);
  uint64_t* out_valid = in_valid ? duckdb_vector_get_validity(output) : nullptr;
  for (idx_t i = 0; i < n; ++i) {
    if (in_valid && !duckdb_validity_row_is_valid(in_valid, i)) {
      duckdb_validity_set_row_invalid(out_valid, i);
      out[i] = 0;
      continue;
    }
    out[i] = fn(units[i].lower);
  }
}

}  // namespace

std::optional<std::string> QueryResult::Scalar() const {
  if (rows_.empty() || names_.empty()) return std::nullopt;
  return rows_[0][0];
}

int64_t QueryResult::ScalarInt() const {
  auto v = Scalar();
  return v ? std::atoll(v->c_str()) : 0;
}

Result<Database> Database::Open(const Options& options) {
  Database d;
  d.h_ = std::make_unique<Handles>();
  duckdb_config config = nullptr;
  if (duckdb_create_config(&config) == DuckDBError) {
    return Fail(ErrorCode::INTERNAL, "cannot create DuckDB config");
  }
  auto set = [&](const char* k, const std::string& v) {
    return duckdb_set_config(config, k, v.c_str()) == DuckDBSuccess;
  };
  // No temporary directory: DuckDB would otherwise spill intermediate data
  // (hash tables of pseudonyms, values) into ./.tmp when memory runs short,
  // and plaintext must never touch the disk. Such a statement fails instead.
  bool ok = set("autoinstall_known_extensions", "false") &&
            set("autoload_known_extensions", "false") && set("temp_directory", "");
  if (ok && options.threads > 0) ok = set("threads", std::to_string(options.threads));
  if (ok && !options.memory_limit.empty()) ok = set("memory_limit", options.memory_limit);
  if (!ok) {
    duckdb_destroy_config(&config);
    return Fail(ErrorCode::INTERNAL, "cannot configure DuckDB");
  }
  char* err = nullptr;
  if (duckdb_open_ext(nullptr, &d.h_->db, config, &err) == DuckDBError) {
    std::string msg = err ? err : "unknown error";
    if (err) duckdb_free(err);
    duckdb_destroy_config(&config);
    return Fail(ErrorCode::INTERNAL, "cannot open DuckDB: {}", msg);
  }
  duckdb_destroy_config(&config);
  if (duckdb_connect(d.h_->db, &d.h_->conn) == DuckDBError) {
    return Fail(ErrorCode::INTERNAL, "cannot connect to DuckDB");
  }
  return d;
}

Database::~Database() = default;
Database::Database(Database&& o) noexcept = default;
Database& Database::operator=(Database&& o) noexcept = default;

namespace {

// A failed statement's error, with its kind recorded in *kind. Running out of
// memory or being interrupted says so (it quotes no data); other messages
// only `with_detail`.
std::unexpected<Error> StatementError(duckdb_result* res, ErrorCode code, bool with_detail,
                                      std::atomic<FailureKind>* kind) {
  std::string msg = duckdb_result_error(res) ? duckdb_result_error(res) : "query failed";
  duckdb_error_type type = duckdb_result_error_type(res);
  duckdb_destroy_result(res);
  if (type == DUCKDB_ERROR_OUT_OF_MEMORY) {
    *kind = FailureKind::kOutOfMemory;
    return Fail(code, "the statement needs more memory than the engine may use");
  }
  if (type == DUCKDB_ERROR_INTERRUPT) {
    *kind = FailureKind::kInterrupted;
    return Fail(code, "the statement was interrupted");
  }
  *kind = FailureKind::kOther;
  if (with_detail) return Fail(code, "{}", msg);
  return Fail(code, "the engine refused the statement");
}

}  // namespace

FailureKind Database::LastFailure() const { return h_->last_failure; }

Status Database::Execute(std::string_view sql, ErrorCode code, bool with_detail) {
  duckdb_result res;
  std::string q(sql);
  if (duckdb_query(h_->conn, q.c_str(), &res) == DuckDBError) {
    return StatementError(&res, code, with_detail, &h_->last_failure);
  }
  duckdb_destroy_result(&res);
  h_->last_failure = FailureKind::kNone;
  return Ok();
}

Result<QueryResult> Database::Query(std::string_view sql, ErrorCode code, bool with_detail) {
  duckdb_result res;
  std::string q(sql);
  if (duckdb_query(h_->conn, q.c_str(), &res) == DuckDBError) {
    return StatementError(&res, code, with_detail, &h_->last_failure);
  }
  h_->last_failure = FailureKind::kNone;
  QueryResult out;
  idx_t cols = duckdb_column_count(&res);
  idx_t rows = duckdb_row_count(&res);
  for (idx_t c = 0; c < cols; ++c) {
    out.names_.emplace_back(duckdb_column_name(&res, c));
    duckdb_type t = duckdb_column_type(&res, c);
    out.types_.emplace_back(TypeName(t));
    // The row-value accessors below cover the scalar types only (UUID, LIST,
    // STRUCT... crash them): such columns must be cast to VARCHAR in SQL.
    if (std::string_view(TypeName(t)) == "OTHER" || t == DUCKDB_TYPE_UUID) {
      duckdb_destroy_result(&res);
      return Fail(ErrorCode::INTERNAL, "result column '{}' has a type the engine cannot read "
                  "back; cast it to VARCHAR", out.names_.back());
    }
  }
  out.rows_.resize(rows);
  for (idx_t r = 0; r < rows; ++r) {
    auto& row = out.rows_[r];
    row.resize(cols);
    for (idx_t c = 0; c < cols; ++c) {
      if (duckdb_value_is_null(&res, c, r)) continue;
      char* v = duckdb_value_varchar(&res, c, r);
      if (v) {
        row[c] = std::string(v);
        duckdb_free(v);
      }
    }
  }
  duckdb_destroy_result(&res);
  return out;
}

Status Database::ForEachList(std::string_view sql, const ListFn& fn, ErrorCode code,
                             bool with_detail) {
  duckdb_result res;
  std::string q(sql);
  if (duckdb_query(h_->conn, q.c_str(), &res) == DuckDBError) {
    return StatementError(&res, code, with_detail, &h_->last_failure);
  }
  h_->last_failure = FailureKind::kNone;
  const idx_t cols = duckdb_column_count(&res);
  if (cols < 1 || duckdb_column_type(&res, 0) != DUCKDB_TYPE_BIGINT) {
    duckdb_destroy_result(&res);
    return Fail(ErrorCode::INTERNAL, "a list query must start with a BIGINT key column");
  }
  std::vector<bool> is_uuid(cols, false);
  for (idx_t c = 1; c < cols; ++c) {
    duckdb_logical_type t = duckdb_column_logical_type(&res, c);
    bool ok = duckdb_get_type_id(t) == DUCKDB_TYPE_LIST;
    if (ok) {
      duckdb_logical_type child = duckdb_list_type_child_type(t);
      duckdb_type id = duckdb_get_type_id(child);
      is_uuid[c] = id == DUCKDB_TYPE_UUID;
      ok = id == DUCKDB_TYPE_UUID || id == DUCKDB_TYPE_UBIGINT;
      duckdb_destroy_logical_type(&child);
    }
    duckdb_destroy_logical_type(&t);
    if (!ok) {
      duckdb_destroy_result(&res);
      return Fail(ErrorCode::INTERNAL, "column {} of a list query is not a list of UUID or UBIGINT",
                  c);
    }
  }
  std::vector<uint64_t> buf;
  for (;;) {
    duckdb_data_chunk chunk = duckdb_fetch_chunk(res);
    if (!chunk) break;
    const idx_t n = duckdb_data_chunk_get_size(chunk);
    duckdb_vector keys = duckdb_data_chunk_get_vector(chunk, 0);
    const auto* key = static_cast<const int64_t*>(duckdb_vector_get_data(keys));
    uint64_t* key_valid = duckdb_vector_get_validity(keys);
    for (idx_t c = 1; c < cols; ++c) {
      duckdb_vector vec = duckdb_data_chunk_get_vector(chunk, c);
      const auto* entries = static_cast<const duckdb_list_entry*>(duckdb_vector_get_data(vec));
      uint64_t* valid = duckdb_vector_get_validity(vec);
      duckdb_vector child = duckdb_list_vector_get_child(vec);
      uint64_t* child_valid = duckdb_vector_get_validity(child);
      const void* data = duckdb_vector_get_data(child);
      for (idx_t r = 0; r < n; ++r) {
        if (key_valid && !duckdb_validity_row_is_valid(key_valid, r)) continue;
        if (valid && !duckdb_validity_row_is_valid(valid, r)) continue;
        const duckdb_list_entry& e = entries[r];
        buf.clear();
        buf.reserve(e.length);
        for (idx_t i = e.offset; i < e.offset + e.length; ++i) {
          if (child_valid && !duckdb_validity_row_is_valid(child_valid, i)) continue;
          buf.push_back(is_uuid[c] ? static_cast<const duckdb_hugeint*>(data)[i].lower
                                   : static_cast<const uint64_t*>(data)[i]);
        }
        fn(key[r], static_cast<size_t>(c), buf.data(), buf.size());
      }
    }
    duckdb_destroy_data_chunk(&chunk);
  }
  duckdb_destroy_result(&res);
  return Ok();
}

namespace {

// One scalar function of one parameter on `conn`; `info` (owned by DuckDB
// from here, freed by `destroy`) reaches `fn` as its extra info.
Status RegisterScalar(duckdb_connection conn, const std::string& name, duckdb_type in,
                      duckdb_type out, duckdb_scalar_function_t fn, void* info,
                      duckdb_delete_callback_t destroy) {
  duckdb_scalar_function f = duckdb_create_scalar_function();
  duckdb_scalar_function_set_name(f, name.c_str());
  duckdb_logical_type in_type = duckdb_create_logical_type(in);
  duckdb_logical_type out_type = duckdb_create_logical_type(out);
  duckdb_scalar_function_add_parameter(f, in_type);
  duckdb_scalar_function_set_return_type(f, out_type);
  duckdb_destroy_logical_type(&in_type);
  duckdb_destroy_logical_type(&out_type);
  duckdb_scalar_function_set_extra_info(f, info, destroy);
  duckdb_scalar_function_set_function(f, fn);
  duckdb_state st = duckdb_register_scalar_function(conn, f);
  duckdb_destroy_scalar_function(&f);
  if (st == DuckDBError) return Fail(ErrorCode::INTERNAL, "cannot register function {}", name);
  return Ok();
}

}  // namespace

Status Database::RegisterUuidFunction(const std::string& name,
                                          std::shared_ptr<const StringMapper> mapper) {
  return RegisterScalar(h_->conn, name, DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_UUID, UuidFunction,
                        new MapperInfo{std::move(mapper)},
                        [](void* p) { delete static_cast<MapperInfo*>(p); });
}

Status Database::RegisterUnitHashFunction(const std::string& name, UnitHashFn fn) {
  return RegisterScalar(h_->conn, name, DUCKDB_TYPE_UUID, DUCKDB_TYPE_UBIGINT, UnitHashFunction,
                        reinterpret_cast<void*>(fn), [](void*) {});
}

double Database::Progress() const {
  duckdb_query_progress_type p = duckdb_query_progress(h_->conn);
  return p.percentage < 0 ? -1.0 : p.percentage / 100.0;
}

void Database::Interrupt() { duckdb_interrupt(h_->conn); }

// ----- MemFile ---------------------------------------------------------------------

Result<MemFile> MemFile::Create(const std::string& name) {
  MemFile m;
  m.fd_ = ::memfd_create(name.c_str(), MFD_CLOEXEC);
  if (m.fd_ < 0) {
    return Fail(ErrorCode::INTERNAL, "cannot create an in-memory file: {}", strerror(errno));
  }
  return m;
}

MemFile::~MemFile() {
  if (fd_ >= 0) {
    // Release the pages rather than zero them first: the kernel zeroes every
    // page before it maps it into any process again, and zeroing 300 MB by
    // hand cost 0.2 s per query. (Swap is the real exposure: rooms should run
    // with encrypted or no swap; docs/threat-model.md.)
    if (::ftruncate(fd_, 0) != 0) {
      // Closing the last descriptor frees the pages anyway.
    }
    ::close(fd_);
  }
}

MemFile::MemFile(MemFile&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
MemFile& MemFile::operator=(MemFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) {
      if (::ftruncate(fd_, 0) != 0) {
        // Closing the last descriptor frees the pages anyway.
      }
      ::close(fd_);
    }
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

std::string MemFile::path() const { return fmt::format("/proc/self/fd/{}", fd_); }

Status MemFile::Append(std::string_view data) {
  off_t end = ::lseek(fd_, 0, SEEK_END);
  if (end < 0) return Fail(ErrorCode::INTERNAL, "in-memory file: {}", strerror(errno));
  return WriteAt(static_cast<uint64_t>(end), data);
}

Status MemFile::WriteAt(uint64_t offset, std::string_view data) const {
  const char* p = data.data();
  size_t left = data.size();
  while (left) {
    ssize_t n = ::pwrite(fd_, p, left, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(ErrorCode::INTERNAL, "in-memory file: {}", strerror(errno));
    }
    p += n;
    offset += static_cast<uint64_t>(n);
    left -= static_cast<size_t>(n);
  }
  return Ok();
}

Result<uint64_t> MemFile::Size() const {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return Fail(ErrorCode::INTERNAL, "in-memory file: {}", strerror(errno));
  return static_cast<uint64_t>(st.st_size);
}

Status MemFile::ReadAt(uint64_t offset, size_t len, std::string* out) const {
  out->resize(len);
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd_, out->data() + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(ErrorCode::INTERNAL, "in-memory file: {}", strerror(errno));
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out->resize(done);
  return Ok();
}

void MemFile::Wipe() {
  struct stat st;
  if (::fstat(fd_, &st) == 0 && st.st_size > 0) {
    // Zero the pages before releasing them so the plaintext does not linger.
    size_t size = static_cast<size_t>(st.st_size);
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (p != MAP_FAILED) {
      explicit_bzero(p, size);
      ::munmap(p, size);
    }
  }
  if (::ftruncate(fd_, 0) != 0) {
    // Nothing more can be done; the fd is closed right after.
  }
}

std::string QuoteLiteral(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "''";
    else out += c;
  }
  return out + "'";
}

std::string QuoteIdent(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += "\"\"";
    else out += c;
  }
  return out + "\"";
}

}  // namespace cr::engine
