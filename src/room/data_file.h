// A dataset at rest in the room (data/NAME-ID.crdata): the verified Parquet,
// re-encrypted under a fresh key of the room's own, in units that a query can
// decrypt independently, in parallel, and only for the columns it reads.
//
// Why not keep the owner's package? Verifying its signature means hashing every
// byte, and its secretstream can only be decrypted front to back on one core:
// for the 10M-row benchmark that was 0.42 s of a 1.05 s query. The package is
// verified once, at ingest; after that the room's own authenticated encryption
// (AES-256-GCM per unit, docs/package-format.md) protects the bytes, and a
// query decrypts only the column chunks it needs.
//
// Layout: "CRDATA01", the cipher (1 byte), the sealed header's length (u32 LE)
// and the sealed header (JSON: plaintext size, unit size, segments), then the
// units back to back, each `len + 16` bytes. Segments cover the Parquet file
// without gap or overlap; a segment is either one column's chunk in one row
// group, or shared bytes (magic, footer, anything between chunks) that every
// read decrypts.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "crypto/crypto.h"
#include "engine/engine.h"

namespace cr::room {

struct Segment {
  std::string column;  // "" for bytes every read needs
  uint64_t offset = 0;
  uint64_t length = 0;
  bool operator==(const Segment&) const = default;
};

// Plaintext bytes per unit.
inline constexpr uint64_t kUnitBytes = 1 << 20;

// Splits the Parquet file in `plain` into segments, using the column chunk
// offsets of its footer (DuckDB's parquet_metadata), each chunk named after
// the column at its position in the schema. Columns must be flat (the room's
// are). When the metadata does not describe a sane layout (names that disagree
// with the schema, chunks that overlap or leave the file), the whole file is
// one shared segment: correct, only slower to read.
Result<std::vector<Segment>> ParquetSegments(engine::Database& db, const engine::MemFile& plain);

struct WrittenData {
  crypto::SecureBuffer key;  // the fresh key: wrap it before anything refers to the file
  uint64_t bytes = 0;        // size of the written file
};

// Encrypts `plain` into `path` (mode 0600, written to a temporary file, fsynced
// and renamed: all or nothing). `binding` (dataset/package id) is bound into
// every unit's associated data.
Result<WrittenData> WriteDataFile(const std::string& path, const engine::MemFile& plain,
                                  const std::vector<Segment>& segments, std::string_view binding);

// Decrypts the shared segments and those of `columns` (every segment when
// `columns` is null) into a new in-memory file of the full plaintext size;
// bytes of other columns stay zero and take no memory. Units are decrypted on
// up to `threads` threads (0: one per core). TAMPERED when the file is missing
// or short, the header or any unit read fails authentication, or the file's
// size is not the one its header implies; INTERNAL for I/O errors and for a
// wanted column the file does not have.
Result<engine::MemFile> ReadDataFile(const std::string& path, const crypto::SecureBuffer& key,
                                     std::string_view binding,
                                     const std::set<std::string>* columns, unsigned threads = 0);

}  // namespace cr::room
