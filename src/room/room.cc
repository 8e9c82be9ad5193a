#include "room/room.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "common/files.h"
#include "diffcheck/unit_sets.h"
#include "results/results.h"
#include "budget/ledger.h"
#include "room/history.h"

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)  // linux/fs.h
#endif

namespace cr::room {
namespace {

// A string field of a room document, or "" when it is absent or not a string:
// read before the document's types are checked, so it must not throw.
std::string StrField(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

constexpr char kWrapContext[8] = {'c', 'r', 'w', 'r', 'a', 'p', 'k', '1'};

std::string P(const std::string& dir, const std::string& rel) { return JoinPath(dir, rel); }

std::string DataFile(const std::string& dataset, const std::string& id) {
  return "data/" + dataset + "-" + id + ".crdata";
}
std::string KeyFile(const std::string& dataset, const std::string& id) {
  return "keys/" + dataset + "-" + id + ".key";
}

nlohmann::json EntryToJson(const DatasetEntry& e) {
  nlohmann::json schema = nlohmann::json::array();
  for (const auto& c : e.schema) schema.push_back({{"name", c.name}, {"type", c.type}, {"role", c.role}});
  return {{"package_id", e.package_id}, {"owner", e.owner},     {"ingested_at", e.ingested_at},
          {"ingested_unix", e.ingested_unix}, {"rows", e.rows}, {"bytes", e.bytes},
          {"digest", e.digest},          {"schema", schema},     {"unique_units", e.unique_units}};
}

using nlohmann::json;

bool IsPackageId(const std::string& id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// A catalogue name the spec allows: a dataset that is not pooled, or a part
// of a pooled dataset named after one of its contributors.
bool KnownEntry(const spec::Spec& spec, const std::string& name) {
  auto at = name.find('@');
  const spec::Dataset* d = spec.FindDataset(name.substr(0, at));
  if (!d) return false;
  if (at == std::string::npos) return !d->pooled();
  return d->ContributorIndex(name.substr(at + 1)) >= 0;
}

// A room file that must be there. TAMPERED when it is gone: a room never loses
// a file, so a missing one was deleted or the folder was damaged.
Result<std::string> ReadRoomFile(const std::string& dir, const std::string& rel) {
  if (!PathExists(P(dir, rel))) return Fail(ErrorCode::TAMPERED, "the room's {} is missing", rel);
  return ReadFile(P(dir, rel));
}

// Parsing without exceptions: a damaged file is an answer, not a crash.
Result<json> ReadRoomJson(const std::string& dir, const std::string& rel) {
  CR_ASSIGN(auto text, ReadRoomFile(dir, rel));
  auto j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Fail(ErrorCode::TAMPERED, "the room's {} is damaged (not a JSON object)", rel);
  }
  return j;
}

// Field checks that never throw. `where` names the file and entry, not values.
bool IsString(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string();
}
bool IsInteger(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer();
}
bool IsCount(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned();
}
std::unexpected<Error> Malformed(std::string_view where, std::string_view field) {
  return Fail(ErrorCode::TAMPERED, "the room's {} is damaged (field \"{}\")", where, field);
}

Result<DatasetEntry> EntryFromJson(const std::string& name, const json& j) {
  const std::string where = "catalog.json entry '" + name + "'";
  if (!j.is_object()) return Malformed(where, "datasets");
  for (const char* f : {"package_id", "owner", "ingested_at", "digest"}) {
    if (!IsString(j, f)) return Malformed(where, f);
  }
  if (!IsInteger(j, "ingested_unix")) return Malformed(where, "ingested_unix");
  if (!IsCount(j, "rows")) return Malformed(where, "rows");
  if (!IsCount(j, "bytes")) return Malformed(where, "bytes");
  auto schema = j.find("schema");
  if (schema == j.end() || !schema->is_array()) return Malformed(where, "schema");
  DatasetEntry e;
  e.name = name;
  e.package_id = j["package_id"].get<std::string>();
  // The id becomes part of file names: only the form the room writes is accepted.
  if (!IsPackageId(e.package_id)) return Malformed(where, "package_id");
  e.owner = j["owner"].get<std::string>();
  e.ingested_at = j["ingested_at"].get<std::string>();
  e.ingested_unix = j["ingested_unix"].get<long long>();
  e.rows = j["rows"].get<int64_t>();
  e.bytes = j["bytes"].get<uint64_t>();
  e.digest = j["digest"].get<std::string>();
  // Absent in catalogues written before the room checked it: not known.
  if (auto u = j.find("unique_units"); u != j.end()) {
    if (!u->is_boolean()) return Malformed(where, "unique_units");
    e.unique_units = u->get<bool>();
  }
  for (const auto& c : *schema) {
    if (!c.is_object() || !IsString(c, "name") || !IsString(c, "type") || !IsString(c, "role")) {
      return Malformed(where, "schema");
    }
    e.schema.push_back({c["name"].get<std::string>(), c["type"].get<std::string>(),
                        c["role"].get<std::string>()});
  }
  return e;
}

json DisposedToJson(const DisposedEntry& d) {
  return {{"package_id", d.package_id}, {"at", d.disposed_at}, {"reason", d.reason}};
}

// state.json: every field the room reads has the type it wrote. An active room
// must still carry a valid signature from every party over its spec, so an
// edited "status" cannot activate a room nobody agreed to.
Status ValidateState(const json& state, const spec::Spec& spec, const std::string& spec_bytes,
                     bool sealed) {
  auto format = state.find("format");
  if (format == state.end() || !format->is_number_unsigned() || format->get<uint64_t>() != 1) {
    return Malformed("state.json", "format");
  }
  for (const char* f : {"status", "collaboration", "spec_hash", "created_at"}) {
    if (!IsString(state, f)) return Malformed("state.json", f);
  }
  const std::string status = state["status"].get<std::string>();
  if (status != "initialized" && status != "active") return Malformed("state.json", "status");
  if (state["spec_hash"].get<std::string>() != spec.hash ||
      state["collaboration"].get<std::string>() != spec.collaboration) {
    return Fail(ErrorCode::TAMPERED, "the room's spec does not match the hash it was created with");
  }
  // The hash of the exact bytes catches edits the parsed spec hash ignores
  // (rooms made before it was recorded have none; sealing adds it).
  if (sealed && !state.contains("spec_sha256")) return Malformed("state.json", "spec_sha256");
  if (auto it = state.find("spec_sha256"); it != state.end()) {
    if (!it->is_string()) return Malformed("state.json", "spec_sha256");
    if (it->get<std::string>() != ToHex(crypto::Sha256(spec_bytes))) {
      return Fail(ErrorCode::TAMPERED, "the room's spec.yaml is not the file it was created with");
    }
  }
  auto sigs = state.find("signatures");
  if (sigs == state.end() || !sigs->is_array()) return Malformed("state.json", "signatures");
  // Rooms made before residency and versions have neither.
  if (auto it = state.find("region"); it != state.end() && !it->is_string()) {
    return Malformed("state.json", "region");
  }
  if (auto it = state.find("version"); it != state.end() && (!it->is_number_unsigned() ||
                                                             it->get<uint64_t>() == 0)) {
    return Malformed("state.json", "version");
  }
  if (status != "active") return Ok();
  if (!IsString(state, "activated_at")) return Malformed("state.json", "activated_at");
  std::set<std::string> signed_by;
  for (const auto& j : *sigs) {
    if (!j.is_object()) return Malformed("state.json", "signatures");
    auto sig = spec::SignatureFromJson(j.dump());
    if (!sig || !spec::Verify(spec, *sig)) {
      return Fail(ErrorCode::TAMPERED, "the room's state.json holds a signature that does not verify");
    }
    signed_by.insert(sig->party);
  }
  for (const auto& p : spec.parties) {
    if (!signed_by.count(p.name)) {
      return Fail(ErrorCode::TAMPERED, "the room is marked active without a signature from {}",
                  p.name);
    }
  }
  return Ok();
}

// A room made before key stores: its key in clear in room.key. Read only so
// that `room protect` can move it into a key store.
Result<crypto::Identity> LoadClearRoomKey(const std::string& dir) {
  const std::string path = P(dir, "room.key");
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return Fail(ErrorCode::TAMPERED, "the room's room.key is missing");
  if (!S_ISREG(st.st_mode)) return Fail(ErrorCode::TAMPERED, "the room's room.key is not a file");
  if (st.st_mode & 077) {
    return Fail(ErrorCode::KEY_INVALID, "{} is readable by others (mode {:o}); chmod 600 it", path,
                st.st_mode & 0777);
  }
  CR_ASSIGN(auto text, ReadFile(path));
  auto id = crypto::Identity::FromText(text);
  sodium_memzero(text.data(), text.size());
  if (!id) return Fail(ErrorCode::TAMPERED, "the room's room.key is damaged ({})", id.error().message);
  return id;
}

// The room's key, from its key store; a room with its key in clear only when
// `clear_ok` (room protect), with *clear set. Then room.pub must be this key's.
Result<crypto::Identity> UnlockRoomKey(const std::string& dir, bool clear_ok, bool* clear,
                                       std::string* store_text) {
  const bool has_store = PathExists(P(dir, std::string(kKeyStoreFile)));
  struct stat st;
  const bool has_clear = ::lstat(P(dir, "room.key").c_str(), &st) == 0;
  *clear = false;
  Result<crypto::Identity> id = Fail(ErrorCode::TAMPERED, "the room's keystore.json is missing");
  if (has_clear && !clear_ok) {
    if (has_store) {
      return Fail(ErrorCode::KEY_UNPROTECTED,
                  "the room's key lies in clear in room.key beside keystore.json (an interrupted "
                  "room protect): run room protect again");
    }
    return Fail(ErrorCode::KEY_UNPROTECTED,
                "this room keeps its key in clear (room.key, made before key stores): run "
                "cleanroom room protect --key-store passphrase|pkcs11 first");
  }
  if (has_clear) {
    *clear = true;
    id = LoadClearRoomKey(dir);
  } else if (has_store) {
    // Before the key is in memory: nothing else of this user reads it from there.
    (void)crypto::MakeProcessNonDumpable();
    CR_ASSIGN(*store_text, ReadFile(P(dir, std::string(kKeyStoreFile))));
    id = UnlockKeyStore(*store_text);
  }
  if (!id) return id;
  CR_ASSIGN(auto pub_text, ReadRoomFile(dir, "room.pub"));
  auto pub = crypto::PublicIdentity::FromText(pub_text);
  if (!pub) return Fail(ErrorCode::TAMPERED, "the room's room.pub is damaged");
  // Parties seal their data to room.pub: it must be this key's, or nothing opens.
  if (pub->Fingerprint() != id->pub().Fingerprint()) {
    return Fail(ErrorCode::TAMPERED, "the room's room.pub does not belong to its key");
  }
  return id;
}

Result<std::map<std::string, std::string>> LoadSpecKeys(const json& keys_json) {
  std::map<std::string, std::string> key_files;
  for (auto it = keys_json.begin(); it != keys_json.end(); ++it) {
    if (!it.value().is_string()) return Malformed("spec-keys.json", it.key());
    auto bytes = crypto::Base64Decode(it.value().get<std::string>());
    if (!bytes) return Malformed("spec-keys.json", it.key());
    key_files[it.key()] = *bytes;
  }
  return key_files;
}

// Appends `cleanup`'s failure to `e`: an undo that failed is said, not dropped.
Error WithCleanup(Error e, const Status& cleanup) {
  if (!cleanup) e.message += fmt::format("; cleaning up also failed: {}", cleanup.error().message);
  return e;
}

Status RemoveBoth(const std::string& key_path, const std::string& data_path) {
  auto key = RemoveFileDurable(key_path);
  auto data = RemoveFileDurable(data_path);
  return key ? data : key;
}

bool DirIsEmpty(const std::string& dir) {
  std::error_code ec;
  return std::filesystem::is_empty(dir, ec) && !ec;
}

// Reads and verifies signature files against `spec`: every party of it must
// have a valid one. The signatures as state.json holds them.
Result<json> VerifySignatureFiles(const spec::Spec& spec, const std::vector<std::string>& files,
                                  std::set<std::string>* signed_by) {
  json sigs = json::array();
  for (const auto& f : files) {
    CR_ASSIGN(auto text, ReadFile(f));
    auto sig = spec::SignatureFromJson(text);
    if (!sig) return Fail(sig.error().code, "{}: {}", f, sig.error().message);
    if (auto st = spec::Verify(spec, *sig); !st) {
      // A signature over other bytes is, for this room, simply not a valid signature.
      ErrorCode code = st.error().code == ErrorCode::SPEC_MISMATCH ? ErrorCode::SIGNATURE_INVALID
                                                                   : st.error().code;
      return Fail(code, "{}: {}", f, st.error().message);
    }
    signed_by->insert(sig->party);
    sigs.push_back(json::parse(spec::SignatureToJson(*sig)));
  }
  std::vector<std::string> missing;
  for (const auto& p : spec.parties) {
    if (!signed_by->count(p.name)) missing.push_back(p.name);
  }
  if (!missing.empty()) {
    return Fail(ErrorCode::SIGNATURE_MISSING, "no valid signature from: {}", fmt::join(missing, ", "));
  }
  return sigs;
}

// Residency: a spec that names a region runs only in a room initialised there.
Status CheckRegion(const spec::Spec& spec, const json& state) {
  if (spec.region.empty()) return Ok();
  const std::string room_region = StrField(state, "region");
  if (room_region == spec.region) return Ok();
  if (room_region.empty()) {
    return Fail(ErrorCode::REGION_MISMATCH,
                "the spec keeps data and results in region '{}', and this room was initialised "
                "without a region: make a room with room init --region {}",
                spec.region, spec.region);
  }
  return Fail(ErrorCode::REGION_MISMATCH,
              "the spec keeps data and results in region '{}', and this room runs in region '{}'",
              spec.region, room_region);
}

std::map<std::string, std::string> KeyFilesOf(const spec::Spec& spec) {
  std::map<std::string, std::string> keys;
  for (const auto& party : spec.parties) {
    if (!party.key_bytes.empty()) keys[party.public_key_source] = party.key_bytes;
  }
  return keys;
}

VersionRecord MakeVersion(uint64_t version, const spec::Spec& spec, const std::string& at,
                          const std::set<std::string>& signed_by, const json& sigs) {
  VersionRecord v;
  v.version = version;
  v.spec_hash = spec.hash;
  v.spec_sha256 = ToHex(crypto::Sha256(spec.bytes));
  v.activated_at = at;
  for (const auto& p : spec.parties) v.parties.push_back(p.name);
  v.signed_by.assign(signed_by.begin(), signed_by.end());
  v.spec_bytes = spec.bytes;
  v.key_files = KeyFilesOf(spec);
  v.signatures = sigs;
  return v;
}

}  // namespace

std::string RoomPubPath(const std::string& dir) { return P(dir, "room.pub"); }
std::string AuditLogPath(const std::string& dir) { return P(dir, "audit.log"); }

json SpecKeysJsonOf(const std::map<std::string, std::string>& keys) {
  json j = json::object();
  for (const auto& [name, bytes] : keys) j[name] = crypto::Base64Encode(bytes);
  return j;
}

struct Room::State {
  std::string dir;
  int lock_fd = -1;
  const Clock* clock = &DefaultClock();
  std::optional<crypto::Identity> key;
  std::optional<MetaSealer> sealer;
  bool clear_key = false;    // opened from a room.key in clear, for room protect
  std::string store_text;    // keystore.json as read
  std::string catalog_sha256;  // hex SHA-256 of catalog.json's bytes, as read or written
  spec::Spec spec;
  json state;
  json catalog;
  json spec_keys;
  std::map<std::string, DatasetEntry> datasets;
  std::map<std::string, DisposedEntry> disposed;
  std::vector<VersionRecord> history;  // empty before activation (and in rooms made before it)
  std::unique_ptr<audit::AuditLog> audit;

