// Room metadata files (state, catalogue, spec keys, result and budget records)
// authenticated under a key derived from the room key and bound to their name.
//
// A sealed file is still a JSON object: the writer appends a last member
// "mac": 64 hex digits, a keyed BLAKE2b-256 over the file's name and every
// other byte of the file. The MAC covers the raw bytes, not the parsed value,
// so any changed byte (whitespace included), a cut, or a file moved under
// another name or into another room fails with TAMPERED before it is parsed.
#pragma once

#include <string>
#include <string_view>

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "crypto/crypto.h"

namespace cr::room {

// Subkey contexts (crypto_kdf) of room files that other modules write and
// room rotate-key re-encrypts: the difference checks' unit sets
// (unitsets/*.units, each bound to its path in the room).
inline constexpr char kUnitSetsKeyContext[9] = "crunits_";

class MetaSealer {
 public:
  // The MAC key is a subkey of the room key (crypto_kdf), never the key itself.
  explicit MetaSealer(const crypto::Identity& room_key);

  // The text of `body` (a JSON object without a "mac" member) sealed under `name`.
  std::string Seal(std::string_view name, const nlohmann::json& body) const;
  // The body of a sealed text; TAMPERED (naming `name`, never contents) when
  // the MAC is absent, malformed or wrong, or the text is not a JSON object.
  Result<nlohmann::json> Open(std::string_view name, std::string_view text) const;

  // Sealed atomic write of DIR/NAME, and the matching read (TAMPERED when the
  // file is missing: the room never loses a metadata file).
  Status Write(const std::string& dir, const std::string& name, const nlohmann::json& body,
               mode_t mode = 0600) const;
  Result<nlohmann::json> Read(const std::string& dir, const std::string& name) const;

  // Whether a text carries a seal at all (a room made before sealing, during
  // `room protect`); says nothing about whether the seal is valid.
  static bool LooksSealed(std::string_view text);

 private:
  std::string Mac(std::string_view name, std::string_view head, std::string_view tail) const;
  crypto::SecureBuffer key_;
};

}  // namespace cr::room
