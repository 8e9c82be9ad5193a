// The room's tamper-evident audit log: an append-only, hash-chained file of
// signed JSON lines (DIR/audit.log) recording every change and every refusal.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/env.h"
#include "common/error.h"
#include "crypto/crypto.h"

namespace cr::audit {

// One line per entry, keys sorted:
//   {"actor":..,"details":{..},"event":..,"hash":hex,"prev":hex,"seq":N,"sig":b64url,"time":RFC3339}
// seq counts from 1; prev is the previous entry's hash (64 zeros for the first);
// hash = hex SHA-256 of the canonical serialisation of the entry without "hash"
// and "sig" (nlohmann's compact dump(): keys sorted, so every writer and reader
// produces the same bytes); sig = the room's Ed25519 signature over the 32 raw
// hash bytes, URL-safe base64.
//
// What the chain proves and what it does not: changing, deleting, inserting or
// reordering any entry before the last one breaks the chain or a signature, and
// forging a new entry needs the room's key. Cutting entries off the END of the
// log cannot be detected from the file alone -- the shorter log is still a
// valid chain. That is why `audit verify` prints the head hash and entry count:
// parties keep the head they last saw as a witness, and a later log whose chain
// does not pass through that head (or is shorter) has been truncated.
inline constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// Key rotation (`room rotate-key`): one "room.rotate-key" entry, signed by
// the key in force until then, names the next key; entries after it are
// signed by that one. Its details hold "previous_room_key" and
// "new_room_key" (crpub1: texts) and "new_key_sig": the new key's signature
// over RotationMessage(the entry's prev, previous, new), so a chain can only
// pass into a key whose secret signed for that very place in the log.
// Verify, LastEntryWith, CheckTail and Append follow the chain back from the
// room's current key: the whole log stays verifiable across rotations.
inline constexpr std::string_view kRotateEvent = "room.rotate-key";
std::string RotationMessage(std::string_view prev_hash, const crypto::PublicIdentity& from,
                            const crypto::PublicIdentity& to);

// Appends signed entries to one log file. Cheap to construct; holds no file
// open between calls. Appends from several processes are serialised with an
// exclusive flock() on the log, so sequence numbers never fork.
class AuditLog {
 public:
  // `room` signs entries and `clock` stamps them; both must outlive this
  // object. `path` is DIR/audit.log.
  AuditLog(std::string path, const crypto::Identity& room, const Clock& clock = DefaultClock());

  // Appends one entry chained to the current last line and fsyncs it.
  // `event` names what happened ("room.init", "query.refused", ...), `actor`
  // who did it (a party name or key fingerprint). `details` must be a JSON
  // object (or null, stored as {}) holding only names, ids, hashes and counts:
  // NEVER data values or pre-noise numbers -- the log is readable by every
  // party, so keeping values out of it is the caller's job.
  // AUDIT_CHAIN_BROKEN, appending nothing, when the existing last line is
  // incomplete, unparsable, or not a correctly hashed entry signed by `room`:
  // the log is never extended past a damaged tail.
  Status Append(std::string_view event, std::string_view actor, const nlohmann::json& details);

  // Appends the "room.rotate-key" entry (see kRotateEvent), signed by this
  // log's key and countersigned by `next`, with `details` beside the key
  // fields. From then on the log must be appended to with `next`.
  Status AppendRotation(std::string_view actor, const crypto::Identity& next,
                        const nlohmann::json& details);

  // Records that an operation refused `refusal` (details gain its "code") and
  // returns the refusal to pass on. When the record cannot be written the
  // caller gets that failure instead (naming the refusal's code): a refusal
  // nobody can see in the log is not silently reported as a plain refusal.
  std::unexpected<Error> Refuse(std::string_view event, std::string_view actor,
                                nlohmann::json details, const Error& refusal);

  // What Append checks before writing, without writing: AUDIT_CHAIN_BROKEN
  // when the log is missing or empty (a room's log starts with room.init) or
  // its last line is incomplete, unparsable or not an entry signed by `room`.
  // Lets an operation refuse to start work it could not record.
  Status CheckTail() const;

  const std::string& path() const { return path_; }

 private:
  Status AppendEntry(std::string_view event, std::string_view actor, const nlohmann::json& details,
                     const crypto::Identity* next);
  std::string path_;
  const crypto::Identity& room_;
  const Clock& clock_;
};

struct VerifyReport {
  size_t entries = 0;
  // Hash of the last entry: the witness parties keep (kGenesisHash when empty).
  std::string head_hash;
};

// Checks every line: it parses, seq runs 1..n without gaps, prev equals the
// previous entry's hash, hash recomputes, and sig verifies under `room_pub`,
// or, before a rotation into `room_pub`, under the key that rotation names as
// the previous one (and so on back to the first key).
// A missing log verifies as 0 entries. On failure AUDIT_CHAIN_BROKEN naming the
// first bad line by number and why (changed, deleted, inserted, reordered, bad
// signature, incomplete); the message never echoes entry contents.
Result<VerifyReport> Verify(const std::string& path, const crypto::PublicIdentity& room_pub);

// The last entry whose details hold `detail_key` (the room's catalogue hash,
// for rollback detection), found reading back from the end. Every entry read
// on the way must be correctly hashed, signed by `room_pub` and chained to the
// one after it (AUDIT_CHAIN_BROKEN otherwise), so an old entry cannot stand in
// for the newest one. A null json when no entry holds it.
Result<nlohmann::json> LastEntryWith(const std::string& path, const crypto::PublicIdentity& room_pub,
                                     std::string_view detail_key);
// The same for several keys in one pass back: for each key its last entry
// (null when none holds it).
Result<std::map<std::string, nlohmann::json>> LastEntriesWith(
    const std::string& path, const crypto::PublicIdentity& room_pub,
    const std::vector<std::string>& detail_keys);

// The parsed entries in file order, without verification (for `audit show`;
// run Verify first when the answer matters). A missing log is empty;
// AUDIT_CHAIN_BROKEN naming the line when one does not parse.
Result<std::vector<nlohmann::json>> ReadEntries(const std::string& path);

}  // namespace cr::audit