  uint64_t Version() const {
    auto it = state.find("version");
    if (it != state.end() && it->is_number_unsigned()) return it->get<uint64_t>();
    return StrField(state, "status") == "active" ? 1 : 0;  // activated before versions were kept
  }

  // history.json against the version state.json names. One version ahead is
  // an update a crash cut short after its history was written: in a
  // read-write open it is finished from the history's record (the spec bytes,
  // key files and signatures it holds), and *recovered says so.
  Status LoadHistory(bool read_write, uint64_t* recovered) {
    *recovered = 0;
    const auto v = state.find("version");
    const uint64_t expected = v != state.end() && v->is_number_unsigned() ? v->get<uint64_t>() : 0;
    if (!PathExists(P(dir, kHistoryFile))) {
      if (expected > 0) return Fail(ErrorCode::TAMPERED, "the room's {} is missing", kHistoryFile);
      return Ok();
    }
    CR_ASSIGN(auto j, ReadMeta(kHistoryFile));
    CR_ASSIGN(auto versions, HistoryFromJson(j));
    if (expected == 0) return Ok();  // left by an activation that was undone
    if (versions.size() == expected + 1 && read_write) {
      const VersionRecord& next = versions.back();
      json next_state = state;
      next_state["spec_hash"] = next.spec_hash;
      next_state["spec_sha256"] = next.spec_sha256;
      next_state["signatures"] = next.signatures;
      next_state["version"] = next.version;
      CR_TRY(sealer->Write(dir, "spec-keys.json", SpecKeysJsonOf(next.key_files), 0644));
      CR_TRY(WriteFileAtomic(P(dir, "spec.yaml"), next.spec_bytes, 0644));
      CR_TRY(sealer->Write(dir, "state.json", next_state));
      state = std::move(next_state);
      *recovered = next.version;
    } else if (versions.size() != expected) {
      return Fail(ErrorCode::TAMPERED,
                  "the room's {} holds {} version(s) and the room is at version {} (an older copy "
                  "was put back, or the file was replaced)",
                  kHistoryFile, versions.size(), expected);
    }
    if (versions.back().spec_sha256 != StrField(state, "spec_sha256")) {
      return Fail(ErrorCode::TAMPERED, "the room's {} does not end with the spec in force",
                  kHistoryFile);
    }
    history = std::move(versions);
    return Ok();
  }

  ~State() {
    if (lock_fd >= 0) ::close(lock_fd);  // releases the flock
  }

  // A sealed metadata file; in a room opened with its key in clear (protect),
  // files not yet sealed are read as they are.
  Result<json> ReadMeta(const std::string& rel, std::string* bytes = nullptr) {
    CR_ASSIGN(auto text, ReadRoomFile(dir, rel));
    if (bytes) *bytes = text;
    if (clear_key && !MetaSealer::LooksSealed(text)) return ReadRoomJson(dir, rel);
    return sealer->Open(rel, text);
  }

  Status WriteCatalog(const json& c) {
    std::string text = sealer->Seal("catalog.json", c);
    CR_TRY(WriteFileAtomic(P(dir, "catalog.json"), text, 0600));
    catalog_sha256 = ToHex(crypto::Sha256(text));
    return Ok();
  }

  uint64_t Generation() const {
    auto it = catalog.find("generation");
    return it != catalog.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
  }
  // What every audit entry that changes the catalogue records about it.
  json CatalogMark() const { return {{"generation", Generation()}, {"sha256", catalog_sha256}}; }

  Status SaveCatalog() {
    json ds = json::object();
    for (const auto& [name, e] : datasets) ds[name] = EntryToJson(e);
    json gone = json::object();
    for (const auto& [name, d] : disposed) gone[name] = DisposedToJson(d);
    // Changed only once written: a failed save leaves the generation the file has.
    json next = catalog;
    next["datasets"] = ds;
    next["disposed"] = gone;
    next["generation"] = Generation() + 1;
    CR_TRY(WriteCatalog(next));
    catalog = std::move(next);
    return Ok();
  }

  // catalog.json: datasets of the spec with well-formed entries, each in the
  // replay ledger; the ledger's ids well-formed; disposals well-formed.
  Status LoadCatalog() {
    for (const char* f : {"datasets", "packages"}) {
      auto it = catalog.find(f);
      if (it == catalog.end() || !it->is_object()) return Malformed("catalog.json", f);
    }
    if (!clear_key && !IsCount(catalog, "generation")) return Malformed("catalog.json", "generation");
    for (auto it = catalog["packages"].begin(); it != catalog["packages"].end(); ++it) {
      const json& p = it.value();
      if (!IsPackageId(it.key()) || !p.is_object() || !IsString(p, "dataset") ||
          !IsString(p, "digest") || !IsString(p, "at")) {
        return Malformed("catalog.json", "packages");
      }
    }
    for (auto it = catalog["datasets"].begin(); it != catalog["datasets"].end(); ++it) {
      if (!KnownEntry(spec, it.key())) return Malformed("catalog.json", "datasets");
      CR_ASSIGN(auto e, EntryFromJson(it.key(), it.value()));
      if (!catalog["packages"].contains(e.package_id)) return Malformed("catalog.json", "packages");
      datasets[e.name] = std::move(e);
    }
    // Rooms made before disposals were remembered have no "disposed".
    if (auto it = catalog.find("disposed"); it != catalog.end()) {
      if (!it->is_object()) return Malformed("catalog.json", "disposed");
      for (auto d = it->begin(); d != it->end(); ++d) {
        const json& j = d.value();
        if (!KnownEntry(spec, d.key()) || !j.is_object() || !IsString(j, "package_id") ||
            !IsPackageId(j["package_id"].get<std::string>()) || !IsString(j, "at") ||
            !IsString(j, "reason")) {
          return Malformed("catalog.json", "disposed");
        }
        disposed[d.key()] = {j["package_id"].get<std::string>(), j["at"].get<std::string>(),
                             j["reason"].get<std::string>()};
      }
    }
    return Ok();
  }

