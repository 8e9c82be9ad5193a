#include "room/key_store.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include <fmt/format.h>
#include <p11-kit/pkcs11.h>

#include "common/env.h"
#include "common/files.h"

#ifndef CLEANROOM_TEST_HOOKS
#error "CLEANROOM_TEST_HOOKS must be defined (0 or 1) by the build"
#endif

namespace cr::room {
namespace {

using nlohmann::json;

constexpr size_t kMaxSecret = 4096;
constexpr std::string_view kAdPrefix = "cleanroom-keystore-1";

// ----- Where secrets come from ----------------------------------------------

struct SecretSource {
  int fd = -1;
  const char* env;
  const char* what;  // for messages and the prompt
  const char* flag;
  std::string file;  // UsePassphraseFile
  std::optional<crypto::SecureBuffer> cached;  // an fd can be read once only
};

std::mutex g_mu;
SecretSource g_passphrase{-1, "CLEANROOM_PASSPHRASE_FILE", "passphrase", "--passphrase-fd", "", {}};
SecretSource g_new_passphrase{-1, "CLEANROOM_NEW_PASSPHRASE_FILE", "new passphrase", "--new-passphrase-fd", "", {}};
SecretSource g_pin{-1, "CLEANROOM_PKCS11_PIN_FILE", "PKCS#11 token PIN", "--pkcs11-pin-fd", "", {}};
// sha256(key store text) -> the unlocked key's text.
std::map<std::string, crypto::SecureBuffer>& Unlocked() {
  static auto* m = new std::map<std::string, crypto::SecureBuffer>();
  return *m;
}

crypto::SecureBuffer Copy(const crypto::SecureBuffer& b) { return crypto::SecureBuffer(b.data(), b.size()); }

// Reads up to kMaxSecret bytes into locked memory and drops one line ending.
Result<crypto::SecureBuffer> ReadSecretFd(int fd, const char* what) {
  crypto::SecureBuffer buf(kMaxSecret + 1);
  size_t n = 0;
  while (n < buf.size()) {
    ssize_t r = ::read(fd, buf.data() + n, buf.size() - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Fail(ErrorCode::USAGE, "cannot read the {} from its descriptor", what);
    if (r == 0) break;
    n += static_cast<size_t>(r);
  }
  if (n > kMaxSecret) return Fail(ErrorCode::USAGE, "the {} is longer than {} bytes", what, kMaxSecret);
  if (n > 0 && buf.data()[n - 1] == '\n') --n;
  if (n > 0 && buf.data()[n - 1] == '\r') --n;
  return crypto::SecureBuffer(buf.data(), n);
}

// Reads a line from the terminal without echo.
Result<crypto::SecureBuffer> Prompt(int tty, const std::string& question, const char* what) {
  (void)!::write(tty, question.data(), question.size());
  struct termios old_mode;
  bool restore = ::tcgetattr(tty, &old_mode) == 0;
  if (restore) {
    struct termios quiet = old_mode;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    ::tcsetattr(tty, TCSAFLUSH, &quiet);
  }
  crypto::SecureBuffer buf(kMaxSecret + 1);
  size_t n = 0;
  char c;
  while (n < buf.size()) {
    ssize_t r = ::read(tty, &c, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || c == '\n') break;
    buf.data()[n++] = static_cast<unsigned char>(c);
  }
  if (restore) ::tcsetattr(tty, TCSAFLUSH, &old_mode);
  if (n > kMaxSecret) return Fail(ErrorCode::USAGE, "the {} is longer than {} bytes", what, kMaxSecret);
  return crypto::SecureBuffer(buf.data(), n);
}

enum class Ask { kExisting, kNew };

// The secret from the first source that exists. `no_source` is the code when
// there is none: USAGE while creating a store, KEY_STORE_UNAVAILABLE while
// opening one (the room cannot be unlocked).
Result<crypto::SecureBuffer> ReadSecret(SecretSource& src, Ask ask, ErrorCode no_source) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (src.cached) return Copy(*src.cached);
  std::optional<crypto::SecureBuffer> got;
  if (src.fd >= 0) {
    CR_ASSIGN(auto s, ReadSecretFd(src.fd, src.what));
    got.emplace(std::move(s));
  } else if (const char* file = !src.file.empty() ? src.file.c_str() : std::getenv(src.env);
             file && *file) {
    struct stat st;
    if (::stat(file, &st) != 0 || !S_ISREG(st.st_mode)) {
      return Fail(ErrorCode::USAGE, "{} names no readable file", src.env);
    }
    if (st.st_mode & 077) {
      return Fail(ErrorCode::KEY_INVALID, "the {} file named by {} is readable by others (mode {:o}); chmod 600 it",
                  src.what, src.env, st.st_mode & 0777);
    }
    int fd = ::open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Fail(ErrorCode::USAGE, "{} names no readable file", src.env);
    auto s = ReadSecretFd(fd, src.what);
    ::close(fd);
    if (!s) return std::unexpected(s.error());
    got.emplace(std::move(*s));
  } else {
    int tty = ::isatty(STDIN_FILENO) ? ::open("/dev/tty", O_RDWR | O_CLOEXEC) : -1;
    if (tty < 0) {
      return Fail(no_source,
                  "no {} given: pass {} N (a file descriptor), set {} to a file (mode 0600), or "
                  "run on a terminal; never on the command line",
                  src.what, src.flag, src.env);
    }
    auto first = Prompt(tty, fmt::format("{}{}: ", ask == Ask::kNew ? "new " : "", src.what), src.what);
    if (first && ask == Ask::kNew) {
      auto again = Prompt(tty, fmt::format("the {} again: ", src.what), src.what);
      if (!again) {
        first = std::unexpected(again.error());
      } else if (again->size() != first->size() ||
                 sodium_memcmp(again->data(), first->data(), first->size()) != 0) {
        first = Fail(ErrorCode::USAGE, "the two {}s differ", src.what);
      }
    }
    ::close(tty);
    if (!first) return std::unexpected(first.error());
    got.emplace(std::move(*first));
  }
  if (got->size() == 0) return Fail(ErrorCode::USAGE, "the {} is empty", src.what);
  src.cached.emplace(Copy(*got));
  return std::move(*got);
}

// ----- Key store files --------------------------------------------------------

std::unexpected<Error> Damaged(std::string_view field) {
  return Fail(ErrorCode::TAMPERED, "the room's keystore.json is damaged (field \"{}\")", field);
}

Result<std::string> Field(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return Damaged(key);
  return it->get<std::string>();
}

Result<std::string> B64Field(const json& j, const char* key) {
  CR_ASSIGN(auto text, Field(j, key));
  auto raw = crypto::Base64Decode(text);
  if (!raw) return Damaged(key);
  return *raw;
}

// The room key text after unlocking: it must be the key the store says it holds.
Result<crypto::Identity> KeyFromText(std::string_view text, const std::string& fingerprint) {
  auto id = crypto::Identity::FromText(text);
  if (!id) return Fail(ErrorCode::TAMPERED, "the room's keystore.json holds no valid room key");
  if (id->pub().Fingerprint() != fingerprint) {
    return Fail(ErrorCode::TAMPERED, "the room's keystore.json holds another room's key");
  }
  return id;
}

// ----- Passphrase (Argon2id) ------------------------------------------------

std::string PassphraseAd(const std::string& fingerprint, unsigned long long ops, size_t mem,
                         const std::string& salt_b64) {
  return fmt::format("{}|passphrase|argon2id13|{}|{}|{}|{}", kAdPrefix, fingerprint, ops, mem, salt_b64);
}

Result<crypto::SecureBuffer> DeriveKek(const crypto::SecureBuffer& pass, const std::string& salt,
                                       unsigned long long ops, size_t mem) {
  crypto::SecureBuffer kek(crypto::kKeyBytes);
  if (crypto_pwhash(kek.data(), kek.size(), reinterpret_cast<const char*>(pass.data()), pass.size(),
                    reinterpret_cast<const unsigned char*>(salt.data()), ops, mem,
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Fail(ErrorCode::INTERNAL, "Argon2id failed (out of memory for {} MiB?)", mem >> 20);
  }
  return kek;
}

Result<std::string> CreatePassphrase(const crypto::Identity& key, bool replacing) {
  CR_ASSIGN(auto pass, ReadSecret(replacing ? g_new_passphrase : g_passphrase, Ask::kNew, ErrorCode::USAGE));
  const unsigned long long ops = crypto_pwhash_OPSLIMIT_MODERATE;
  const size_t mem = crypto_pwhash_MEMLIMIT_MODERATE;
  const std::string salt = crypto::RandomBytes(crypto_pwhash_SALTBYTES);
  const std::string salt_b64 = crypto::Base64Encode(salt);
  const std::string fp = key.pub().Fingerprint();
  CR_ASSIGN(auto kek, DeriveKek(pass, salt, ops, mem));
  auto text = key.ToText();
  json store = {{"format", 1},
                {"kind", "passphrase"},
                {"room_key", fp},
                {"kdf", "argon2id13"},
                {"opslimit", ops},
                {"memlimit", mem},
                {"salt", salt_b64},
                {"sealed", crypto::Base64Encode(crypto::AeadSeal(kek, text.view(), PassphraseAd(fp, ops, mem, salt_b64)))}};
  return store.dump(2) + "\n";
}

Result<crypto::Identity> UnlockPassphrase(const json& store, const std::string& fp) {
  CR_ASSIGN(auto kdf, Field(store, "kdf"));
  if (kdf != "argon2id13") return Damaged("kdf");
  auto ops_it = store.find("opslimit");
  auto mem_it = store.find("memlimit");
  if (ops_it == store.end() || !ops_it->is_number_unsigned()) return Damaged("opslimit");
  if (mem_it == store.end() || !mem_it->is_number_unsigned()) return Damaged("memlimit");
  const unsigned long long ops = ops_it->get<unsigned long long>();
  const uint64_t mem = mem_it->get<uint64_t>();
  // Bounded so a changed file cannot make the room spin or allocate without end.
  if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > 64) return Damaged("opslimit");
  if (mem < crypto_pwhash_MEMLIMIT_MIN || mem > (uint64_t{4} << 30)) return Damaged("memlimit");
  CR_ASSIGN(auto salt_b64, Field(store, "salt"));
  CR_ASSIGN(auto salt, B64Field(store, "salt"));
  if (salt.size() != crypto_pwhash_SALTBYTES) return Damaged("salt");
  CR_ASSIGN(auto sealed, B64Field(store, "sealed"));
  CR_ASSIGN(auto pass, ReadSecret(g_passphrase, Ask::kExisting, ErrorCode::KEY_STORE_UNAVAILABLE));
  CR_ASSIGN(auto kek, DeriveKek(pass, salt, ops, static_cast<size_t>(mem)));
  auto text = crypto::AeadOpen(kek, sealed, PassphraseAd(fp, ops, static_cast<size_t>(mem), salt_b64));
  if (!text) {
    // One answer for both: AEAD cannot tell a wrong passphrase from a changed blob.
    return Fail(ErrorCode::UNLOCK_FAILED,
                "the passphrase does not unlock this room's key (wrong passphrase, or keystore.json "
                "was changed)");
  }
  return KeyFromText(text->view(), fp);
}

// ----- PKCS#11 -----------------------------------------------------------------

std::string CkrName(CK_RV rv) { return fmt::format("CKR 0x{:x}", static_cast<unsigned long>(rv)); }

// One module, initialised for the length of one operation. The library stays
// loaded (no dlclose): several modules (SoftHSM among them) register process
// exit handlers that crash once their code is unmapped.
class Token {
 public:
  ~Token() {
    if (session_ != CK_INVALID_HANDLE) {
      f_->C_Logout(session_);
      f_->C_CloseSession(session_);
    }
    if (initialized_) f_->C_Finalize(nullptr);
  }

