// Party side: turn a local file into a contribution package — keep only the
// declared columns, cast to declared types, normalise and pseudonymise join
// keys inside DuckDB's pipeline, write Parquet in memory, encrypt and sign.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"

namespace cr::ingest {

struct PrepareOptions {
  std::string spec_path;
  std::string dataset;
  std::string input;      // .csv/.tsv/.txt, .parquet, .json/.jsonl/.ndjson
  std::string key_path;   // the dataset owner's .key
  std::string secret_path;
  std::string room_pub;   // the room's public key (text or path)
  std::string out;        // the .crpkg to write
  int threads = 0;        // DuckDB threads (0: all cores)
  bool strict = false;    // every warning is an error (BAD_INPUT) and nothing is written
};

struct PrepareReport {
  int64_t rows = 0;
  uint64_t parquet_bytes = 0;
  uint64_t package_bytes = 0;
  std::vector<std::string> kept_columns;
  std::vector<std::string> dropped_columns;  // present in the input, not declared: never leave
  std::string package_id;
  double seconds = 0;
  // Counts only, never values: rows outside a column's bounds, empty join
  // keys, no rows at all. One line per kind.
  std::vector<std::string> warnings;
};

// Errors: SPEC_INVALID, NOT_AUTHORIZED (the key is not the dataset's owner),
// UNKNOWN_DATASET, SCHEMA_MISMATCH (a declared column is missing), CAST_FAILED
// (a value does not fit its declared type exactly: names the line or row and
// the column, never the value), BAD_INPUT (a CSV row with another number of
// fields than the header, an unreadable file, or a warning under `strict`),
// FILE_UNREADABLE, KEY_INVALID.
// Nothing is written at `out` unless the whole package is complete.
Result<PrepareReport> Prepare(const PrepareOptions& options);

}  // namespace cr::ingest