  crypto::SecureBuffer WrapKey() const { return key->DeriveKey(1, kWrapContext); }
};

namespace {

// Finishes shredding replaced packages whose removal failed or was cut short by
// a crash: key or data files no catalogue entry names. Each is audited.
Status ShredOrphans(const std::string& dir, const std::map<std::string, DatasetEntry>& datasets,
                    audit::AuditLog& log) {
  std::set<std::string> live;
  for (const auto& [name, e] : datasets) {
    live.insert(KeyFile(name, e.package_id));
    live.insert(DataFile(name, e.package_id));
  }
  std::set<std::pair<std::string, std::string>> orphans;  // (dataset, package id)
  for (const std::string sub : {"keys", "data"}) {
    const std::string ext = sub == "keys" ? ".key" : ".crdata";
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(P(dir, sub), ec)) {
      std::error_code ec2;
      if (!f.is_regular_file(ec2)) continue;
      const std::string name = f.path().filename().string();
      if (!name.ends_with(ext) || live.count(sub + "/" + name)) continue;
      const std::string stem = name.substr(0, name.size() - ext.size());
      const auto dash = stem.rfind('-');
      if (dash == std::string::npos || !IsPackageId(stem.substr(dash + 1))) continue;
      orphans.insert({stem.substr(0, dash), stem.substr(dash + 1)});
    }
    if (ec) return Fail(ErrorCode::INTERNAL, "cannot list the room's {}: {}", sub, ec.message());
  }
  for (const auto& [dataset, id] : orphans) {
    json details = {{"dataset", dataset}, {"package_id", id}, {"reason", "replaced"}};
    if (auto st = RemoveBoth(P(dir, KeyFile(dataset, id)), P(dir, DataFile(dataset, id))); !st) {
      details["error"] = st.error().message;
      return log.Refuse("dataset.dispose.refused", "room", details, st.error());
    }
    CR_TRY(log.Append("dataset.dispose", "room", details));
  }
  return Ok();
}

}  // namespace

Room::Room() : s_(std::make_unique<State>()) {}
Room::~Room() = default;
Room::Room(Room&&) noexcept = default;
Room& Room::operator=(Room&&) noexcept = default;

const std::string& Room::dir() const { return s_->dir; }
const spec::Spec& Room::spec() const { return s_->spec; }
const crypto::Identity& Room::key() const { return *s_->key; }
const MetaSealer& Room::sealer() const { return *s_->sealer; }
nlohmann::json Room::KeyStoreInfo() const {
  if (s_->clear_key) return {{"key_store", "none (room.key in clear)"}};
  auto info = DescribeKeyStore(s_->store_text);
  return info ? *info : nlohmann::json::object();
}
const Clock& Room::clock() const { return *s_->clock; }
bool Room::active() const { return StrField(s_->state, "status") == "active"; }
audit::AuditLog& Room::audit() { return *s_->audit; }
const std::map<std::string, DatasetEntry>& Room::datasets() const { return s_->datasets; }

std::vector<const DatasetEntry*> Room::Parts(const std::string& dataset) const {
  std::vector<const DatasetEntry*> out;
  const spec::Dataset* d = s_->spec.FindDataset(dataset);
  if (!d) return out;
  std::vector<std::string> names;
  if (d->pooled()) {
    for (const auto& c : d->contributors) names.push_back(PartName(dataset, c));
  } else {
    names.push_back(dataset);
  }
  for (const auto& n : names) {
    if (auto it = s_->datasets.find(n); it != s_->datasets.end()) out.push_back(&it->second);
  }
  return out;
}

std::string PartName(const std::string& dataset, const std::string& contributor) {
  return dataset + "@" + contributor;
}

std::string DatasetOf(const std::string& entry_name) {
  return entry_name.substr(0, entry_name.find('@'));
}
bool Room::PackageSeen(const std::string& id) const {
  return s_->catalog["packages"].contains(id);
}
const DisposedEntry* Room::Disposed(const std::string& dataset) const {
  auto it = s_->disposed.find(dataset);
  return it == s_->disposed.end() ? nullptr : &it->second;
}

RoomInfo Room::Info() const {
  // Open checks these files' shape only where it relies on them; read the rest
  // defensively so inspection never throws.
  const nlohmann::json& state = s_->state;
  RoomInfo info;
  if (auto it = state.find("format"); it != state.end() && it->is_number_integer()) {
    info.format = it->get<int>();
  }
  info.created_at = StrField(state, "created_at");
  info.region = StrField(state, "region");
  info.version = s_->Version();
  info.activated_at = StrField(state, "activated_at");
  if (auto it = state.find("signatures"); it != state.end() && it->is_array()) {
    for (const auto& sig : *it) {
      if (sig.is_object() && !StrField(sig, "party").empty()) info.signed_by.push_back(StrField(sig, "party"));
    }
  }
  if (auto it = s_->catalog.find("packages"); it != s_->catalog.end() && it->is_object()) {
    for (const auto& package : *it) {
      if (package.is_object() && !StrField(package, "dataset").empty()) {
        ++info.packages[StrField(package, "dataset")];
      }
    }
  }
  return info;
}

Result<crypto::PublicIdentity> Room::Init(const std::string& dir, const std::string& spec_path,
                                          const Clock& clock) {
  InitOptions options;
  options.clock = &clock;
  return Init(dir, spec_path, options);
}

Result<crypto::PublicIdentity> Room::Init(const std::string& dir, const std::string& spec_path,
                                          const InitOptions& options) {
  const Clock& clock = options.clock ? *options.clock : DefaultClock();
  CR_ASSIGN(auto spec, spec::Load(spec_path));
  if (!options.region.empty() && !spec::IsRegion(options.region)) {
    return Fail(ErrorCode::USAGE, "--region must match [a-z0-9-]+");
  }
  if (PathExists(dir) && !DirIsEmpty(dir)) {
    return Fail(ErrorCode::ROOM_EXISTS, "{} is not empty; a room needs a new folder", dir);
  }
  // Refused before any file exists: a choice that cannot work leaves no trace.
  CR_ASSIGN(auto choice, ResolveChoice(options.key_store));
  // Build the room beside its final place and rename it in: a crash leaves no half room.
  std::string parent = DirName(dir);
  CR_TRY(MakeDirs(parent));
  std::string tmp = dir + ".init-XXXXXX";
  if (!::mkdtemp(tmp.data())) return Fail(ErrorCode::INTERNAL, "cannot create {}", tmp);
  auto cleanup = [&] {
    std::error_code ec;
    std::filesystem::remove_all(tmp, ec);
  };
  auto build = [&]() -> Result<crypto::PublicIdentity> {
    if (::chmod(tmp.c_str(), 0700) != 0) {
      return Fail(ErrorCode::INTERNAL, "cannot set the mode of {}", tmp);
    }
    CR_TRY(MakeDirs(P(tmp, "data"), 0700));
    CR_TRY(MakeDirs(P(tmp, "keys"), 0700));
    auto id = crypto::Identity::Generate();
    // The key goes to the disk only sealed by its key store.
    CR_ASSIGN(auto store, CreateKeyStore(choice, id));
    CR_TRY(WriteFileAtomic(P(tmp, std::string(kKeyStoreFile)), store, 0600, Overwrite::kRefuse));
    MetaSealer sealer(id);
    CR_TRY(WriteFileAtomic(P(tmp, "room.pub"), id.pub().ToText() + "\n", 0644));
    CR_TRY(WriteFileAtomic(P(tmp, "spec.yaml"), spec.bytes, 0644));
    json keys = json::object();
    for (const auto& party : spec.parties) {
      if (!party.key_bytes.empty()) keys[party.public_key_source] = crypto::Base64Encode(party.key_bytes);
    }
    CR_TRY(sealer.Write(tmp, "spec-keys.json", keys, 0644));
    json state = {{"format", 1},
                  {"status", "initialized"},
                  {"collaboration", spec.collaboration},
                  {"spec_hash", spec.hash},
                  {"spec_sha256", ToHex(crypto::Sha256(spec.bytes))},
                  {"created_at", clock.NowRfc3339()},
                  {"signatures", json::array()}};
    if (!options.region.empty()) state["region"] = options.region;
    CR_TRY(sealer.Write(tmp, "state.json", state));
    json catalog = {{"datasets", json::object()},
                    {"packages", json::object()},
                    {"disposed", json::object()},
                    {"generation", 0}};
    const std::string catalog_text = sealer.Seal("catalog.json", catalog);
    CR_TRY(WriteFileAtomic(P(tmp, "catalog.json"), catalog_text, 0600));
    audit::AuditLog log(P(tmp, "audit.log"), id, clock);
    CR_TRY(log.Append("room.init", "operator",
                      {{"collaboration", spec.collaboration},
                       {"region", options.region.empty() ? json() : json(options.region)},
                       {"spec_hash", spec.hash},
                       {"room_key", id.pub().Fingerprint()},
                       {"key_store", KeyStoreKindName(choice.kind)},
                       {"catalog", {{"generation", 0}, {"sha256", ToHex(crypto::Sha256(catalog_text))}}}}));
    if (PathExists(dir) && ::rmdir(dir.c_str()) != 0) {
      return Fail(ErrorCode::ROOM_EXISTS, "{} is not empty; a room needs a new folder", dir);
    }
    if (::rename(tmp.c_str(), dir.c_str()) != 0) {
      return Fail(ErrorCode::INTERNAL, "cannot create the room at {}", dir);
    }
    CR_TRY(SyncDir(parent));
    return id.pub();
  };
  auto r = build();
  if (!r) cleanup();
  return r;
}

Result<Room> Room::Open(const std::string& dir, OpenMode mode) {
  OpenOptions options;
  options.mode = mode;
  return Open(dir, options);
}

Result<Room> Room::Open(const std::string& dir, const OpenOptions& options) {
  return OpenImpl(dir, options, /*clear_key_ok=*/false);
}

namespace {

// Rollback detection: the newest audit entry that changed the catalogue
// records its generation and hash, and the catalogue must be that one. One
// generation ahead is a commit whose audit record a crash cut off: only the
// room's key can seal a catalogue, so it is the room's own latest, and it is
// recorded now (catalog.recovered).
Status CheckCatalogAgainstLog(const json& entry, uint64_t generation, const std::string& sha256,
                              bool read_write, audit::AuditLog& log) {
  if (entry.is_null()) {
    return Fail(ErrorCode::TAMPERED,
                "the room's audit log records no catalogue (audit.log or catalog.json replaced)");
  }
  const json& mark = entry["details"]["catalog"];
  if (!mark.is_object() || !IsCount(mark, "generation") || !IsString(mark, "sha256")) {
    return Fail(ErrorCode::TAMPERED, "the room's audit log holds a malformed catalogue record");
  }
  const uint64_t logged = mark["generation"].get<uint64_t>();
  if (generation == logged && mark["sha256"].get<std::string>() == sha256) return Ok();
  if (generation == logged + 1) {
    if (!read_write) return Ok();
    return log.Append("catalog.recovered", "room",
                      {{"catalog", {{"generation", generation}, {"sha256", sha256}}}});
  }
  return Fail(ErrorCode::TAMPERED,
              "the room's catalog.json is not the one its audit log records last (generation {} "
              "against {}): an older copy was put back, or the file was replaced",
              generation, logged);
}

// The same for the version in force: the newest entry naming a spec
// (room.init, room.activate, room.update, or their recoveries) names the
// version and spec state.json holds. state.json put back from before a
// version change (with history.json, spec.yaml and spec-keys.json, all validly
// sealed) would bring back a removed party or a replaced key; it is refused.
// One version ahead is a change whose record a crash cut off (state.json is
// its commit point and only the room's key seals it): *one_ahead says so.
Status CheckVersionAgainstLog(const json& entry, uint64_t version, const std::string& spec_hash,
                              bool* one_ahead) {
  *one_ahead = false;
  if (entry.is_null()) {
    return Fail(ErrorCode::TAMPERED,
                "the room's audit log records no spec (audit.log or state.json replaced)");
  }
  const json& d = entry["details"];
  const std::string event = entry.value("event", std::string());
  uint64_t logged = 0;
  if (d.contains("version") && d["version"].is_number_unsigned()) {
    logged = d["version"].get<uint64_t>();
  } else if (event == "room.activate") {
    logged = 1;  // activated before versions were kept
  } else if (event != "room.init") {
    return Fail(ErrorCode::TAMPERED, "the room's audit log holds a malformed version record");
  }
  if (!d["spec_hash"].is_string()) {
    return Fail(ErrorCode::TAMPERED, "the room's audit log holds a malformed version record");
  }
  if (version == logged && d["spec_hash"].get<std::string>() == spec_hash) return Ok();
  if (version == logged + 1) {
    *one_ahead = true;
    return Ok();
  }
  return Fail(ErrorCode::TAMPERED,
              "the room is at version {} of its spec and its audit log records version {} last: "
              "an older state.json was put back, or the file was replaced",
              version, logged);
}

}  // namespace

Result<Room> Room::OpenImpl(const std::string& dir, const OpenOptions& options, bool clear_key_ok) {
  Room room;
  auto& s = *room.s_;
  s.dir = dir;
  if (options.clock) s.clock = options.clock;
  if (!PathExists(P(dir, "state.json"))) {
    // A folder with the room's key or log lost its state; any other is no room.
    if (PathExists(P(dir, "room.key")) || PathExists(P(dir, std::string(kKeyStoreFile))) ||
        PathExists(AuditLogPath(dir))) {
      return Fail(ErrorCode::TAMPERED, "the room's state.json is missing");
    }
    return Fail(ErrorCode::FILE_UNREADABLE, "{} is not a room (no state.json); run room init",
                dir);
  }
  if (options.mode == OpenMode::kReadWrite) {
    s.lock_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s.lock_fd < 0) return Fail(ErrorCode::INTERNAL, "cannot open the room {}", dir);
    // Another command holds the room: wait a while, then say so rather than hang.
    const auto deadline = std::chrono::steady_clock::now() + options.lock_wait;
    while (::flock(s.lock_fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK && errno != EINTR) {
        return Fail(ErrorCode::INTERNAL, "cannot lock the room {}: {}", dir, strerror(errno));
      }
      auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::steady_clock::duration::zero()) {
        return Fail(ErrorCode::ROOM_BUSY, "the room {} is busy (another command holds it)", dir);
      }
      auto nap = std::min<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds(50));
      ::usleep(static_cast<useconds_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(nap).count()));
    }
  }
  CR_ASSIGN(auto id, UnlockRoomKey(dir, clear_key_ok, &s.clear_key, &s.store_text));
  s.key.emplace(std::move(id));
  s.sealer.emplace(*s.key);
  CR_ASSIGN(s.state, s.ReadMeta("state.json"));
  uint64_t recovered_version = 0;
  if (!s.clear_key) {
    CR_TRY(s.LoadHistory(options.mode == OpenMode::kReadWrite, &recovered_version));
  }
  std::string catalog_bytes;
  CR_ASSIGN(s.catalog, s.ReadMeta("catalog.json", &catalog_bytes));
  s.catalog_sha256 = ToHex(crypto::Sha256(catalog_bytes));
  CR_ASSIGN(auto spec_bytes, ReadRoomFile(dir, "spec.yaml"));
  CR_ASSIGN(s.spec_keys, s.ReadMeta("spec-keys.json"));
  CR_ASSIGN(auto key_files, LoadSpecKeys(s.spec_keys));
  auto parsed = spec::ParseWithKeyFiles(spec_bytes, key_files);
  if (!parsed) {
    // A spec this version refuses (keys reserved for differential privacy) in
    // a room made before is not damage: say what is not supported, unless the
    // bytes are not the ones the room was created with.
    auto sha = s.state.find("spec_sha256");
    bool same_bytes = sha == s.state.end() ||
                      (sha->is_string() && sha->get<std::string>() == ToHex(crypto::Sha256(spec_bytes)));
    if (parsed.error().code == ErrorCode::NOT_SUPPORTED && same_bytes) {
      return Fail(ErrorCode::NOT_SUPPORTED, "the room's spec: {}", parsed.error().message);
    }
    return Fail(ErrorCode::TAMPERED, "the room's spec.yaml or spec-keys.json is damaged ({})",
                CodeName(parsed.error().code));
  }
  s.spec = std::move(*parsed);
  CR_TRY(ValidateState(s.state, s.spec, spec_bytes, !s.clear_key));
  CR_TRY(s.LoadCatalog());
  if (!PathExists(AuditLogPath(dir))) {
    return Fail(ErrorCode::AUDIT_CHAIN_BROKEN, "the room's audit.log is missing");
  }
  s.audit = std::make_unique<audit::AuditLog>(AuditLogPath(dir), *s.key, *s.clock);
  // A room with its key in clear was made before catalogues were recorded.
  bool version_ahead = false;
  if (!s.clear_key) {
    CR_TRY(s.audit->CheckTail());  // an empty or cut log is the log's damage, not the files'
    CR_ASSIGN(auto marks, audit::LastEntriesWith(AuditLogPath(dir), s.key->pub(),
                                                  {"catalog", "spec_hash", "unitsets"}));
    CR_TRY(CheckCatalogAgainstLog(marks["catalog"], s.Generation(), s.catalog_sha256,
                                  options.mode == OpenMode::kReadWrite, *s.audit));
    CR_TRY(CheckVersionAgainstLog(marks["spec_hash"], s.Version(), StrField(s.state, "spec_hash"),
                                  &version_ahead));
    CR_ASSIGN(json unit_mark, diffcheck::IndexMark(dir, *s.sealer));
    const json& logged_units = marks["unitsets"];
    CR_TRY(diffcheck::CheckIndexMark(logged_units.is_null() ? logged_units
                                                            : logged_units["details"]["unitsets"],
                                     unit_mark));
  }

  if (options.mode == OpenMode::kReadWrite) {
    // Refuse to work on a room whose log cannot take the record of that work.
    CR_TRY(s.audit->CheckTail());
    if (recovered_version > 0 || version_ahead) {
      const uint64_t v = s.Version();
      CR_TRY(s.audit->Append(v == 1 ? "room.activate.recovered" : "room.update.recovered", "room",
                             {{"version", v}, {"spec_hash", s.spec.hash}}));
    }
    // Finish a disposal a crash interrupted (key gone, data or entry left).
    std::vector<std::string> broken;
    for (const auto& [name, e] : s.datasets) {
      if (!PathExists(P(dir, KeyFile(name, e.package_id)))) broken.push_back(name);
    }
    for (const auto& name : broken) CR_TRY(room.Dispose(name, "recovery", "room"));
    CR_TRY(ShredOrphans(dir, s.datasets, *s.audit));
    CR_TRY(room.ApplyRetention());
  }
  return room;
}

