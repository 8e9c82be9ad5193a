// The contribution package (.crpkg): a signed, encrypted, self-describing
// file a party prepares and the room ingests. Format in docs/package-format.md.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "crypto/crypto.h"

namespace cr::package {

inline constexpr std::string_view kMagic{"CRPKG\0\x01\n", 8};
inline constexpr std::string_view kTrailerMagic{"CRSIG\0\x01\n", 8};
inline constexpr size_t kChunkSize = 1 << 20;  // plaintext bytes per secretstream chunk
inline constexpr uint32_t kMaxHeaderBytes = 1 << 20;

struct SchemaColumn {
  std::string name;
  std::string type;  // DuckDB type name as stored (join keys: UUID)
  std::string role;  // spec role
  bool operator==(const SchemaColumn&) const = default;
};

// Everything in the header is covered by the owner's signature.
struct Header {
  std::string package_id;      // 128-bit random hex: the replay key
  std::string collaboration;
  std::string spec_hash;
  std::string dataset;
  std::string signer;          // crpub1: text of the key that signs the package
  std::string room_key;        // fingerprint of the room key the data key is sealed to
  std::string created_at;
  int64_t row_count = 0;
  uint64_t plaintext_bytes = 0;
  std::vector<SchemaColumn> schema;
  std::string sealed_data_key;  // crypto_box_seal(data key) to the room, raw bytes
  std::string stream_header;    // secretstream header, raw bytes

  nlohmann::json ToJson() const;
  static Result<Header> FromJson(const nlohmann::json& j);  // TAMPERED when malformed
};

// Writes a package: header, encrypted chunks, signature. The file appears at
// `path` only when complete (temporary file, fsync, rename).
class Writer {
 public:
  // `data_key` encrypts the chunks; the header must already carry its sealed copy.
  static Result<Writer> Create(const std::string& path, const Header& header,
                               const crypto::SecureBuffer& data_key);
  ~Writer();
  Writer(Writer&&) noexcept;
  Writer& operator=(Writer&&) noexcept;

  // Appends plaintext; buffered into kChunkSize chunks.
  Status Write(std::string_view plaintext);
  // Flushes the last chunk (FINAL), signs with `owner` (Ed25519 over
  // "cleanroom-package-v1\0" + BLAKE2b-512 of every byte before the signature
  // record), fsyncs and renames.
  Status Finish(const crypto::Identity& owner);
  uint64_t bytes_written() const;

 private:
  Writer() = default;
  struct State;
  std::unique_ptr<State> s_;
};

// Reads a package. Nothing is trusted before VerifySignature() succeeds.
class Reader {
 public:
  // Parses the magic and header: BAD_INPUT when the file does not start with
  // the package magic (not a package at all), TAMPERED when a file that does
  // is broken, FILE_UNREADABLE when the file cannot be read.
  static Result<Reader> Open(const std::string& path);
  ~Reader();
  Reader(Reader&&) noexcept;
  Reader& operator=(Reader&&) noexcept;

  const Header& header() const;
  const std::string& header_bytes() const;

  // Streams the whole file, checks its structure and the signature under the
  // header's signer key. TAMPERED on any failure.
  Status VerifySignature();
  // Decrypts every chunk into `sink` (call after VerifySignature). TAMPERED on
  // a chunk that fails authentication or a missing FINAL chunk.
  Status Decrypt(const crypto::SecureBuffer& data_key,
                 const std::function<Status(std::string_view)>& sink);
  // Both in one pass over the file: each chunk is hashed and decrypted into
  // `sink`, the signature is checked at the end. Unless this returns Ok,
  // whatever reached `sink` must be thrown away.
  Status VerifyAndDecrypt(const crypto::SecureBuffer& data_key,
                          const std::function<Status(std::string_view)>& sink);
  // The package's fingerprint (see Fingerprinter), known after verification.
  const std::string& file_digest() const;

 private:
  Reader() = default;
  struct State;
  std::unique_ptr<State> s_;
};

// A package's fingerprint, hex: BLAKE2b-256 of (BLAKE2b-512 of every byte
// before the signature record || the signature record). It is derived from the
// digest the signature covers, so verifying a package yields it for free, and
// it still changes with any byte of the file.
class Fingerprinter {
 public:
  void Update(std::string_view data);
  std::string FinalHex();
  static std::string FromSignedDigest(std::string_view signed_digest, std::string_view trailer);

 private:
  crypto::Blake2bStream signed_;
  std::string tail_;  // the last bytes seen: they may be the signature record
};

// Bytes in the signature record: 'S', the trailer magic, the signature.
inline constexpr size_t kSignatureRecordBytes = 1 + kTrailerMagic.size() + crypto::kSignatureBytes;

}  // namespace cr::package