  static Result<std::unique_ptr<Token>> Open(const std::string& module, const std::string& label) {
    auto t = std::unique_ptr<Token>(new Token());
    void* lib = ::dlopen(module.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      return Fail(ErrorCode::KEY_STORE_UNAVAILABLE, "cannot load the PKCS#11 module {}", module);
    }
    auto get = reinterpret_cast<CK_C_GetFunctionList>(::dlsym(lib, "C_GetFunctionList"));
    if (!get || get(&t->f_) != CKR_OK || !t->f_) {
      return Fail(ErrorCode::KEY_STORE_UNAVAILABLE, "{} is not a PKCS#11 module", module);
    }
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = t->f_->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      return Fail(ErrorCode::KEY_STORE_UNAVAILABLE, "the PKCS#11 module {} does not start ({})",
                  module, CkrName(rv));
    }
    t->initialized_ = rv == CKR_OK;
    CK_ULONG count = 0;
    if (t->f_->C_GetSlotList(CK_TRUE, nullptr, &count) != CKR_OK) count = 0;
    std::vector<CK_SLOT_ID> slots(count);
    if (count && t->f_->C_GetSlotList(CK_TRUE, slots.data(), &count) != CKR_OK) count = 0;
    slots.resize(count);
    for (CK_SLOT_ID slot : slots) {
      CK_TOKEN_INFO info;
      if (t->f_->C_GetTokenInfo(slot, &info) != CKR_OK) continue;
      std::string have(reinterpret_cast<const char*>(info.label), sizeof info.label);
      while (!have.empty() && have.back() == ' ') have.pop_back();
      if (have != label) continue;
      rv = t->f_->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr,
                                &t->session_);
      if (rv != CKR_OK) {
        t->session_ = CK_INVALID_HANDLE;
        return Fail(ErrorCode::KEY_STORE_UNAVAILABLE, "cannot open a session on token '{}' ({})",
                    label, CkrName(rv));
      }
      CR_ASSIGN(auto pin, ReadSecret(g_pin, Ask::kExisting, ErrorCode::KEY_STORE_UNAVAILABLE));
      rv = t->f_->C_Login(t->session_, CKU_USER, pin.data(), pin.size());
      if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE) {
        return Fail(ErrorCode::UNLOCK_FAILED, "the PIN does not open token '{}'", label);
      }
      if (rv == CKR_PIN_LOCKED) return Fail(ErrorCode::UNLOCK_FAILED, "token '{}' has locked its PIN", label);
      if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        return Fail(ErrorCode::UNLOCK_FAILED, "cannot log in to token '{}' ({})", label, CkrName(rv));
      }
      return t;
    }
    return Fail(ErrorCode::KEY_STORE_UNAVAILABLE,
                "no token labelled '{}' is present in {} (removed, or another slot configuration)",
                label, module);
  }

  Result<CK_OBJECT_HANDLE> GenerateKey(const std::string& label, const std::string& id) {
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    CK_ULONG len = 32;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_KEY_TYPE, &type, sizeof type},
        {CKA_VALUE_LEN, &len, sizeof len},
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes},
        {CKA_EXTRACTABLE, &no, sizeof no},
        {CKA_ENCRYPT, &yes, sizeof yes},
        {CKA_DECRYPT, &yes, sizeof yes},
        {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
        {CKA_ID, const_cast<char*>(id.data()), id.size()},
    };
    CK_MECHANISM mech{CKM_AES_KEY_GEN, nullptr, 0};
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_RV rv = f_->C_GenerateKey(session_, &mech, tmpl, std::size(tmpl), &key);
    if (rv != CKR_OK) {
      return Fail(ErrorCode::KEY_STORE_UNAVAILABLE, "the token cannot generate an AES-256 key ({})",
                  CkrName(rv));
    }
    return key;
  }

  Result<CK_OBJECT_HANDLE> FindKey(const std::string& label, const std::string& id) {
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
        {CKA_ID, const_cast<char*>(id.data()), id.size()},
    };
    if (f_->C_FindObjectsInit(session_, tmpl, std::size(tmpl)) != CKR_OK) {
      return Fail(ErrorCode::KEY_STORE_UNAVAILABLE, "cannot search the token");
    }
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_ULONG found = 0;
    CK_RV rv = f_->C_FindObjects(session_, &key, 1, &found);
    f_->C_FindObjectsFinal(session_);
    if (rv != CKR_OK || found != 1) {
      return Fail(ErrorCode::KEY_STORE_UNAVAILABLE,
                  "the token holds no key '{}' (deleted, or another token)", label);
    }
    return key;
  }

  // AES-256-GCM on the token; `encrypt` false decrypts. nullopt-like failure
  // is returned as the CK_RV for the caller to name.
  CK_RV Gcm(bool encrypt, CK_OBJECT_HANDLE key, std::string& iv, std::string_view ad,
            const unsigned char* in, size_t n, std::vector<unsigned char>* out) {
    CK_GCM_PARAMS params{};
    params.iv_ptr = reinterpret_cast<unsigned char*>(iv.data());
    params.iv_len = iv.size();
    params.iv_bits = iv.size() * 8;
    params.aad_ptr = reinterpret_cast<unsigned char*>(const_cast<char*>(ad.data()));
    params.aad_len = ad.size();
    params.tag_bits = 128;
    CK_MECHANISM mech{CKM_AES_GCM, &params, sizeof params};
    CK_RV rv = encrypt ? f_->C_EncryptInit(session_, &mech, key) : f_->C_DecryptInit(session_, &mech, key);
    if (rv != CKR_OK) return rv;
    out->assign(n + 16, 0);
    CK_ULONG len = out->size();
    auto* src = const_cast<unsigned char*>(in);
    rv = encrypt ? f_->C_Encrypt(session_, src, n, out->data(), &len)
                 : f_->C_Decrypt(session_, src, n, out->data(), &len);
    if (rv != CKR_OK) return rv;
    out->resize(len);
    return CKR_OK;
  }

 private:
  Token() = default;
  CK_FUNCTION_LIST_PTR f_ = nullptr;
  bool initialized_ = false;
  CK_SESSION_HANDLE session_ = CK_INVALID_HANDLE;
};