Result<size_t> Room::ApplyRetention() {
  auto& s = *s_;
  // Crypto-shred what has outlived retention_days.
  if (s.spec.retention_days <= 0) return size_t{0};
  long long limit = static_cast<long long>(s.spec.retention_days) * 86400;
  long long now = s.clock->NowUnix();
  std::vector<std::string> expired;
  for (const auto& [name, e] : s.datasets) {
    if (now - e.ingested_unix >= limit) expired.push_back(name);
  }
  for (const auto& name : expired) CR_TRY(Dispose(name, "retention", "room"));
  return expired.size();
}

Status Room::Activate(const std::vector<std::string>& files) {
  auto& s = *s_;
  auto refuse = [&](const Error& e) {
    return s.audit->Refuse("room.activate.refused", "operator", {{"reason", e.message}}, e);
  };
  if (active()) return refuse(Error{ErrorCode::ROOM_EXISTS, "the room is already active"});
  if (auto st = CheckRegion(s.spec, s.state); !st) return refuse(st.error());
  std::set<std::string> signed_by;
  auto sigs = VerifySignatureFiles(s.spec, files, &signed_by);
  if (!sigs) return refuse(sigs.error());
  json state = s.state;
  state["status"] = "active";
  state["activated_at"] = s.clock->NowRfc3339();
  state["signatures"] = *sigs;
  state["version"] = 1;
  std::vector<VersionRecord> history = {
      MakeVersion(1, s.spec, state["activated_at"].get<std::string>(), signed_by, *sigs)};
  // The history first: state.json is the commit point, and names the version it holds.
  if (auto st = s.sealer->Write(s.dir, kHistoryFile, HistoryToJson(history)); !st) {
    return refuse(st.error());
  }
  if (auto st = s.sealer->Write(s.dir, "state.json", state); !st) return refuse(st.error());
  auto audited = s.audit->Append(
      "room.activate", "operator",
      {{"spec_hash", s.spec.hash},
       {"version", 1},
       {"region", StrField(state, "region")},
       {"signed_by", std::vector<std::string>(signed_by.begin(), signed_by.end())}});
  if (!audited) {
    // An activation the log does not show did not happen.
    return std::unexpected(WithCleanup(audited.error(), s.sealer->Write(s.dir, "state.json", s.state)));
  }
  s.state = state;
  s.history = std::move(history);
  return Ok();
}

