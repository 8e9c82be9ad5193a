// The room's spec versions (DIR/history.json, sealed like the other room
// files): one record per activated version, each with the exact spec bytes,
// the key files it names and every party's signature, so anyone holding the
// room can see which parties and rules were in force when.
//
// Version 1 is the first activation; `room activate --spec NEW` on an active
// room appends version N+1 (Room::ActivateVersion). state.json records the
// version in force, so a history file that is missing, cut, edited or an older
// copy put back is TAMPERED.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "spec/spec.h"

namespace cr::room {

inline constexpr char kHistoryFile[] = "history.json";

struct VersionRecord {
  uint64_t version = 0;
  std::string spec_hash;               // spec::Spec::hash
  std::string spec_sha256;             // hex SHA-256 of the exact spec bytes
  std::string activated_at;            // RFC 3339
  std::vector<std::string> parties;    // of this version, in spec order
  std::vector<std::string> signed_by;  // every one of them
  std::string spec_bytes;
  std::map<std::string, std::string> key_files;         // public_key as written -> the file's bytes
  nlohmann::json signatures = nlohmann::json::array();  // as state.json holds them
};

// {"format": 1, "versions": [...]}: the bytes travel base64-encoded.
nlohmann::json HistoryToJson(const std::vector<VersionRecord>& versions);
// TAMPERED (naming the field, never contents) unless every record is well
// formed and the versions run 1, 2, ... without a gap.
Result<std::vector<VersionRecord>> HistoryFromJson(const nlohmann::json& j);

// A record's summary for `status`: version, spec_hash, activated_at, parties,
// signed_by (no spec bytes).
nlohmann::ordered_json VersionSummary(const VersionRecord& v);

// Whether a dataset's data stays valid under another version: the same
// owner, privacy unit column and columns (names, types, roles, normalisation,
// bounds). Its rule may differ: rules apply at query time.
bool SameDefinition(const spec::Dataset& a, const spec::Dataset& b);

// What a new version changes against the one in force.
struct VersionChange {
  std::vector<std::string> parties_added;
  std::vector<std::string> parties_removed;
  std::vector<std::string> keys_replaced;      // same party, another key
  std::vector<std::string> datasets_kept;      // stored, same definition
  std::vector<std::string> datasets_disposed;  // stored, definition changed or dropped
};
VersionChange Compare(const spec::Spec& from, const spec::Spec& to,
                      const std::set<std::string>& stored_datasets);

}  // namespace cr::room
