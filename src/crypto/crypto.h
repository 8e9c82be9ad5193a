// libsodium wrappers: identities (Ed25519 + X25519), signatures, sealed boxes,
// AEAD key wrapping, chunked streaming encryption, hashing, HMAC and HKDF.
// Nothing here knows about DuckDB, HTTP or the room's files.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <sodium.h>

#include "common/error.h"

namespace cr::crypto {

// Calls sodium_init() once; every entry point below assumes it succeeded.
Status Init();

// Secret bytes in sodium_malloc'd memory (guard pages, mlock'd when allowed),
// wiped and freed on destruction. Move-only.
class SecureBuffer {
 public:
  SecureBuffer() = default;
  explicit SecureBuffer(size_t size);
  SecureBuffer(const void* data, size_t size);
  ~SecureBuffer();
  SecureBuffer(SecureBuffer&& other) noexcept;
  SecureBuffer& operator=(SecureBuffer&& other) noexcept;
  SecureBuffer(const SecureBuffer&) = delete;
  SecureBuffer& operator=(const SecureBuffer&) = delete;

  unsigned char* data() { return data_; }
  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  std::string_view view() const {
    return {reinterpret_cast<const char*>(data_), size_};
  }

 private:
  unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

// Marks the process non-dumpable (prctl PR_SET_DUMPABLE 0: no core file, no
// ptrace or /proc/PID/mem by other processes of the same user) before a long-
// lived secret such as the room key is unlocked into it. SecureBuffer pages
// are already excluded from core dumps (sodium_malloc: mlock + MADV_DONTDUMP).
// Returns whether the kernel accepted it.
bool MakeProcessNonDumpable();

void RandomBytes(void* out, size_t len);
std::string RandomBytes(size_t len);
// 128 random bits as 32 hex digits: ids for packages, results, entries.
std::string RandomId();

// URL-safe base64 without padding.
std::string Base64Encode(std::string_view bytes);
Result<std::string> Base64Decode(std::string_view text);

// ----- Identities -------------------------------------------------------------

inline constexpr size_t kSignPublicBytes = crypto_sign_PUBLICKEYBYTES;  // 32
inline constexpr size_t kBoxPublicBytes = crypto_box_PUBLICKEYBYTES;    // 32
inline constexpr size_t kSignatureBytes = crypto_sign_BYTES;            // 64

// A party's (or the room's) public identity: Ed25519 to verify, X25519 to seal
// to. Text form (the .pub file, embeddable in a spec): "crpub1:" + base64.
struct PublicIdentity {
  std::array<unsigned char, kSignPublicBytes> sign_pk{};
  std::array<unsigned char, kBoxPublicBytes> box_pk{};

  std::string ToText() const;
  static Result<PublicIdentity> FromText(std::string_view text);
  // Short hex fingerprint (first 8 bytes of BLAKE2b of both keys) for messages.
  std::string Fingerprint() const;
  bool operator==(const PublicIdentity& o) const = default;
};

// A secret identity. Text form (the .key file): "crkey1:" + base64.
class Identity {
 public:
  static Identity Generate();
  static Result<Identity> FromText(std::string_view text);
  // Reads a .key file; refuses a .pub (saying so) and a key file that others
  // can read (KEY_INVALID).
  static Result<Identity> Load(const std::string& path);

  const PublicIdentity& pub() const { return pub_; }
  SecureBuffer ToText() const;

  // Detached Ed25519 signature.
  std::string Sign(std::string_view message) const;
  // Opens a sealed box addressed to this identity; TAMPERED when it does not open.
  Result<SecureBuffer> Unseal(std::string_view sealed) const;
  // 32-byte symmetric key derived from the secret keys for `context` (8 chars):
  // e.g. the room's key-wrapping key.
  SecureBuffer DeriveKey(uint64_t subkey_id, const char context[8]) const;

 private:
  Identity() : sign_sk_(crypto_sign_SECRETKEYBYTES), box_sk_(crypto_box_SECRETKEYBYTES) {}
  SecureBuffer sign_sk_;
  SecureBuffer box_sk_;
  PublicIdentity pub_;
};

// Writes DIR/NAME.key (0600, refuses to overwrite) and DIR/NAME.pub.
Status WriteIdentityFiles(const Identity& id, const std::string& dir, const std::string& name);

// Reads a public identity: the text itself or a path to a .pub file. A secret
// key (text or file) is KEY_INVALID with a message saying what it is.
Result<PublicIdentity> LoadPublic(const std::string& text_or_path);

bool Verify(const PublicIdentity& signer, std::string_view message, std::string_view signature);

// Sealed box (X25519 + XSalsa20-Poly1305, anonymous sender) to `to`.
std::string Seal(const PublicIdentity& to, std::string_view plaintext);

// ----- Shared secret ------------------------------------------------------------

// The parties' 256-bit pseudonymisation secret. Text form: "crsec1:" + base64.
Result<SecureBuffer> LoadSharedSecret(const std::string& path);
// Writes a fresh secret to `path` (0600, refuses to overwrite).
Status WriteNewSharedSecret(const std::string& path);

// ----- Symmetric ---------------------------------------------------------------

inline constexpr size_t kKeyBytes = 32;

// XChaCha20-Poly1305 with associated data; output = nonce || ciphertext.
std::string AeadSeal(const SecureBuffer& key, std::string_view plaintext, std::string_view ad);
Result<SecureBuffer> AeadOpen(const SecureBuffer& key, std::string_view sealed,
                              std::string_view ad);

// Chunked authenticated encryption (libsodium secretstream, XChaCha20-Poly1305):
// each chunk is authenticated, reordering/truncation is detected via the FINAL tag.
class StreamEncryptor {
 public:
  explicit StreamEncryptor(const SecureBuffer& key);
  // The 24-byte stream header the decryptor needs.
  const std::string& header() const { return header_; }
  std::string Push(std::string_view chunk, std::string_view ad, bool final);
  // Appends the ciphertext of `chunk` to *out (no allocation when *out has room).
  void PushAppend(std::string_view chunk, std::string_view ad, bool final, std::string* out);