Result<VersionChange> Room::ActivateVersion(const std::string& spec_path,
                                            const std::vector<std::string>& files) {
  auto& s = *s_;
  auto refuse = [&](const Error& e) {
    return s.audit->Refuse("room.update.refused", "operator",
                           {{"version", s.Version()}, {"reason", e.message}}, e);
  };
  if (!active()) {
    return refuse(Error{ErrorCode::ROOM_NOT_ACTIVE,
                        "the room is not active: activate its first version (room activate --sig "
                        "...) before a new one"});
  }
  auto next = spec::Load(spec_path);
  if (!next) return refuse(next.error());
  if (next->collaboration != s.spec.collaboration) {
    return refuse(Error{ErrorCode::SPEC_MISMATCH,
                        fmt::format("the new spec is for collaboration '{}', the room holds '{}'",
                                    next->collaboration, s.spec.collaboration)});
  }
  if (next->hash == s.spec.hash) {
    return refuse(Error{ErrorCode::ROOM_EXISTS, "the room is already at this version of the spec"});
  }
  // Old signatures stay valid over old bytes: re-activating an earlier
  // version would bring back a party or key that was removed.
  for (const auto& v : s.history) {
    if (v.spec_hash == next->hash) {
      return refuse(Error{ErrorCode::SPEC_MISMATCH,
                          fmt::format("this spec was version {} of the room: a new version needs "
                                      "new bytes (and new signatures)",
                                      v.version)});
    }
  }
  if (auto st = CheckRegion(*next, s.state); !st) return refuse(st.error());
  std::set<std::string> signed_by;
  auto sigs = VerifySignatureFiles(*next, files, &signed_by);
  if (!sigs) return refuse(sigs.error());

  std::set<std::string> stored;
  for (const auto& [name, e] : s.datasets) stored.insert(name);
  VersionChange change = Compare(s.spec, *next, stored);
  // Data the new version defines otherwise is crypto-shredded first (each
  // audited): the catalogue never names a dataset the spec in force lacks.
  for (const auto& name : change.datasets_disposed) CR_TRY(Dispose(name, "spec-change", "operator"));
  bool forget = false;
  for (auto it = s.disposed.begin(); it != s.disposed.end();) {
    if (!next->FindDataset(it->first)) {
      it = s.disposed.erase(it);
      forget = true;
    } else {
      ++it;
    }
  }
  if (forget) {
    if (auto st = s.SaveCatalog(); !st) return refuse(st.error());
  }

  std::vector<VersionRecord> history = s.history;
  if (history.empty()) {
    // Activated before versions were kept: its record is made from state.json.
    const RoomInfo info = Info();
    std::set<std::string> old_signed(info.signed_by.begin(), info.signed_by.end());
    history.push_back(MakeVersion(1, s.spec, StrField(s.state, "activated_at"), old_signed,
                                  s.state["signatures"]));
  }
  const uint64_t version = history.back().version + 1;
  history.push_back(MakeVersion(version, *next, s.clock->NowRfc3339(), signed_by, *sigs));
  json state = s.state;
  state["spec_hash"] = next->hash;
  state["spec_sha256"] = ToHex(crypto::Sha256(next->bytes));
  state["signatures"] = *sigs;
  state["version"] = version;
  const json keys = SpecKeysJsonOf(KeyFilesOf(*next));
  // The history first: from it a read-write open finishes an update a crash
  // cut short; state.json, written last, is the commit point.
  auto old_spec_bytes = s.spec.bytes;
  auto undo = [&]() -> Status {
    CR_TRY(s.sealer->Write(s.dir, "state.json", s.state));
    CR_TRY(WriteFileAtomic(P(s.dir, "spec.yaml"), old_spec_bytes, 0644));
    CR_TRY(s.sealer->Write(s.dir, "spec-keys.json", s.spec_keys, 0644));
    if (s.history.empty()) return RemoveFileDurable(P(s.dir, kHistoryFile));
    return s.sealer->Write(s.dir, kHistoryFile, HistoryToJson(s.history));
  };
  auto commit = [&]() -> Status {
    CR_TRY(s.sealer->Write(s.dir, kHistoryFile, HistoryToJson(history)));
    CR_TRY(s.sealer->Write(s.dir, "spec-keys.json", keys, 0644));
    CR_TRY(WriteFileAtomic(P(s.dir, "spec.yaml"), next->bytes, 0644));
    return s.sealer->Write(s.dir, "state.json", state);
  };
  if (auto st = commit(); !st) return refuse(WithCleanup(st.error(), undo()));
  auto audited = s.audit->Append("room.update", "operator",
                                 {{"version", version},
                                  {"spec_hash", next->hash},
                                  {"previous_spec_hash", s.spec.hash},
                                  {"signed_by", history.back().signed_by},
                                  {"parties_added", change.parties_added},
                                  {"parties_removed", change.parties_removed},
                                  {"keys_replaced", change.keys_replaced},
                                  {"datasets_kept", change.datasets_kept},
                                  {"datasets_disposed", change.datasets_disposed},
                                  {"catalog", s.CatalogMark()}});
  if (!audited) return std::unexpected(WithCleanup(audited.error(), undo()));
  s.state = std::move(state);
  s.spec = std::move(*next);
  s.spec_keys = keys;
  s.history = std::move(history);
  return change;
}

std::string Room::region() const { return StrField(s_->state, "region"); }
uint64_t Room::version() const { return s_->Version(); }
const std::vector<VersionRecord>& Room::history() const { return s_->history; }

Status Room::StoreDataset(const engine::MemFile& plain, const std::vector<Segment>& segments,
                          const package::Header& h, const std::string& package_digest,
                          const std::string& owner) {
  return StoreDataset(plain, segments, h, package_digest, owner, StoreRecord{});
}

Status Room::StoreDataset(const engine::MemFile& plain, const std::vector<Segment>& segments,
                          const package::Header& h, const std::string& package_digest,
                          const std::string& owner, const StoreRecord& record) {
  auto& s = *s_;
  auto refuse = [&](const Error& e) {
    return s.audit->Refuse(record.refused_event, "operator",
                           {{"dataset", h.dataset}, {"reason", e.message}}, e);
  };
  const spec::Dataset* ds = s.spec.FindDataset(h.dataset);
  if (!ds || !IsPackageId(h.package_id) || !ds->Contributes(owner)) {
    return refuse(Error{ErrorCode::TAMPERED, "the package's dataset or id is malformed"});
  }
  // A pooled dataset keeps one part per contributor: re-contributing replaces
  // only the contributor's own part.
  const std::string name = ds->pooled() ? PartName(h.dataset, owner) : h.dataset;
  const std::string data_path = P(s.dir, DataFile(name, h.package_id));
  const std::string key_path = P(s.dir, KeyFile(name, h.package_id));
  const std::string ad = name + "/" + h.package_id;
  // 1. The data, under a fresh key of the room's.
  auto written = WriteDataFile(data_path, plain, segments, ad);
  if (!written) return refuse(written.error());
  const crypto::SecureBuffer& data_key = written->key;
  // 2. Its key, wrapped by the room.
  auto wrap = s.WrapKey();
  if (auto st = WriteFileAtomic(key_path, crypto::AeadSeal(wrap, data_key.view(), ad), 0600); !st) {
    return refuse(WithCleanup(st.error(), RemoveFileDurable(data_path)));
  }
  // 3. Commit: the catalogue names the new package (and remembers its id forever).
  std::optional<DatasetEntry> previous;
  if (auto it = s.datasets.find(name); it != s.datasets.end()) previous = it->second;
  DatasetEntry e;
  e.name = name;
  e.package_id = h.package_id;
  e.owner = owner;
  e.ingested_unix = s.clock->NowUnix();
  e.ingested_at = s.clock->NowRfc3339();
  if (record.keep_ingest_time && previous) {
    e.ingested_unix = previous->ingested_unix;
    e.ingested_at = previous->ingested_at;
  }
  e.rows = h.row_count;
  e.bytes = written->bytes;
  e.digest = package_digest;
  e.schema = h.schema;
  e.unique_units = record.unique_units;
  auto old_datasets = s.datasets;
  auto old_disposed = s.disposed;
  auto old_catalog = s.catalog;
  auto restore = [&]() -> Status {
    s.datasets = old_datasets;
    s.disposed = old_disposed;
    s.catalog = old_catalog;
    return s.WriteCatalog(old_catalog);
  };
  s.datasets[name] = e;
  s.disposed.erase(name);
  s.catalog["packages"][h.package_id] = {{"dataset", h.dataset}, {"digest", package_digest},
                                         {"at", e.ingested_at}};
  if (auto saved = s.SaveCatalog(); !saved) {
    Status undo = restore();
    if (undo) undo = RemoveBoth(key_path, data_path);
    return refuse(WithCleanup(saved.error(), undo));
  }
  // 4. Audited, or undone: an ingest the log does not show did not happen.
  nlohmann::json details = {{"dataset", h.dataset},
                             {"package_id", e.package_id},
                             {"rows", e.rows},
                             {"bytes", e.bytes},
                             {"replaced", previous.has_value()},
                             {"catalog", s.CatalogMark()}};
  if (ds->pooled()) details["contributor"] = owner;
  for (const auto& [k, v] : record.details.items()) details[k] = v;
  auto audited = s.audit->Append(record.event, owner, details);
  if (!audited) {
    Status undo = restore();
    if (undo) undo = RemoveBoth(key_path, data_path);
    return std::unexpected(WithCleanup(audited.error(), undo));
  }
  // 5. The replaced package is crypto-shredded; a key left behind is reported.
  if (previous) {
    if (auto st = RemoveBoth(P(s.dir, KeyFile(previous->name, previous->package_id)),
                             P(s.dir, DataFile(previous->name, previous->package_id)));
        !st) {
      Error e2{st.error().code,
               fmt::format("the new package is stored, but the replaced one was not shredded: {}",
                           st.error().message)};
      return s.audit->Refuse("dataset.dispose.refused", "room",
                             {{"dataset", previous->name},
                              {"package_id", previous->package_id},
                              {"reason", "replaced"},
                              {"error", st.error().message}},
                             e2);
    }
  }
  return Ok();
}