std::string Pkcs11Ad(const std::string& fp, const std::string& token, const std::string& label) {
  return fmt::format("{}|pkcs11|aes-256-gcm|{}|{}|{}", kAdPrefix, fp, token, label);
}

Result<std::string> CreatePkcs11(const KeyStoreChoice& c, const crypto::Identity& key) {
  CR_ASSIGN(auto token, Token::Open(c.pkcs11_module, c.pkcs11_token));
  const std::string fp = key.pub().Fingerprint();
  const std::string label = "cleanroom room " + fp;
  const std::string id = crypto::RandomBytes(16);
  CR_ASSIGN(auto handle, token->GenerateKey(label, id));
  std::string iv = crypto::RandomBytes(12);
  auto text = key.ToText();
  std::vector<unsigned char> wrapped;
  CK_RV rv = token->Gcm(true, handle, iv, Pkcs11Ad(fp, c.pkcs11_token, label), text.data(), text.size(), &wrapped);
  if (rv != CKR_OK) {
    return Fail(ErrorCode::KEY_STORE_UNAVAILABLE, "the token cannot encrypt with AES-GCM ({})", CkrName(rv));
  }
  json store = {{"format", 1},
                {"kind", "pkcs11"},
                {"room_key", fp},
                {"module", c.pkcs11_module},
                {"token", c.pkcs11_token},
                {"key_label", label},
                {"key_id", crypto::Base64Encode(id)},
                {"mechanism", "CKM_AES_GCM"},
                {"iv", crypto::Base64Encode(iv)},
                {"wrapped", crypto::Base64Encode(std::string_view(reinterpret_cast<const char*>(wrapped.data()), wrapped.size()))}};
  sodium_memzero(wrapped.data(), wrapped.size());
  return store.dump(2) + "\n";
}