 private:
  crypto_secretstream_xchacha20poly1305_state state_;
  std::string header_;
};

class StreamDecryptor {
 public:
  static Result<StreamDecryptor> Create(const SecureBuffer& key, std::string_view header);
  // Decrypts one chunk; sets *final when it carried the FINAL tag.
  Status Pull(std::string_view cipher, std::string_view ad, std::string* plain, bool* final);
  static constexpr size_t kOverhead = crypto_secretstream_xchacha20poly1305_ABYTES;

 private:
  StreamDecryptor() = default;
  crypto_secretstream_xchacha20poly1305_state state_;
};

// Authenticated encryption of independent units under one key: the room's
// at-rest format, where a query decrypts only the units it reads, on every
// core. AES-256-GCM from OpenSSL (AES-NI + VAES here: 5.7 GB/s a core against
// libsodium's 1.8 GB/s, and constant-time without AES-NI too; see
// docs/decisions/0002-room-storage.md). The nonce is the unit index, so a key
// must encrypt one file only (the room draws a fresh key per file); the
// associated data binds each unit to its place. Seal/Open are thread-safe.
enum class UnitCipherKind : uint8_t { kAes256Gcm = 1 };

class UnitCipher {
 public:
  static constexpr size_t kTagBytes = 16;
  // TAMPERED for a key of the wrong size or an unknown kind.
  static Result<UnitCipher> Create(UnitCipherKind kind, const SecureBuffer& key);
  ~UnitCipher();
  UnitCipher(UnitCipher&&) noexcept;
  UnitCipher& operator=(UnitCipher&&) noexcept;

  UnitCipherKind kind() const { return kind_; }
  // Writes n + kTagBytes bytes to `out`; false only if OpenSSL fails (memory).
  bool Seal(uint64_t index, std::string_view ad, const unsigned char* plain, size_t n,
            unsigned char* out) const;
  // Decrypts n - kTagBytes bytes into `out` (which may be `cipher`: in place);
  // false when authentication fails (then `out` holds nothing usable).
  bool Open(uint64_t index, std::string_view ad, const unsigned char* cipher, size_t n,
            unsigned char* out) const;

 private:
  UnitCipher() = default;
  UnitCipherKind kind_ = UnitCipherKind::kAes256Gcm;
  SecureBuffer key_;
};

// ----- Hashes, MACs, KDF ----------------------------------------------------------

std::string Sha256(std::string_view data);  // 32 raw bytes
class Sha256Stream {
 public:
  Sha256Stream();
  void Update(std::string_view data);
  std::string Final();  // 32 raw bytes

 private:
  crypto_hash_sha256_state state_;
};

std::string HmacSha256(std::string_view key, std::string_view message);  // 32 raw bytes

// HKDF-SHA256 (RFC 5869): extract with `salt`, expand with `info` to `length` bytes.
SecureBuffer HkdfSha256(std::string_view ikm, std::string_view salt, std::string_view info,
                        size_t length);

// HMAC-SHA256 with the inner and outer states computed once and copied per
// message. The hot path of pseudonymisation (two SHA-256 compressions per
// identifier) uses OpenSSL's SHA-256, which runs on the CPU's SHA extensions:
// about 3x libsodium's portable SHA-256 here. Same function, same bytes (tests
// compare it with libsodium's HMAC and RFC 4231). Thread-safe for concurrent
// Mac() calls.
class KeyedHmac {
 public:
  explicit KeyedHmac(std::string_view key);
  ~KeyedHmac();
  KeyedHmac(const KeyedHmac&) = delete;
  KeyedHmac& operator=(const KeyedHmac&) = delete;
  void Mac(const void* data, size_t len, unsigned char out[32]) const;

 private:
  struct States;
  States* states_;  // sodium_malloc'd: the keyed states are as secret as the key
};

// BLAKE2b over a stream of bytes (faster than SHA-2 in libsodium): the digest
// a package's signature covers, and file fingerprints.
class Blake2bStream {
 public:
  explicit Blake2bStream(size_t out_bytes = 64);
  void Update(std::string_view data);
  std::string Final();  // out_bytes raw bytes

 private:
  crypto_generichash_state state_;
  size_t out_bytes_;
};

}  // namespace cr::crypto