Status Room::Dispose(const std::string& dataset, const std::string& reason,
                     const std::string& actor) {
  auto& s = *s_;
  auto refuse = [&](const Error& e) {
    return s.audit->Refuse("dataset.dispose.refused", actor,
                           {{"dataset", dataset}, {"reason", reason}, {"error", e.message}}, e);
  };
  auto it = s.datasets.find(dataset);
  if (it == s.datasets.end()) {
    if (const DisposedEntry* d = Disposed(dataset)) {
      return refuse(Error{ErrorCode::UNKNOWN_DATASET,
                          fmt::format("'{}' was already disposed ({}, {}): nothing is left to "
                                      "dispose",
                                      dataset, d->reason, d->disposed_at)});
    }
    return refuse(Error{ErrorCode::UNKNOWN_DATASET,
                        fmt::format("the room holds no data for '{}': none was ever ingested",
                                    dataset)});
  }
  DatasetEntry e = it->second;
  // The difference checks' unit sets over this dataset go first: they are
  // derived from its rows, and a failure here leaves the dataset in place.
  auto unit_mark = diffcheck::RemoveCovering(s.dir, *s.sealer, e.name);
  if (!unit_mark) return refuse(unit_mark.error());
  // Key first: once it is gone the ciphertext is noise, whatever happens next.
  if (auto st = RemoveFileDurable(P(s.dir, KeyFile(e.name, e.package_id))); !st) {
    return refuse(st.error());
  }
  if (auto st = RemoveFileDurable(P(s.dir, DataFile(e.name, e.package_id))); !st) {
    return refuse(st.error());  // the key is gone: the next open finishes this
  }
  auto old_disposed = s.disposed;
  s.datasets.erase(it);
  s.disposed[e.name] = {e.package_id, s.clock->NowRfc3339(), reason};
  if (auto st = s.SaveCatalog(); !st) {
    s.datasets[e.name] = e;
    s.disposed = old_disposed;
    return refuse(st.error());
  }
  json details = {{"dataset", e.name},
                  {"package_id", e.package_id},
                  {"reason", reason},
                  {"rows", e.rows},
                  {"catalog", s.CatalogMark()}};
  if (!unit_mark->is_null()) details["unitsets"] = *unit_mark;
  return s.audit->Append("dataset.dispose", actor, details);
}

Result<engine::MemFile> Room::Decrypt(const std::string& dataset,
                                      const std::set<std::string>* columns,
                                      unsigned threads) const {
  auto& s = *s_;
  auto it = s.datasets.find(dataset);
  if (it == s.datasets.end()) {
    return Fail(ErrorCode::UNKNOWN_DATASET, "the room holds no data for '{}'", dataset);
  }
  const auto& e = it->second;
  const std::string ad = e.name + "/" + e.package_id;
  CR_ASSIGN(auto wrapped, ReadFile(P(s.dir, KeyFile(e.name, e.package_id))));
  auto data_key = crypto::AeadOpen(s.WrapKey(), wrapped, ad);
  if (!data_key) return Fail(ErrorCode::TAMPERED, "the wrapped key of '{}' does not open", dataset);
  return ReadDataFile(P(s.dir, DataFile(e.name, e.package_id)), *data_key, ad, columns, threads);
}

Result<std::vector<engine::MemFile>> Room::MountAll(engine::Database& db) const {
  std::vector<engine::MemFile> files;
  for (const auto& [name, e] : s_->datasets) {
    CR_ASSIGN(auto mem, Decrypt(name));
    CR_TRY(db.Execute(fmt::format("CREATE VIEW {} AS SELECT * FROM read_parquet({})",
                                  engine::QuoteIdent(name), engine::QuoteLiteral(mem.path()))));
    files.push_back(std::move(mem));
  }
  return files;
}

// ----- Custody: protect, backup, restore -----------------------------------------

namespace {

// Overwrites a file's bytes before unlinking it: on a plain filesystem the old
// blocks then hold zeros. Snapshots, copy-on-write filesystems and backups taken
// earlier keep what they kept (docs/operations.md).
Status ShredFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Fail(ErrorCode::INTERNAL, "cannot open {} to shred it", path);
  struct stat st;
  bool ok = ::fstat(fd, &st) == 0;
  std::string zeros(ok ? static_cast<size_t>(st.st_size) : 0, '\0');
  ok = ok && ::pwrite(fd, zeros.data(), zeros.size(), 0) == static_cast<ssize_t>(zeros.size()) &&
       ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return Fail(ErrorCode::INTERNAL, "cannot overwrite {}", path);
  return RemoveFileDurable(path);
}

constexpr std::string_view kBackupMagic = "cleanroom-backup 1\n";
constexpr size_t kCopyBlock = 1 << 20;

// Every regular file of the room, relative paths, sorted.
Result<std::vector<std::string>> RoomFiles(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code ec2;
    if (it->is_regular_file(ec2)) {
      out.push_back(std::filesystem::relative(it->path(), dir, ec2).string());
    }
  }
  if (ec) return Fail(ErrorCode::INTERNAL, "cannot list the room {}: {}", dir, ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::string> HashFile(const std::string& path, uint64_t* size) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Fail(ErrorCode::FILE_UNREADABLE, "cannot read {}", path);
  crypto::Sha256Stream h;
  std::string buf(kCopyBlock, '\0');
  *size = 0;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) {
    h.Update(std::string_view(buf.data(), n));
    *size += n;
  }
  const bool err = std::ferror(f);
  std::fclose(f);
  if (err) return Fail(ErrorCode::FILE_UNREADABLE, "cannot read {}", path);
  return ToHex(h.Final());
}

bool SafeRelative(const std::string& rel) {
  if (rel.empty() || rel[0] == '/' || rel.find('\0') != std::string::npos) return false;
  for (const auto& part : std::filesystem::path(rel)) {
    if (part == ".." || part == ".") return false;
  }
  return true;
}

// A length-prefixed block of the archive: "N\n" then N bytes.
Result<std::string> ReadBlock(FILE* f, size_t limit, const char* what) {
  char line[32];
  if (!std::fgets(line, sizeof line, f)) return Fail(ErrorCode::TAMPERED, "the backup is cut before its {}", what);
  char* end = nullptr;
  unsigned long long n = std::strtoull(line, &end, 10);
  if (end == line || *end != '\n' || n > limit) {
    return Fail(ErrorCode::TAMPERED, "the backup's {} is damaged", what);
  }
  std::string out(static_cast<size_t>(n), '\0');
  if (std::fread(out.data(), 1, out.size(), f) != out.size()) {
    return Fail(ErrorCode::TAMPERED, "the backup is cut inside its {}", what);
  }
  return out;
}

}  // namespace

Result<std::string> Room::Protect(const std::string& dir, const KeyStoreChoice& key_store,
                                  const Clock& clock) {
  OpenOptions options;
  options.clock = &clock;
  CR_ASSIGN(auto room, OpenImpl(dir, options, /*clear_key_ok=*/true));
  auto& s = *room.s_;
  CR_ASSIGN(auto choice, ResolveChoice(key_store));
  CR_ASSIGN(auto store, CreateKeyStore(choice, *s.key, /*replacing=*/!s.clear_key));
  std::string from = "room.key (in clear)";
  if (!s.clear_key) {
    auto old = DescribeKeyStore(s.store_text);
    from = old ? old->value("key_store", "unknown") : "unknown";
  }
  auto refuse = [&](const Error& e) {
    return s.audit->Refuse("room.protect.refused", "operator",
                           {{"key_store", KeyStoreKindName(choice.kind)}, {"reason", e.message}}, e);
  };
  if (s.clear_key) {
    // Seal what the room wrote before sealing existed; the catalogue's new
    // generation goes into the audit record below, so rollback detection starts here.
    json state = s.state;
    if (!state.contains("spec_sha256")) {
      auto bytes = ReadRoomFile(dir, "spec.yaml");
      if (!bytes) return refuse(bytes.error());
      state["spec_sha256"] = ToHex(crypto::Sha256(*bytes));
    }
    for (auto st : {s.sealer->Write(dir, "state.json", state),
                    s.sealer->Write(dir, "spec-keys.json", s.spec_keys, 0644),
                    results::SealUnsealed(dir, *s.sealer), s.SaveCatalog()}) {
      if (!st) return refuse(st.error());
    }
    s.state = state;
  }
  if (auto st = WriteFileAtomic(P(dir, std::string(kKeyStoreFile)), store, 0600); !st) {
    return refuse(st.error());
  }
  CR_TRY(s.audit->Append("room.protect", "operator",
                         {{"key_store", KeyStoreKindName(choice.kind)},
                          {"from", from},
                          {"catalog", s.CatalogMark()}}));
  if (s.clear_key) CR_TRY(ShredFile(P(dir, "room.key")));
  return std::string(KeyStoreKindName(choice.kind));
}

namespace {

// How far the room's budget ledger got, as its audit log records it (the
// `budget` anchor each charge writes, see src/budget/ledger.cc): 0 when no
// charge was ever made. A backup carries it, so a restore can refuse one
// that would give spent budget back.
Result<uint64_t> BudgetSeq(const std::string& dir, const crypto::PublicIdentity& pub) {
  CR_ASSIGN(auto last, audit::LastEntryWith(AuditLogPath(dir), pub, "budget"));
  if (last.is_null()) return uint64_t{0};
  const json& mark = last["details"]["budget"];
  if (!IsCount(mark, "seq")) return Fail(ErrorCode::TAMPERED, "the room's audit log holds a malformed budget record");
  return mark["seq"].get<uint64_t>();
}

}  // namespace

Status Room::Backup(const std::string& out) {
  auto& s = *s_;
  auto refuse = [&](const Error& e) {
    return s.audit->Refuse("room.backup.refused", "operator", {{"reason", e.message}}, e);
  };
  if (PathExists(out)) {
    return refuse(Error{ErrorCode::FILE_EXISTS, fmt::format("{} already exists", out)});
  }
  auto files = RoomFiles(s.dir);
  if (!files) return refuse(files.error());
  json list = json::array();
  uint64_t total = 0;
  for (const auto& rel : *files) {
    uint64_t size = 0;
    auto sha = HashFile(P(s.dir, rel), &size);
    if (!sha) return refuse(sha.error());
    list.push_back({{"path", rel}, {"size", size}, {"sha256", *sha}});
    total += size;
  }
  auto budget_seq = BudgetSeq(s.dir, s.key->pub());
  if (!budget_seq) return refuse(budget_seq.error());
  auto unit_mark = diffcheck::IndexMark(s.dir, *s.sealer);
  if (!unit_mark) return refuse(unit_mark.error());
  json manifest = {{"format", 1},
                   {"room_key", s.key->pub().Fingerprint()},
                   {"created_at", s.clock->NowRfc3339()},
                   {"catalog", s.CatalogMark()},
                   {"budget", {{"seq", *budget_seq}}},
                   {"version", s.Version()},
                   {"unitsets_generation",
                    unit_mark->is_null() ? uint64_t{0} : (*unit_mark)["generation"].get<uint64_t>()},
                   {"files", list}};
  const std::string sealed = s.sealer->Seal("backup.manifest", manifest);
  // Written beside `out` and renamed in: a cut backup never looks complete.
  const std::string tmp = out + ".partial";
  FILE* f = std::fopen(tmp.c_str(), "wbx");
  if (!f) return refuse(Error{ErrorCode::FILE_UNREADABLE, fmt::format("cannot create {}", tmp)});
  ::fchmod(::fileno(f), 0600);
  bool ok = std::fwrite(kBackupMagic.data(), 1, kBackupMagic.size(), f) == kBackupMagic.size();
  auto block = [&](std::string_view b) {
    std::string head = std::to_string(b.size()) + "\n";
    ok = ok && std::fwrite(head.data(), 1, head.size(), f) == head.size() &&
         std::fwrite(b.data(), 1, b.size(), f) == b.size();
  };
  // The key store travels first: restore needs it to check the rest.
  block(s.store_text);
  block(sealed);
  std::string buf(kCopyBlock, '\0');
  for (const auto& entry : list) {
    FILE* in = std::fopen(P(s.dir, entry["path"].get<std::string>()).c_str(), "rb");
    ok = ok && in;
    size_t n;
    uint64_t copied = 0;
    while (ok && (n = std::fread(buf.data(), 1, buf.size(), in)) > 0) {
      ok = std::fwrite(buf.data(), 1, n, f) == n;
      copied += n;
    }
    ok = ok && copied == entry["size"].get<uint64_t>();
    if (in) std::fclose(in);
  }
  ok = ok && std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || ::rename(tmp.c_str(), out.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return refuse(Error{ErrorCode::INTERNAL, fmt::format("cannot write the backup {}", out)});
  }
  return s.audit->Append("room.backup", "operator",
                         {{"files", list.size()}, {"bytes", total}, {"catalog", s.CatalogMark()}});
}

