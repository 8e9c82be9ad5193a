// How a room's secret key is held at rest (keystore.json in the room folder):
// sealed under a passphrase (Argon2id), wrapped by a key that never leaves a
// PKCS#11 token (HSM, cloud KMS, TPM), or, in test builds only, in clear; and
// where the passphrase and the token PIN come from (never the command line).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "crypto/crypto.h"

namespace cr::room {

enum class KeyStoreKind {
  kDefault,     // CLEANROOM_KEY_STORE when set, else kPassphrase
  kPassphrase,  // Argon2id (crypto_pwhash, moderate limits) seals the key
  kPkcs11,      // an AES-256 token key encrypts it (CKM_AES_GCM) on the token
  kTestPlain,   // no protection: compiled into test builds only
};

// "passphrase" | "pkcs11" | "test-plain"; USAGE otherwise, and for
// "test-plain" in a build without test hooks.
Result<KeyStoreKind> ParseKeyStoreKind(std::string_view name);
std::string_view KeyStoreKindName(KeyStoreKind kind);

struct KeyStoreChoice {
  KeyStoreKind kind = KeyStoreKind::kDefault;
  std::string pkcs11_module;  // path of the PKCS#11 library (e.g. libsofthsm2.so)
  std::string pkcs11_token;   // the token's label
};

// The file's name inside the room folder.
inline constexpr std::string_view kKeyStoreFile = "keystore.json";

// Where secrets come from, in this order: a file descriptor given with
// --passphrase-fd / --pkcs11-pin-fd (read once per process), the file named by
// CLEANROOM_PASSPHRASE_FILE / CLEANROOM_PKCS11_PIN_FILE (not readable by
// others), then a prompt on the terminal when there is one.
void SetSecretFds(int passphrase_fd, int pin_fd);
// The new passphrase of `room protect` on a room that already has one (the
// current one unlocks it): --new-passphrase-fd N, CLEANROOM_NEW_PASSPHRASE_FILE,
// or the terminal.
void SetNewPassphraseFd(int fd);

// Makes `path` the passphrase source for the rest of the process, before the
// others (the demo's own room: a file it wrote, mode 0600).
void UsePassphraseFile(const std::string& path);

// Resolves kDefault; USAGE for a choice that cannot work (pkcs11 without a
// module or token, test-plain in a release build).
Result<KeyStoreChoice> ResolveChoice(KeyStoreChoice choice);

// Creates the key store text for `room_key` (asking for a new passphrase, or
// generating the token key). USAGE when no passphrase source exists or the
// passphrase is empty; KEY_STORE_UNAVAILABLE / UNLOCK_FAILED for the token.
// `replacing`: the room already has a key store, so a passphrase comes from the
// new-passphrase source.
Result<std::string> CreateKeyStore(const KeyStoreChoice& choice, const crypto::Identity& room_key,
                                   bool replacing = false);

// Unlocks the room key from the key store's text. UNLOCK_FAILED for a wrong
// passphrase or PIN, KEY_STORE_UNAVAILABLE when no passphrase can be read or
// the token (or its key) is absent, TAMPERED when the file is damaged,
// KEY_UNPROTECTED for a test-plain store in a release build. An unlock
// that succeeded is remembered for the process (keyed by the file's exact
// bytes), so a server or the demo pays Argon2id once, not per open.
Result<crypto::Identity> UnlockKeyStore(std::string_view text);

// What the store is, for `room unlock`: its kind and, for pkcs11, module and
// token label; for passphrase, the Argon2id limits. Never a secret.
Result<nlohmann::json> DescribeKeyStore(std::string_view text);

// Forgets every remembered unlock (tests that try a wrong secret after a right one).
void ForgetUnlockedKeys();

}  // namespace cr::room