Result<crypto::Identity> UnlockPkcs11(const json& store, const std::string& fp) {
  CR_ASSIGN(auto module, Field(store, "module"));
  CR_ASSIGN(auto token_label, Field(store, "token"));
  CR_ASSIGN(auto label, Field(store, "key_label"));
  CR_ASSIGN(auto id, B64Field(store, "key_id"));
  CR_ASSIGN(auto mech, Field(store, "mechanism"));
  if (mech != "CKM_AES_GCM") return Damaged("mechanism");
  CR_ASSIGN(auto iv, B64Field(store, "iv"));
  if (iv.size() != 12) return Damaged("iv");
  CR_ASSIGN(auto wrapped, B64Field(store, "wrapped"));
  if (wrapped.size() < 16) return Damaged("wrapped");
  CR_ASSIGN(auto token, Token::Open(module, token_label));
  CR_ASSIGN(auto handle, token->FindKey(label, id));
  std::vector<unsigned char> plain;
  CK_RV rv = token->Gcm(false, handle, iv, Pkcs11Ad(fp, token_label, label),
                        reinterpret_cast<const unsigned char*>(wrapped.data()), wrapped.size(), &plain);
  if (rv != CKR_OK) {
    return Fail(ErrorCode::TAMPERED, "the room's keystore.json: the token does not open the wrapped key ({})",
                CkrName(rv));
  }
  crypto::SecureBuffer text(plain.data(), plain.size());
  sodium_memzero(plain.data(), plain.size());
  return KeyFromText(text.view(), fp);
}

}  // namespace