Result<std::string> Room::Restore(const std::string& dir, const std::string& archive,
                                  const Clock& clock) {
  FILE* f = std::fopen(archive.c_str(), "rb");
  if (!f) return Fail(ErrorCode::FILE_UNREADABLE, "cannot read the backup {}", archive);
  std::unique_ptr<FILE, int (*)(FILE*)> closer(f, &std::fclose);
  std::string magic(kBackupMagic.size(), '\0');
  if (std::fread(magic.data(), 1, magic.size(), f) != magic.size() || magic != kBackupMagic) {
    return Fail(ErrorCode::BAD_INPUT, "{} is not a cleanroom backup", archive);
  }
  CR_ASSIGN(auto store_text, ReadBlock(f, 1 << 20, "key store"));
  CR_ASSIGN(auto id, UnlockKeyStore(store_text));
  MetaSealer sealer(id);
  CR_ASSIGN(auto sealed, ReadBlock(f, 256u << 20, "manifest"));
  CR_ASSIGN(auto manifest, sealer.Open("backup.manifest", sealed));
  auto files = manifest.find("files");
  if (files == manifest.end() || !files->is_array() || !IsString(manifest, "room_key") ||
      manifest["room_key"].get<std::string>() != id.pub().Fingerprint() ||
      !manifest.contains("catalog") || !manifest["catalog"].is_object() ||
      !IsCount(manifest["catalog"], "generation")) {
    return Fail(ErrorCode::TAMPERED, "the backup's manifest is damaged");
  }
  const uint64_t backup_generation = manifest["catalog"]["generation"].get<uint64_t>();
  // A backup made before ledgers were anchored carries no budget mark: it
  // counts as one made before any charge.
  uint64_t backup_budget_seq = 0;
  if (manifest.contains("budget")) {
    if (!manifest["budget"].is_object() || !IsCount(manifest["budget"], "seq")) {
      return Fail(ErrorCode::TAMPERED, "the backup's manifest is damaged (budget)");
    }
    backup_budget_seq = manifest["budget"]["seq"].get<uint64_t>();
  }
  // Backups made before these were kept count as made at version 1 (or
  // before activation) with no unit sets stored.
  uint64_t backup_version = 0, backup_units = 0;
  for (auto [key, into] : {std::pair{"version", &backup_version},
                           std::pair{"unitsets_generation", &backup_units}}) {
    if (!manifest.contains(key)) continue;
    if (!IsCount(manifest, key)) return Fail(ErrorCode::TAMPERED, "the backup's manifest is damaged ({})", key);
    *into = manifest[key].get<uint64_t>();
  }

  // The room being replaced, if any: held locked, and its log says how far
  // its catalogue got.
  int lock_fd = -1;
  std::unique_ptr<int, void (*)(int*)> unlock(&lock_fd, [](int* fd) {
    if (*fd >= 0) ::close(*fd);
  });
  const bool replacing = PathExists(dir) && !DirIsEmpty(dir);
  uint64_t live_generation = 0;
  if (replacing) {
    if (!PathExists(AuditLogPath(dir))) {
      return Fail(ErrorCode::ROOM_EXISTS, "{} is not empty and holds no room; restore into a new folder", dir);
    }
    auto pub_text = ReadFile(RoomPubPath(dir));
    auto pub = pub_text ? crypto::PublicIdentity::FromText(*pub_text)
                        : Result<crypto::PublicIdentity>(std::unexpected(pub_text.error()));
    if (!pub || *pub != id.pub()) {
      return Fail(ErrorCode::ROOM_EXISTS, "{} holds another room; restore into a new folder", dir);
    }
    lock_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
      return Fail(ErrorCode::ROOM_BUSY, "the room {} is busy (another command holds it)", dir);
    }
    CR_ASSIGN(auto marks, audit::LastEntriesWith(AuditLogPath(dir), id.pub(),
                                                  {"catalog", "spec_hash", "unitsets"}));
    const json& last = marks["catalog"];
    if (!last.is_null() && IsCount(last["details"]["catalog"], "generation")) {
      live_generation = last["details"]["catalog"]["generation"].get<uint64_t>();
    }
    // A version change or difference-checked queries need not change the
    // catalogue: a backup from before them would bring back a removed
    // party's access, or make the checks forget earlier answers.
    const json& spec_rec = marks["spec_hash"];
    if (!spec_rec.is_null()) {
      const json& d = spec_rec["details"];
      const uint64_t live_version =
          IsCount(d, "version") ? d["version"].get<uint64_t>()
                                : (spec_rec.value("event", std::string()) == "room.init" ? 0 : 1);
      if (manifest.contains("version") ? backup_version < live_version : live_version > 1) {
        return Fail(ErrorCode::BACKUP_STALE,
                    "the backup is of version {} of the spec and the room's audit log records "
                    "version {}: restoring it would bring back what the newer version removed",
                    backup_version, live_version);
      }
    }
    const json& units_rec = marks["unitsets"];
    if (!units_rec.is_null() && IsCount(units_rec["details"]["unitsets"], "generation")) {
      const uint64_t live_units = units_rec["details"]["unitsets"]["generation"].get<uint64_t>();
      if (backup_units < live_units) {
        return Fail(ErrorCode::BACKUP_STALE,
                    "the backup's difference-check index (generation {}) is older than the one "
                    "the room's audit log records (generation {}): restoring it would make the "
                    "checks forget earlier answers",
                    backup_units, live_units);
      }
    }
    if (backup_generation < live_generation) {
      return Fail(ErrorCode::BACKUP_STALE,
                  "the backup's catalogue (generation {}) is older than the one the room's audit "
                  "log records (generation {}): restoring it would roll the room back",
                  backup_generation, live_generation);
    }
    // The catalogue alone does not see DP queries: a backup of the same
    // catalogue taken before some charges would give their budget back.
    CR_ASSIGN(uint64_t live_budget_seq, BudgetSeq(dir, id.pub()));
    if (backup_budget_seq < live_budget_seq) {
      return Fail(ErrorCode::BACKUP_STALE,
                  "the backup's budget ledger (entry {}) is older than the one the room's audit "
                  "log records (entry {}): restoring it would give spent privacy budget back",
                  backup_budget_seq, live_budget_seq);
    }
  }

  const std::string parent = DirName(dir);
  CR_TRY(MakeDirs(parent));
  std::string tmp = dir + ".restore-XXXXXX";
  if (!::mkdtemp(tmp.data())) return Fail(ErrorCode::INTERNAL, "cannot create {}", tmp);
  auto cleanup = [&] {
    std::error_code ec;
    std::filesystem::remove_all(tmp, ec);
  };
  auto extract = [&]() -> Status {
    if (::chmod(tmp.c_str(), 0700) != 0) return Fail(ErrorCode::INTERNAL, "cannot set the mode of {}", tmp);
    std::string buf(kCopyBlock, '\0');
    for (const auto& e : *files) {
      if (!e.is_object() || !IsString(e, "path") || !IsCount(e, "size") || !IsString(e, "sha256") ||
          !SafeRelative(e["path"].get<std::string>())) {
        return Fail(ErrorCode::TAMPERED, "the backup's manifest is damaged (files)");
      }
      const std::string rel = e["path"].get<std::string>();
      const std::string path = P(tmp, rel);
      CR_TRY(MakeDirs(DirName(path), 0700));
      FILE* outf = std::fopen(path.c_str(), "wbx");
      if (!outf) return Fail(ErrorCode::INTERNAL, "cannot create {}", path);
      ::fchmod(::fileno(outf), rel == "room.pub" || rel == "spec.yaml" || rel == "audit.log" ? 0644 : 0600);
      crypto::Sha256Stream h;
      uint64_t left = e["size"].get<uint64_t>();
      bool ok = true;
      while (ok && left > 0) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
        ok = std::fread(buf.data(), 1, n, f) == n && std::fwrite(buf.data(), 1, n, outf) == n;
        h.Update(std::string_view(buf.data(), n));
        left -= n;
      }
      ok = std::fflush(outf) == 0 && ::fsync(::fileno(outf)) == 0 && ok;
      ok = std::fclose(outf) == 0 && ok;
      if (!ok) return Fail(ErrorCode::TAMPERED, "the backup is cut inside {}", rel);
      if (ToHex(h.Final()) != e["sha256"].get<std::string>()) {
        return Fail(ErrorCode::TAMPERED, "the backup's copy of {} was changed", rel);
      }
    }
    if (std::fgetc(f) != EOF) return Fail(ErrorCode::TAMPERED, "the backup has bytes after its last file");
    CR_ASSIGN(auto copied_store, ReadFile(P(tmp, std::string(kKeyStoreFile))));
    if (copied_store != store_text) return Fail(ErrorCode::TAMPERED, "the backup's key store copies differ");
    // The restored folder must be a room that opens cleanly on its own.
    OpenOptions check;
    check.mode = OpenMode::kReadOnly;
    check.clock = &clock;
    CR_ASSIGN(auto room, Open(tmp, check));
    (void)room;
    return Ok();
  };
  if (auto st = extract(); !st) {
    cleanup();
    return std::unexpected(st.error());
  }
  std::string kept;
  if (replacing) {
    kept = fmt::format("{}.before-restore-{}", dir, clock.NowUnix());
    if (::rename(dir.c_str(), kept.c_str()) != 0) {
      cleanup();
      return Fail(ErrorCode::INTERNAL, "cannot move {} aside", dir);
    }
  } else if (PathExists(dir) && ::rmdir(dir.c_str()) != 0) {
    cleanup();
    return Fail(ErrorCode::ROOM_EXISTS, "{} is not empty", dir);
  }
  if (::rename(tmp.c_str(), dir.c_str()) != 0) {
    if (!kept.empty()) (void)!::rename(kept.c_str(), dir.c_str());
    cleanup();
    return Fail(ErrorCode::INTERNAL, "cannot move the restored room to {}", dir);
  }
  CR_TRY(SyncDir(parent));
  OpenOptions options;
  options.clock = &clock;
  options.lock_wait = std::chrono::milliseconds(0);
  CR_ASSIGN(auto room, Open(dir, options));
  CR_TRY(room.audit().Append("room.restore", "operator",
                             {{"backup_created_at", manifest.value("created_at", "")},
                              {"replaced", replacing},
                              {"replaced_catalog_generation", live_generation},
                              {"catalog", room.s_->CatalogMark()}}));
  return kept;
}

