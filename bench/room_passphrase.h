// The passphrase of a benchmark's room: a random one kept in DIR/room.passphrase
// (mode 0600), used by this process and handed to the processes it starts.
#pragma once

#include <cstdlib>
#include <string>

#include "common/error.h"
#include "common/files.h"
#include "crypto/crypto.h"
#include "room/key_store.h"

namespace cr::bench {

// Writes the file when it is missing, then makes it the passphrase source of
// this process (room::UsePassphraseFile) and of its children
// (CLEANROOM_PASSPHRASE_FILE).
inline Status UseRoomPassphrase(const std::string& dir) {
  const std::string path = dir + "/room.passphrase";
  if (!PathExists(path)) {
    CR_TRY(WriteFileAtomic(path, crypto::Base64Encode(crypto::RandomBytes(24)) + "\n", 0600));
  }
  room::UsePassphraseFile(path);
  ::setenv("CLEANROOM_PASSPHRASE_FILE", path.c_str(), /*overwrite=*/1);
  return Ok();
}

}  // namespace cr::bench