Result<KeyStoreKind> ParseKeyStoreKind(std::string_view name) {
  if (name == "passphrase") return KeyStoreKind::kPassphrase;
  if (name == "pkcs11") return KeyStoreKind::kPkcs11;
  if (name == "test-plain") {
#if CLEANROOM_TEST_HOOKS
    return KeyStoreKind::kTestPlain;
#else
    return Fail(ErrorCode::USAGE,
                "the key store test-plain (no protection) exists only in test builds; use "
                "passphrase or pkcs11");
#endif
  }
  return Fail(ErrorCode::USAGE, "unknown key store '{}' (passphrase or pkcs11)", name);
}

std::string_view KeyStoreKindName(KeyStoreKind kind) {
  switch (kind) {
    case KeyStoreKind::kPassphrase: return "passphrase";
    case KeyStoreKind::kPkcs11: return "pkcs11";
    case KeyStoreKind::kTestPlain: return "test-plain";
    case KeyStoreKind::kDefault: break;
  }
  return "default";
}

void SetSecretFds(int passphrase_fd, int pin_fd) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_passphrase.fd = passphrase_fd;
  g_pin.fd = pin_fd;
  g_passphrase.cached.reset();
  g_pin.cached.reset();
}

void SetNewPassphraseFd(int fd) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_new_passphrase.fd = fd;
  g_new_passphrase.cached.reset();
}