// ----- Rotating the room key ------------------------------------------------------

namespace {

// What rotate-key does with each file of the room, by its path in the room.
enum class RotateAction { kLink, kRewrap, kReseal, kRekeyUnits, kOwn };

RotateAction ActionFor(const std::string& rel, std::string_view text_head) {
  if (rel == kKeyStoreFile || rel == "room.pub" || rel == "audit.log" || rel == "budget.log" ||
      rel == "usage.log" || rel.starts_with("budget-answers/")) {
    return RotateAction::kOwn;  // written by RotateKey itself (or budget::Ledger::Rekey)
  }
  if (rel.starts_with("keys/") && rel.ends_with(".key")) return RotateAction::kRewrap;
  if (rel.starts_with("unitsets/") && rel.ends_with(".units")) return RotateAction::kRekeyUnits;
  if (rel.ends_with(".json") && !text_head.empty()) return RotateAction::kReseal;
  return RotateAction::kLink;
}

// A hard link, or a copy where the filesystem has none: ciphertext under its own key.
Status LinkOrCopy(const std::string& from, const std::string& to) {
  if (::link(from.c_str(), to.c_str()) == 0) return Ok();
  std::error_code ec;
  std::filesystem::copy_file(from, to, ec);
  if (ec) return Fail(ErrorCode::INTERNAL, "cannot copy {}: {}", from, ec.message());
  return Ok();
}

// Removes rebuilt or replaced folders a crash left beside DIR: DIR.rotate-*.
void SweepRotations(const std::string& dir) {
  const std::string parent = DirName(dir);
  const std::string prefix = std::filesystem::path(dir).filename().string() + ".rotate-";
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator(parent, ec)) {
    const std::string name = f.path().filename().string();
    if (!name.starts_with(prefix)) continue;
    const std::string store = P(f.path().string(), std::string(kKeyStoreFile));
    if (PathExists(store)) (void)ShredFile(store);
    std::error_code ec2;
    std::filesystem::remove_all(f.path(), ec2);
  }
}

}  // namespace

Result<crypto::PublicIdentity> Room::RotateKey(const std::string& dir, const KeyStoreChoice& key_store,
                                               const Clock& clock) {
  OpenOptions options;
  options.clock = &clock;
  CR_ASSIGN(auto room, Open(dir, options));
  auto& s = *room.s_;
  auto refuse = [&](const Error& e) {
    return s.audit->Refuse("room.rotate-key.refused", "operator", {{"reason", e.message}}, e);
  };
  SweepRotations(dir);
  // The kind that holds the key now, unless another is asked for.
  KeyStoreChoice choice = key_store;
  if (choice.kind == KeyStoreKind::kDefault) {
    auto info = DescribeKeyStore(s.store_text);
    if (!info) return refuse(info.error());
    auto kind = ParseKeyStoreKind(info->value("key_store", ""));
    if (!kind) return refuse(kind.error());
    choice.kind = *kind;
    if (choice.pkcs11_module.empty()) choice.pkcs11_module = info->value("module", "");
    if (choice.pkcs11_token.empty()) choice.pkcs11_token = info->value("token", "");
  }
  auto resolved = ResolveChoice(choice);
  if (!resolved) return refuse(resolved.error());
  auto next = crypto::Identity::Generate();
  auto store = CreateKeyStore(*resolved, next);
  if (!store) return refuse(store.error());
  auto files = RoomFiles(dir);
  if (!files) return refuse(files.error());

  std::string tmp = dir + ".rotate-XXXXXX";
  if (!::mkdtemp(tmp.data())) return refuse(Error{ErrorCode::INTERNAL, fmt::format("cannot create {}", tmp)});
  auto cleanup = [&] {
    std::error_code ec;
    std::filesystem::remove_all(tmp, ec);
  };
  MetaSealer next_sealer(next);
  const crypto::SecureBuffer old_wrap = s.WrapKey();
  const crypto::SecureBuffer new_wrap = next.DeriveKey(1, kWrapContext);
  const crypto::SecureBuffer old_units = s.key->DeriveKey(1, kUnitSetsKeyContext);
  const crypto::SecureBuffer new_units = next.DeriveKey(1, kUnitSetsKeyContext);
  size_t rewrapped = 0, resealed = 0, rekeyed_units = 0;
  std::string catalog_sha256;
  auto build = [&]() -> Status {
    if (::chmod(tmp.c_str(), 0700) != 0) return Fail(ErrorCode::INTERNAL, "cannot set the mode of {}", tmp);
    for (const auto& rel : *files) {
      const std::string from = P(dir, rel);
      const std::string to = P(tmp, rel);
      CR_TRY(MakeDirs(DirName(to), 0700));
      std::string text;
      if (rel.ends_with(".json") || rel.ends_with(".units") ||
          (rel.starts_with("keys/") && rel.ends_with(".key"))) {
        CR_ASSIGN(text, ReadFile(from));
      }
      const bool sealed = rel.ends_with(".json") && MetaSealer::LooksSealed(text);
      switch (ActionFor(rel, sealed ? std::string_view(text) : std::string_view())) {
        case RotateAction::kOwn:
          break;
        case RotateAction::kRewrap: {
          // keys/NAME-ID.key, bound to "NAME/ID" (StoreDataset).
          const std::string stem = rel.substr(5, rel.size() - 5 - 4);
          const auto dash = stem.rfind('-');
          if (dash == std::string::npos) return Fail(ErrorCode::TAMPERED, "the room's {} is misnamed", rel);
          const std::string ad = stem.substr(0, dash) + "/" + stem.substr(dash + 1);
          auto data_key = crypto::AeadOpen(old_wrap, text, ad);
          if (!data_key) return Fail(ErrorCode::TAMPERED, "the room's {} does not open", rel);
          CR_TRY(WriteFileAtomic(to, crypto::AeadSeal(new_wrap, data_key->view(), ad), 0600));
          ++rewrapped;
          break;
        }
        case RotateAction::kRekeyUnits: {
          // A difference check's unit sets, bound to their path in the room.
          auto plain = crypto::AeadOpen(old_units, text, rel);
          if (!plain) return Fail(ErrorCode::TAMPERED, "the room's {} does not open", rel);
          CR_TRY(WriteFileAtomic(to, crypto::AeadSeal(new_units, plain->view(), rel), 0600));
          ++rekeyed_units;
          break;
        }
        case RotateAction::kReseal: {
          // Sealed under its path in the room (state.json, results/ID/meta.json, ...).
          CR_ASSIGN(auto body, s.sealer->Open(rel, text));
          const std::string sealed_text = next_sealer.Seal(rel, body);
          struct stat st;
          const mode_t mode = ::stat(from.c_str(), &st) == 0 ? (st.st_mode & 0777) : 0600;
          CR_TRY(WriteFileAtomic(to, sealed_text, mode));
          if (rel == "catalog.json") catalog_sha256 = ToHex(crypto::Sha256(sealed_text));
          ++resealed;
          break;
        }
        case RotateAction::kLink:
          CR_TRY(LinkOrCopy(from, to));
          break;
      }
    }
    CR_TRY(WriteFileAtomic(P(tmp, std::string(kKeyStoreFile)), *store, 0600, Overwrite::kRefuse));
    CR_TRY(WriteFileAtomic(P(tmp, "room.pub"), next.pub().ToText() + "\n", 0644));
    CR_ASSIGN(size_t budget_entries, budget::Ledger::Rekey(dir, tmp, *s.key, next));
    // The log moves as it is, and the old key hands it to the new one.
    CR_ASSIGN(auto log_bytes, ReadFile(AuditLogPath(dir)));
    CR_TRY(WriteFileAtomic(AuditLogPath(tmp), log_bytes, 0644));
    audit::AuditLog log(AuditLogPath(tmp), *s.key, *s.clock);
    CR_TRY(log.AppendRotation(
        "operator", next,
        {{"room_key", next.pub().Fingerprint()},
         {"previous_room_key_fingerprint", s.key->pub().Fingerprint()},
         {"key_store", KeyStoreKindName(resolved->kind)},
         {"data_keys_rewrapped", rewrapped},
         {"files_resealed", resealed},
         {"unit_sets_rekeyed", rekeyed_units},
         {"budget_records_rekeyed", budget_entries},
         {"catalog", {{"generation", s.Generation()}, {"sha256", catalog_sha256}}}}));
    // The rebuilt room must open on its own before it replaces anything.
    OpenOptions check;
    check.mode = OpenMode::kReadOnly;
    check.clock = s.clock;
    CR_ASSIGN(auto rotated, Open(tmp, check));
    if (rotated.key().pub() != next.pub()) {
      return Fail(ErrorCode::INTERNAL, "the rebuilt room does not hold the new key");
    }
    return SyncDir(tmp);
  };
  if (auto st = build(); !st) {
    cleanup();
    return refuse(st.error());
  }
  // One atomic step: DIR is the old room or the new one, never neither.
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) != 0) {
    const Error e{ErrorCode::INTERNAL, fmt::format("cannot swap {} into place: {}", tmp, strerror(errno))};
    cleanup();
    return refuse(e);
  }
  CR_TRY(SyncDir(DirName(dir)));
  // tmp now holds the old room: its key store and wrapped keys go first.
  const std::string old_dir = tmp;
  Status shredded = ShredFile(P(old_dir, std::string(kKeyStoreFile)));
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator(P(old_dir, "keys"), ec)) {
    if (shredded) shredded = ShredFile(f.path().string());
  }
  std::filesystem::remove_all(old_dir, ec);
  if (!shredded || ec) {
    return Fail(ErrorCode::INTERNAL,
                "the room key is rotated, but the old folder {} could not be removed: delete it "
                "(it holds the old key store)",
                old_dir);
  }
  return next.pub();
}

}  // namespace cr::room
