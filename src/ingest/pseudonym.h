// Identifier normalisation and keyed pseudonyms: the party-side transformation
// that turns an email or phone number into a 128-bit value the room can join
// on but never reverse (it does not hold the shared secret).
#pragma once

#include <string>
#include <string_view>

#include "crypto/crypto.h"
#include "engine/engine.h"
#include "spec/spec.h"

namespace cr::ingest {

// email: trim and lower-case; phone: digits only; text: trim; none: as is.
// Returns false when nothing is left (the identifier becomes NULL).
bool Normalize(spec::Normalize mode, std::string_view in, std::string* out);

// The per-column pseudonym key: HKDF-SHA256(secret, salt = collaboration id,
// info = "cleanroom/pseudonym/v1/" + column). Columns that join share a name,
// hence a key, across datasets.
crypto::SecureBuffer PseudonymKey(const crypto::SecureBuffer& secret,
                                  std::string_view collaboration, std::string_view column);

// normalise, then the first 16 bytes of HMAC-SHA256 under the column key.
class Pseudonymizer : public engine::StringMapper {
 public:
  Pseudonymizer(const crypto::SecureBuffer& key, spec::Normalize mode);
  bool Map(std::string_view in, unsigned char out[16]) const override;

 private:
  crypto::KeyedHmac hmac_;
  spec::Normalize mode_;
};

}  // namespace cr::ingest