void UsePassphraseFile(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_passphrase.file = path;
  g_passphrase.cached.reset();
}

Result<KeyStoreChoice> ResolveChoice(KeyStoreChoice c) {
  if (c.kind == KeyStoreKind::kDefault) {
    const char* env = std::getenv("CLEANROOM_KEY_STORE");
    if (env && *env) {
      CR_ASSIGN(c.kind, ParseKeyStoreKind(env));
    } else {
      c.kind = KeyStoreKind::kPassphrase;
    }
  }
#if !CLEANROOM_TEST_HOOKS
  if (c.kind == KeyStoreKind::kTestPlain) CR_TRY(ParseKeyStoreKind("test-plain"));
#endif
  if (c.kind == KeyStoreKind::kPkcs11) {
    if (c.pkcs11_module.empty()) c.pkcs11_module = std::getenv("CLEANROOM_PKCS11_MODULE") ? std::getenv("CLEANROOM_PKCS11_MODULE") : "";
    if (c.pkcs11_module.empty() || c.pkcs11_token.empty()) {
      return Fail(ErrorCode::USAGE, "--key-store pkcs11 needs --pkcs11-module LIB and --pkcs11-token LABEL");
    }
  }
  return c;
}

Result<std::string> CreateKeyStore(const KeyStoreChoice& choice, const crypto::Identity& key,
                                   bool replacing) {
  CR_ASSIGN(auto c, ResolveChoice(choice));
  switch (c.kind) {
    case KeyStoreKind::kPassphrase: return CreatePassphrase(key, replacing);
    case KeyStoreKind::kPkcs11: return CreatePkcs11(c, key);
    case KeyStoreKind::kTestPlain: {
#if CLEANROOM_TEST_HOOKS
      auto text = key.ToText();
      json store = {{"format", 1},
                    {"kind", "test-plain"},
                    {"room_key", key.pub().Fingerprint()},
                    {"key", std::string(text.view())}};
      return store.dump(2) + "\n";
#else
      break;
#endif
    }
    case KeyStoreKind::kDefault: break;
  }
  return Fail(ErrorCode::USAGE, "no such key store in this build");
}

