#include "crypto/crypto.h"

#include <sys/prctl.h>

// The low-level SHA-256 interface is deprecated in OpenSSL 3 but is the one
// that lets the keyed states be precomputed and copied; it still dispatches to
// the SHA-extension code.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <sys/stat.h>

#include <climits>
#include <cstring>
#include <mutex>

#include "common/files.h"

namespace cr::crypto {
namespace {

constexpr std::string_view kPubPrefix = "crpub1:";
constexpr std::string_view kKeyPrefix = "crkey1:";
constexpr std::string_view kSecretPrefix = "crsec1:";

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\r' ||
                        s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' ||
                        s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

const unsigned char* U(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

Status Init() {
  static int rc = sodium_init();
  if (rc < 0) return Fail(ErrorCode::INTERNAL, "libsodium failed to initialise");
  return Ok();
}

// ----- SecureBuffer ---------------------------------------------------------------

bool MakeProcessNonDumpable() { return ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0; }

SecureBuffer::SecureBuffer(size_t size) : size_(size) {
  // sodium_malloc needs sodium_init (it sets the page size); a caller that
  // forgot Init() gets it here rather than an abort.
  if (!Init()) std::abort();
  data_ = static_cast<unsigned char*>(sodium_malloc(size == 0 ? 1 : size));
  if (!data_) std::abort();
}

SecureBuffer::SecureBuffer(const void* data, size_t size) : SecureBuffer(size) {
  if (size) std::memcpy(data_, data, size);
}

SecureBuffer::~SecureBuffer() {
  if (data_) sodium_free(data_);  // sodium_free wipes before freeing
}

SecureBuffer::SecureBuffer(SecureBuffer&& o) noexcept : data_(o.data_), size_(o.size_) {
  o.data_ = nullptr;
  o.size_ = 0;
}

SecureBuffer& SecureBuffer::operator=(SecureBuffer&& o) noexcept {
  if (this != &o) {
    if (data_) sodium_free(data_);
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

// ----- Random, encoding -------------------------------------------------------------

void RandomBytes(void* out, size_t len) { randombytes_buf(out, len); }

std::string RandomBytes(size_t len) {
  std::string s(len, '\0');
  randombytes_buf(s.data(), len);
  return s;
}

std::string RandomId() { return ToHex(RandomBytes(16)); }

std::string Base64Encode(std::string_view bytes) {
  const int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_encoded_len(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), U(bytes), bytes.size(), variant);
  out.resize(std::strlen(out.c_str()));
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  std::string out(text.size(), '\0');
  size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
    return Fail(ErrorCode::BAD_INPUT, "invalid base64");
  }
  out.resize(len);
  return out;
}

// ----- Identities -------------------------------------------------------------------

std::string PublicIdentity::ToText() const {
  std::string raw(reinterpret_cast<const char*>(sign_pk.data()), sign_pk.size());
  raw.append(reinterpret_cast<const char*>(box_pk.data()), box_pk.size());
  return std::string(kPubPrefix) + Base64Encode(raw);
}

Result<PublicIdentity> PublicIdentity::FromText(std::string_view text) {
  text = Trim(text);
  if (text.starts_with(kKeyPrefix)) {
    // Said outright: the usual slip is NAME.key for NAME.pub, and a secret key
    // pasted where a public one belongs is about to be shared.
    return Fail(ErrorCode::KEY_INVALID,
                "this is a secret key ({}...), not a public key: give the public NAME.pub "
                "file instead, and never share the .key",
                kKeyPrefix);
  }
  if (!text.starts_with(kPubPrefix)) {
    return Fail(ErrorCode::KEY_INVALID, "not a cleanroom public key (expected {}...)", kPubPrefix);
  }
  auto raw = Base64Decode(text.substr(kPubPrefix.size()));
  if (!raw || raw->size() != kSignPublicBytes + kBoxPublicBytes) {
    return Fail(ErrorCode::KEY_INVALID, "malformed public key");
  }
  PublicIdentity p;
  std::memcpy(p.sign_pk.data(), raw->data(), kSignPublicBytes);
  std::memcpy(p.box_pk.data(), raw->data() + kSignPublicBytes, kBoxPublicBytes);
  return p;
}

std::string PublicIdentity::Fingerprint() const {
  unsigned char h[8];
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, sizeof h);
  crypto_generichash_update(&st, sign_pk.data(), sign_pk.size());
  crypto_generichash_update(&st, box_pk.data(), box_pk.size());
  crypto_generichash_final(&st, h, sizeof h);
  return ToHex(std::string_view(reinterpret_cast<char*>(h), sizeof h));
}

Identity Identity::Generate() {
  Identity id;
  crypto_sign_keypair(id.pub_.sign_pk.data(), id.sign_sk_.data());
  crypto_box_keypair(id.pub_.box_pk.data(), id.box_sk_.data());
  return id;
}

SecureBuffer Identity::ToText() const {
  SecureBuffer raw(sign_sk_.size() + box_sk_.size());
  std::memcpy(raw.data(), sign_sk_.data(), sign_sk_.size());
  std::memcpy(raw.data() + sign_sk_.size(), box_sk_.data(), box_sk_.size());
  const int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  size_t enc_len = sodium_base64_encoded_len(raw.size(), variant);
  SecureBuffer out(kKeyPrefix.size() + enc_len);
  std::memcpy(out.data(), kKeyPrefix.data(), kKeyPrefix.size());
  sodium_bin2base64(reinterpret_cast<char*>(out.data() + kKeyPrefix.size()), enc_len, raw.data(),
                    raw.size(), variant);
  // enc_len counts the terminating NUL; report the text without it.
  SecureBuffer trimmed(out.data(), kKeyPrefix.size() + enc_len - 1);
  return trimmed;
}

Result<Identity> Identity::FromText(std::string_view text) {
  text = Trim(text);
  if (text.starts_with(kPubPrefix)) {
    return Fail(ErrorCode::KEY_INVALID,
                "this is a public key ({}...), not a secret key: signing needs the secret "
                "NAME.key file that keygen wrote next to NAME.pub",
                kPubPrefix);
  }
  if (!text.starts_with(kKeyPrefix)) {
    return Fail(ErrorCode::KEY_INVALID, "not a cleanroom secret key (expected {}...)", kKeyPrefix);
  }
  text.remove_prefix(kKeyPrefix.size());
  Identity id;
  SecureBuffer raw(id.sign_sk_.size() + id.box_sk_.size());
  size_t len = 0;
  if (sodium_base642bin(raw.data(), raw.size(), text.data(), text.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      len != raw.size()) {
    return Fail(ErrorCode::KEY_INVALID, "malformed secret key");
  }
  std::memcpy(id.sign_sk_.data(), raw.data(), id.sign_sk_.size());
  std::memcpy(id.box_sk_.data(), raw.data() + id.sign_sk_.size(), id.box_sk_.size());
  crypto_sign_ed25519_sk_to_pk(id.pub_.sign_pk.data(), id.sign_sk_.data());
  crypto_scalarmult_base(id.pub_.box_pk.data(), id.box_sk_.data());
  return id;
}

Result<Identity> Identity::Load(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return Fail(ErrorCode::FILE_UNREADABLE, "cannot read key file {}", path);
  }
  CR_ASSIGN(auto text, ReadFile(path));
  // What the file is comes before its mode: a .pub is world-readable by
  // design, and "chmod 600 it" would send its owner the wrong way.
  bool is_public = Trim(text).starts_with(kPubPrefix);
  if (!is_public && (st.st_mode & 077)) {
    sodium_memzero(text.data(), text.size());
    return Fail(ErrorCode::KEY_INVALID, "key file {} is readable by others (mode {:o}); chmod 600 it",
                path, st.st_mode & 0777);
  }
  auto id = FromText(text);
  sodium_memzero(text.data(), text.size());
  if (!id) return Fail(id.error().code, "{}: {}", path, id.error().message);
  return id;
}

std::string Identity::Sign(std::string_view message) const {
  std::string sig(kSignatureBytes, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr, U(message),
                       message.size(), sign_sk_.data());
  return sig;
}

Result<SecureBuffer> Identity::Unseal(std::string_view sealed) const {
  if (sealed.size() < crypto_box_SEALBYTES) {
    return Fail(ErrorCode::TAMPERED, "sealed box too short");
  }
  SecureBuffer out(sealed.size() - crypto_box_SEALBYTES);
  if (crypto_box_seal_open(out.data(), U(sealed), sealed.size(), pub_.box_pk.data(),
                           box_sk_.data()) != 0) {
    return Fail(ErrorCode::TAMPERED, "sealed box does not open with this key");
  }
  return out;
}

SecureBuffer Identity::DeriveKey(uint64_t subkey_id, const char context[8]) const {
  SecureBuffer master(crypto_kdf_KEYBYTES);
  crypto_generichash(master.data(), master.size(), box_sk_.data(), box_sk_.size(), nullptr, 0);
  SecureBuffer key(kKeyBytes);
  crypto_kdf_derive_from_key(key.data(), key.size(), subkey_id, context, master.data());
  return key;
}

Status WriteIdentityFiles(const Identity& id, const std::string& dir, const std::string& name) {
  std::string key_path = JoinPath(dir, name + ".key");
  std::string pub_path = JoinPath(dir, name + ".pub");
  if (PathExists(key_path) || PathExists(pub_path)) {
    return Fail(ErrorCode::FILE_EXISTS, "{} or {} already exists; refusing to overwrite it",
                key_path, pub_path);
  }
  SecureBuffer text = id.ToText();
  std::string line(text.view());
  line.push_back('\n');
  auto st = WriteFileAtomic(key_path, line, 0600, Overwrite::kRefuse);
  sodium_memzero(line.data(), line.size());
  CR_TRY(st);
  return WriteFileAtomic(pub_path, id.pub().ToText() + "\n", 0644, Overwrite::kRefuse);
}

Result<PublicIdentity> LoadPublic(const std::string& text_or_path) {
  std::string_view t = Trim(text_or_path);
  // Key text is taken as is; a secret key's text must not be echoed as a path
  // in "cannot read ..." either.
  if (t.starts_with(kPubPrefix) || t.starts_with(kKeyPrefix)) return PublicIdentity::FromText(t);
  CR_ASSIGN(auto text, ReadFile(std::string(t)));
  auto pub = PublicIdentity::FromText(text);
  sodium_memzero(text.data(), text.size());
  if (!pub) return Fail(pub.error().code, "{}: {}", std::string(t), pub.error().message);
  return pub;
}

bool Verify(const PublicIdentity& signer, std::string_view message, std::string_view signature) {
  if (signature.size() != kSignatureBytes) return false;
  return crypto_sign_verify_detached(U(signature), U(message), message.size(),
                                     signer.sign_pk.data()) == 0;
}

std::string Seal(const PublicIdentity& to, std::string_view plaintext) {
  std::string out(plaintext.size() + crypto_box_SEALBYTES, '\0');
  crypto_box_seal(reinterpret_cast<unsigned char*>(out.data()), U(plaintext), plaintext.size(),
                  to.box_pk.data());
  return out;
}

// ----- Shared secret ----------------------------------------------------------------

Result<SecureBuffer> LoadSharedSecret(const std::string& path) {
  CR_ASSIGN(auto text, ReadFile(path));
  std::string_view t = Trim(text);
  if (!t.starts_with(kSecretPrefix)) {
    sodium_memzero(text.data(), text.size());
    return Fail(ErrorCode::KEY_INVALID, "{} is not a cleanroom shared secret", path);
  }
  t.remove_prefix(kSecretPrefix.size());
  SecureBuffer secret(kKeyBytes);
  size_t len = 0;
  int rc = sodium_base642bin(secret.data(), secret.size(), t.data(), t.size(), nullptr, &len,
                             nullptr, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(text.data(), text.size());
  if (rc != 0 || len != kKeyBytes) {
    return Fail(ErrorCode::KEY_INVALID, "{} is not a valid 256-bit shared secret", path);
  }
  return secret;
}

Status WriteNewSharedSecret(const std::string& path) {
  SecureBuffer secret(kKeyBytes);
  randombytes_buf(secret.data(), secret.size());
  std::string line = std::string(kSecretPrefix) + Base64Encode(secret.view()) + "\n";
  auto st = WriteFileAtomic(path, line, 0600, Overwrite::kRefuse);
  sodium_memzero(line.data(), line.size());
  return st;
}

// ----- Symmetric --------------------------------------------------------------------

std::string AeadSeal(const SecureBuffer& key, std::string_view plaintext, std::string_view ad) {
  constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  std::string out(kNonce + plaintext.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  randombytes_buf(o, kNonce);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(o + kNonce, &clen, U(plaintext), plaintext.size(),
                                             U(ad), ad.size(), nullptr, o, key.data());
  out.resize(kNonce + clen);
  return out;
}

Result<SecureBuffer> AeadOpen(const SecureBuffer& key, std::string_view sealed,
                              std::string_view ad) {
  constexpr size_t kNonce = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  constexpr size_t kTag = crypto_aead_xchacha20poly1305_ietf_ABYTES;
  if (sealed.size() < kNonce + kTag) return Fail(ErrorCode::TAMPERED, "wrapped data too short");
  SecureBuffer out(sealed.size() - kNonce - kTag);
  unsigned long long mlen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(out.data(), &mlen, nullptr, U(sealed) + kNonce,
                                                 sealed.size() - kNonce, U(ad), ad.size(),
                                                 U(sealed), key.data()) != 0) {
    return Fail(ErrorCode::TAMPERED, "authentication failed");
  }
  return out;
}

StreamEncryptor::StreamEncryptor(const SecureBuffer& key)
    : header_(crypto_secretstream_xchacha20poly1305_HEADERBYTES, '\0') {
  crypto_secretstream_xchacha20poly1305_init_push(
      &state_, reinterpret_cast<unsigned char*>(header_.data()), key.data());
}

std::string StreamEncryptor::Push(std::string_view chunk, std::string_view ad, bool final) {
  std::string out;
  PushAppend(chunk, ad, final, &out);
  return out;
}

void StreamEncryptor::PushAppend(std::string_view chunk, std::string_view ad, bool final,
                                 std::string* out) {
  size_t at = out->size();
  out->resize(at + chunk.size() + crypto_secretstream_xchacha20poly1305_ABYTES);
  unsigned long long clen = 0;
  crypto_secretstream_xchacha20poly1305_push(
      &state_, reinterpret_cast<unsigned char*>(out->data() + at), &clen, U(chunk), chunk.size(),
      U(ad), ad.size(),
      final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
            : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
  out->resize(at + clen);
}

Result<StreamDecryptor> StreamDecryptor::Create(const SecureBuffer& key,
                                                std::string_view header) {
  if (header.size() != crypto_secretstream_xchacha20poly1305_HEADERBYTES) {
    return Fail(ErrorCode::TAMPERED, "bad stream header");
  }
  StreamDecryptor d;
  if (crypto_secretstream_xchacha20poly1305_init_pull(&d.state_, U(header), key.data()) != 0) {
    return Fail(ErrorCode::TAMPERED, "bad stream header");
  }
  return d;
}

Status StreamDecryptor::Pull(std::string_view cipher, std::string_view ad, std::string* plain,
                             bool* final) {
  if (cipher.size() < kOverhead) return Fail(ErrorCode::TAMPERED, "truncated chunk");
  plain->resize(cipher.size() - kOverhead);
  unsigned long long mlen = 0;
  unsigned char tag = 0;
  if (crypto_secretstream_xchacha20poly1305_pull(
          &state_, reinterpret_cast<unsigned char*>(plain->data()), &mlen, &tag, U(cipher),
          cipher.size(), U(ad), ad.size()) != 0) {
    return Fail(ErrorCode::TAMPERED, "chunk authentication failed");
  }
  plain->resize(mlen);
  *final = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
  return Ok();
}

// ----- Hashes, MACs, KDF -------------------------------------------------------------

std::string Sha256(std::string_view data) {
  std::string out(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(out.data()), U(data), data.size());
  return out;
}

Sha256Stream::Sha256Stream() { crypto_hash_sha256_init(&state_); }
void Sha256Stream::Update(std::string_view data) {
  crypto_hash_sha256_update(&state_, U(data), data.size());
}
std::string Sha256Stream::Final() {
  std::string out(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256_final(&state_, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view message) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, U(key), key.size());
  crypto_auth_hmacsha256_update(&st, U(message), message.size());
  std::string out(crypto_auth_hmacsha256_BYTES, '\0');
  crypto_auth_hmacsha256_final(&st, reinterpret_cast<unsigned char*>(out.data()));
  sodium_memzero(&st, sizeof st);
  return out;
}

SecureBuffer HkdfSha256(std::string_view ikm, std::string_view salt, std::string_view info,
                        size_t length) {
  // libsodium 1.0.18 has no HKDF; RFC 5869 over its HMAC-SHA256.
  std::string zero_salt(32, '\0');
  std::string prk = HmacSha256(salt.empty() ? std::string_view(zero_salt) : salt, ikm);
  SecureBuffer okm(length);
  std::string t;
  size_t done = 0;
  for (unsigned char counter = 1; done < length; ++counter) {
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, U(prk), prk.size());
    crypto_auth_hmacsha256_update(&st, U(t), t.size());
    crypto_auth_hmacsha256_update(&st, U(info), info.size());
    crypto_auth_hmacsha256_update(&st, &counter, 1);
    t.assign(32, '\0');
    crypto_auth_hmacsha256_final(&st, reinterpret_cast<unsigned char*>(t.data()));
    size_t take = std::min<size_t>(32, length - done);
    std::memcpy(okm.data() + done, t.data(), take);
    done += take;
  }
  sodium_memzero(prk.data(), prk.size());
  sodium_memzero(t.data(), t.size());
  return okm;
}

struct KeyedHmac::States {
  SHA256_CTX inner;
  SHA256_CTX outer;
};

KeyedHmac::KeyedHmac(std::string_view key) {
  states_ = static_cast<States*>(sodium_malloc(sizeof(States)));
  if (!states_) std::abort();
  unsigned char block[64] = {0};
  if (key.size() > sizeof block) {
    SHA256(U(key), key.size(), block);  // RFC 2104: long keys are hashed first
  } else {
    std::memcpy(block, key.data(), key.size());
  }
  unsigned char pad[64];
  for (int i = 0; i < 64; ++i) pad[i] = block[i] ^ 0x36;
  SHA256_Init(&states_->inner);
  SHA256_Update(&states_->inner, pad, sizeof pad);
  for (int i = 0; i < 64; ++i) pad[i] = block[i] ^ 0x5c;
  SHA256_Init(&states_->outer);
  SHA256_Update(&states_->outer, pad, sizeof pad);
  sodium_memzero(block, sizeof block);
  sodium_memzero(pad, sizeof pad);
}

KeyedHmac::~KeyedHmac() { sodium_free(states_); }

void KeyedHmac::Mac(const void* data, size_t len, unsigned char out[32]) const {
  SHA256_CTX ctx = states_->inner;
  unsigned char inner_hash[SHA256_DIGEST_LENGTH];
  SHA256_Update(&ctx, data, len);
  SHA256_Final(inner_hash, &ctx);
  ctx = states_->outer;
  SHA256_Update(&ctx, inner_hash, sizeof inner_hash);
  SHA256_Final(out, &ctx);
  sodium_memzero(&ctx, sizeof ctx);
  sodium_memzero(inner_hash, sizeof inner_hash);
}

Blake2bStream::Blake2bStream(size_t out_bytes) : out_bytes_(out_bytes) {
  crypto_generichash_init(&state_, nullptr, 0, out_bytes_);
}
void Blake2bStream::Update(std::string_view data) {
  crypto_generichash_update(&state_, U(data), data.size());
}
std::string Blake2bStream::Final() {
  std::string out(out_bytes_, '\0');
  crypto_generichash_final(&state_, reinterpret_cast<unsigned char*>(out.data()), out_bytes_);
  return out;
}

}  // namespace cr::crypto

// ----- UnitCipher ------------------------------------------------------------------

namespace cr::crypto {
namespace {

// 96-bit nonce: the unit index, little-endian, then zeros.
std::array<unsigned char, 12> UnitNonce(uint64_t index) {
  std::array<unsigned char, 12> n{};
  for (int i = 0; i < 8; ++i) n[static_cast<size_t>(i)] = static_cast<unsigned char>(index >> (8 * i));
  return n;
}

// One context per call: contexts are not shareable between threads, and the
// key schedule (a few hundred nanoseconds) is nothing next to a 1 MiB unit.
// EVP_CIPHER_CTX_free cleanses the schedule.
struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter>;

bool Gcm(bool encrypt, const SecureBuffer& key, uint64_t index, std::string_view ad,
         const unsigned char* in, size_t n, unsigned char* out, unsigned char* tag) {
  if (n > static_cast<size_t>(INT_MAX) || ad.size() > static_cast<size_t>(INT_MAX)) return false;
  Ctx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return false;
  auto nonce = UnitNonce(index);
  int len = 0;
  if (EVP_CipherInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nonce.data(),
                        encrypt ? 1 : 0) != 1) {
    return false;
  }
  if (!ad.empty() && EVP_CipherUpdate(ctx.get(), nullptr, &len,
                                      reinterpret_cast<const unsigned char*>(ad.data()),
                                      static_cast<int>(ad.size())) != 1) {
    return false;
  }
  if (n && EVP_CipherUpdate(ctx.get(), out, &len, in, static_cast<int>(n)) != 1) return false;
  if (encrypt) {
    return EVP_CipherFinal_ex(ctx.get(), out + n, &len) == 1 &&
           EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, UnitCipher::kTagBytes, tag) == 1;
  }
  return EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, UnitCipher::kTagBytes, tag) == 1 &&
         EVP_CipherFinal_ex(ctx.get(), out + n, &len) == 1;
}

}  // namespace