Result<crypto::Identity> UnlockKeyStore(std::string_view text) {
  const std::string cache_key = crypto::Sha256(text);
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (auto it = Unlocked().find(cache_key); it != Unlocked().end()) {
      return crypto::Identity::FromText(it->second.view());
    }
  }
  auto store = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (store.is_discarded() || !store.is_object()) {
    return Fail(ErrorCode::TAMPERED, "the room's keystore.json is damaged (not a JSON object)");
  }
  auto format = store.find("format");
  if (format == store.end() || !format->is_number_unsigned() || format->get<uint64_t>() != 1) {
    return Damaged("format");
  }
  CR_ASSIGN(auto kind, Field(store, "kind"));
  CR_ASSIGN(auto fp, Field(store, "room_key"));
  Result<crypto::Identity> id = Fail(ErrorCode::TAMPERED, "the room's keystore.json is damaged (field \"kind\")");
  if (kind == "passphrase") {
    id = UnlockPassphrase(store, fp);
  } else if (kind == "pkcs11") {
    id = UnlockPkcs11(store, fp);
  } else if (kind == "test-plain") {
#if CLEANROOM_TEST_HOOKS
    auto key = Field(store, "key");
    id = key ? KeyFromText(*key, fp) : Result<crypto::Identity>(std::unexpected(key.error()));
#else
    return Fail(ErrorCode::KEY_UNPROTECTED,
                "this room's key is stored in clear by the test-only key store; a release build "
                "refuses it: run room protect --key-store passphrase|pkcs11 with a test build");
#endif
  }
  if (!id) return id;
  std::lock_guard<std::mutex> lock(g_mu);
  Unlocked().insert_or_assign(cache_key, id->ToText());
  return id;
}

Result<json> DescribeKeyStore(std::string_view text) {
  auto store = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (store.is_discarded() || !store.is_object()) {
    return Fail(ErrorCode::TAMPERED, "the room's keystore.json is damaged (not a JSON object)");
  }
  CR_ASSIGN(auto kind, Field(store, "kind"));
  json out = {{"key_store", kind}};
  for (const char* f : {"room_key", "kdf", "opslimit", "memlimit", "module", "token", "key_label", "mechanism"}) {
    if (store.contains(f)) out[f] = store[f];
  }
  return out;
}

void ForgetUnlockedKeys() {
  std::lock_guard<std::mutex> lock(g_mu);
  Unlocked().clear();
  g_passphrase.cached.reset();
  g_new_passphrase.cached.reset();
  g_pin.cached.reset();
}

}  // namespace cr::room