Result<UnitCipher> UnitCipher::Create(UnitCipherKind kind, const SecureBuffer& key) {
  if (key.size() != kKeyBytes) return Fail(ErrorCode::TAMPERED, "a data key has the wrong size");
  if (kind != UnitCipherKind::kAes256Gcm) return Fail(ErrorCode::TAMPERED, "unknown cipher");
  UnitCipher c;
  c.kind_ = kind;
  c.key_ = SecureBuffer(key.data(), key.size());
  return c;
}

UnitCipher::~UnitCipher() = default;
UnitCipher::UnitCipher(UnitCipher&&) noexcept = default;
UnitCipher& UnitCipher::operator=(UnitCipher&&) noexcept = default;

bool UnitCipher::Seal(uint64_t index, std::string_view ad, const unsigned char* plain, size_t n,
                      unsigned char* out) const {
  return Gcm(true, key_, index, ad, plain, n, out, out + n);
}

bool UnitCipher::Open(uint64_t index, std::string_view ad, const unsigned char* cipher, size_t n,
                      unsigned char* out) const {
  if (n < kTagBytes) return false;
  // The tag is copied out first: `cipher` is not modified.
  unsigned char tag[kTagBytes];
  std::memcpy(tag, cipher + n - kTagBytes, kTagBytes);
  return Gcm(false, key_, index, ad, cipher, n - kTagBytes, out, tag);
}

}  // namespace cr::crypto
