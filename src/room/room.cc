#include "room/room.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "common/files.h"

namespace cr::room {
namespace {

constexpr char kWrapContext[8] = {'c', 'r', 'w', 'r', 'a', 'p', 'k', '1'};

std::string P(const std::string& dir, const std::string& rel) { return JoinPath(dir, rel); }

std::string DataFile(const std::string& dataset, const std::string& id) {
  return "data/" + dataset + "-" + id + ".crdata";
}
std::string KeyFile(const std::string& dataset, const std::string& id) {
  return "keys/" + dataset + "-" + id + ".key";
}

Status WriteJson(const std::string& path, const nlohmann::json& j, mode_t mode = 0600) {
  return WriteFileAtomic(path, j.dump(2) + "\n", mode);
}

nlohmann::json EntryToJson(const DatasetEntry& e) {
  nlohmann::json schema = nlohmann::json::array();
  for (const auto& c : e.schema) schema.push_back({{"name", c.name}, {"type", c.type}, {"role", c.role}});
  return {{"package_id", e.package_id}, {"owner", e.owner},     {"ingested_at", e.ingested_at},
          {"ingested_unix", e.ingested_unix}, {"rows", e.rows}, {"bytes", e.bytes},
          {"digest", e.digest},          {"schema", schema}};
}

using nlohmann::json;

bool IsPackageId(const std::string& id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
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
Status ValidateState(const json& state, const spec::Spec& spec, const std::string& spec_bytes) {
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
  // (rooms made before it was recorded have none).
  if (auto it = state.find("spec_sha256"); it != state.end()) {
    if (!it->is_string()) return Malformed("state.json", "spec_sha256");
    if (it->get<std::string>() != ToHex(crypto::Sha256(spec_bytes))) {
      return Fail(ErrorCode::TAMPERED, "the room's spec.yaml is not the file it was created with");
    }
  }
  auto sigs = state.find("signatures");
  if (sigs == state.end() || !sigs->is_array()) return Malformed("state.json", "signatures");
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

// The room's own key: its mode, then its text. A damaged key is TAMPERED (the
// room's file was changed), unlike a party's key given on the command line.
Result<crypto::Identity> LoadRoomKey(const std::string& dir) {
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
  CR_ASSIGN(auto pub_text, ReadRoomFile(dir, "room.pub"));
  auto pub = crypto::PublicIdentity::FromText(pub_text);
  if (!pub) return Fail(ErrorCode::TAMPERED, "the room's room.pub is damaged");
  // Parties seal their data to room.pub: it must be this key's, or nothing opens.
  if (pub->Fingerprint() != id->pub().Fingerprint()) {
    return Fail(ErrorCode::TAMPERED, "the room's room.pub does not belong to its room.key");
  }
  return id;
}

Result<std::map<std::string, std::string>> LoadSpecKeys(const std::string& dir) {
  CR_ASSIGN(auto keys_json, ReadRoomJson(dir, "spec-keys.json"));
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

}  // namespace

std::string RoomPubPath(const std::string& dir) { return P(dir, "room.pub"); }
std::string AuditLogPath(const std::string& dir) { return P(dir, "audit.log"); }

struct Room::State {
  std::string dir;
  int lock_fd = -1;
  const Clock* clock = &DefaultClock();
  std::optional<crypto::Identity> key;
  spec::Spec spec;
  json state;
  json catalog;
  std::map<std::string, DatasetEntry> datasets;
  std::map<std::string, DisposedEntry> disposed;
  std::unique_ptr<audit::AuditLog> audit;

  ~State() {
    if (lock_fd >= 0) ::close(lock_fd);  // releases the flock
  }

  Status SaveCatalog() {
    json ds = json::object();
    for (const auto& [name, e] : datasets) ds[name] = EntryToJson(e);
    json gone = json::object();
    for (const auto& [name, d] : disposed) gone[name] = DisposedToJson(d);
    catalog["datasets"] = ds;
    catalog["disposed"] = gone;
    return WriteJson(P(dir, "catalog.json"), catalog);
  }

  // catalog.json: datasets of the spec with well-formed entries, each in the
  // replay ledger; the ledger's ids well-formed; disposals well-formed.
  Status LoadCatalog() {
    for (const char* f : {"datasets", "packages"}) {
      auto it = catalog.find(f);
      if (it == catalog.end() || !it->is_object()) return Malformed("catalog.json", f);
    }
    for (auto it = catalog["packages"].begin(); it != catalog["packages"].end(); ++it) {
      const json& p = it.value();
      if (!IsPackageId(it.key()) || !p.is_object() || !IsString(p, "dataset") ||
          !IsString(p, "digest") || !IsString(p, "at")) {
        return Malformed("catalog.json", "packages");
      }
    }
    for (auto it = catalog["datasets"].begin(); it != catalog["datasets"].end(); ++it) {
      if (!spec.FindDataset(it.key())) return Malformed("catalog.json", "datasets");
      CR_ASSIGN(auto e, EntryFromJson(it.key(), it.value()));
      if (!catalog["packages"].contains(e.package_id)) return Malformed("catalog.json", "packages");
      datasets[e.name] = std::move(e);
    }
    // Rooms made before disposals were remembered have no "disposed".
    if (auto it = catalog.find("disposed"); it != catalog.end()) {
      if (!it->is_object()) return Malformed("catalog.json", "disposed");
      for (auto d = it->begin(); d != it->end(); ++d) {
        const json& j = d.value();
        if (!spec.FindDataset(d.key()) || !j.is_object() || !IsString(j, "package_id") ||
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
const Clock& Room::clock() const { return *s_->clock; }
bool Room::active() const { return s_->state.value("status", "") == "active"; }
audit::AuditLog& Room::audit() { return *s_->audit; }
const std::map<std::string, DatasetEntry>& Room::datasets() const { return s_->datasets; }
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
  auto str = [](const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const nlohmann::json& state = s_->state;
  RoomInfo info;
  if (auto it = state.find("format"); it != state.end() && it->is_number_integer()) {
    info.format = it->get<int>();
  }
  info.created_at = str(state, "created_at");
  info.activated_at = str(state, "activated_at");
  if (auto it = state.find("signatures"); it != state.end() && it->is_array()) {
    for (const auto& sig : *it) {
      if (sig.is_object() && !str(sig, "party").empty()) info.signed_by.push_back(str(sig, "party"));
    }
  }
  if (auto it = s_->catalog.find("packages"); it != s_->catalog.end() && it->is_object()) {
    for (const auto& package : *it) {
      if (package.is_object() && !str(package, "dataset").empty()) {
        ++info.packages[str(package, "dataset")];
      }
    }
  }
  return info;
}

Result<crypto::PublicIdentity> Room::Init(const std::string& dir, const std::string& spec_path,
                                          const Clock& clock) {
  CR_ASSIGN(auto spec, spec::Load(spec_path));
  if (PathExists(dir) && !DirIsEmpty(dir)) {
    return Fail(ErrorCode::ROOM_EXISTS, "{} is not empty; a room needs a new folder", dir);
  }
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
    auto text = id.ToText();
    std::string line(text.view());
    line += "\n";
    auto st = WriteFileAtomic(P(tmp, "room.key"), line, 0600, Overwrite::kRefuse);
    sodium_memzero(line.data(), line.size());
    CR_TRY(st);
    CR_TRY(WriteFileAtomic(P(tmp, "room.pub"), id.pub().ToText() + "\n", 0644));
    CR_TRY(WriteFileAtomic(P(tmp, "spec.yaml"), spec.bytes, 0644));
    json keys = json::object();
    for (const auto& party : spec.parties) {
      if (!party.key_bytes.empty()) keys[party.public_key_source] = crypto::Base64Encode(party.key_bytes);
    }
    CR_TRY(WriteJson(P(tmp, "spec-keys.json"), keys, 0644));
    json state = {{"format", 1},
                  {"status", "initialized"},
                  {"collaboration", spec.collaboration},
                  {"spec_hash", spec.hash},
                  {"spec_sha256", ToHex(crypto::Sha256(spec.bytes))},
                  {"created_at", clock.NowRfc3339()},
                  {"signatures", json::array()}};
    CR_TRY(WriteJson(P(tmp, "state.json"), state));
    json catalog = {{"datasets", json::object()},
                    {"packages", json::object()},
                    {"disposed", json::object()}};
    CR_TRY(WriteJson(P(tmp, "catalog.json"), catalog));
    audit::AuditLog log(P(tmp, "audit.log"), id, clock);
    CR_TRY(log.Append("room.init", "operator",
                      {{"collaboration", spec.collaboration},
                       {"spec_hash", spec.hash},
                       {"room_key", id.pub().Fingerprint()}}));
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
  Room room;
  auto& s = *room.s_;
  s.dir = dir;
  if (options.clock) s.clock = options.clock;
  if (!PathExists(P(dir, "state.json"))) {
    // A folder with the room's key or log lost its state; any other is no room.
    if (PathExists(P(dir, "room.key")) || PathExists(AuditLogPath(dir))) {
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
  CR_ASSIGN(auto id, LoadRoomKey(dir));
  s.key.emplace(std::move(id));
  CR_ASSIGN(s.state, ReadRoomJson(dir, "state.json"));
  CR_ASSIGN(s.catalog, ReadRoomJson(dir, "catalog.json"));
  CR_ASSIGN(auto spec_bytes, ReadRoomFile(dir, "spec.yaml"));
  CR_ASSIGN(auto key_files, LoadSpecKeys(dir));
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
  CR_TRY(ValidateState(s.state, s.spec, spec_bytes));
  CR_TRY(s.LoadCatalog());
  if (!PathExists(AuditLogPath(dir))) {
    return Fail(ErrorCode::AUDIT_CHAIN_BROKEN, "the room's audit.log is missing");
  }
  s.audit = std::make_unique<audit::AuditLog>(AuditLogPath(dir), *s.key, *s.clock);

  if (options.mode == OpenMode::kReadWrite) {
    // Refuse to work on a room whose log cannot take the record of that work.
    CR_TRY(s.audit->CheckTail());
    // Finish a disposal a crash interrupted (key gone, data or entry left).
    std::vector<std::string> broken;
    for (const auto& [name, e] : s.datasets) {
      if (!PathExists(P(dir, KeyFile(name, e.package_id)))) broken.push_back(name);
    }
    for (const auto& name : broken) CR_TRY(room.Dispose(name, "recovery", "room"));
    CR_TRY(ShredOrphans(dir, s.datasets, *s.audit));
    // Retention: crypto-shred what has outlived retention_days.
    if (s.spec.retention_days > 0) {
      long long limit = static_cast<long long>(s.spec.retention_days) * 86400;
      long long now = s.clock->NowUnix();
      std::vector<std::string> expired;
      for (const auto& [name, e] : s.datasets) {
        if (now - e.ingested_unix >= limit) expired.push_back(name);
      }
      for (const auto& name : expired) CR_TRY(room.Dispose(name, "retention", "room"));
    }
  }
  return room;
}

Status Room::Activate(const std::vector<std::string>& files) {
  auto& s = *s_;
  auto refuse = [&](const Error& e) {
    return s.audit->Refuse("room.activate.refused", "operator", {{"reason", e.message}}, e);
  };
  if (active()) return refuse(Error{ErrorCode::ROOM_EXISTS, "the room is already active"});
  std::set<std::string> signed_by;
  json sigs = json::array();
  for (const auto& f : files) {
    auto text = ReadFile(f);
    if (!text) return refuse(text.error());
    auto sig = spec::SignatureFromJson(*text);
    if (!sig) return refuse(Error{sig.error().code, fmt::format("{}: {}", f, sig.error().message)});
    if (auto st = spec::Verify(s.spec, *sig); !st) {
      // A signature over other bytes is, for this room, simply not a valid signature.
      ErrorCode code = st.error().code == ErrorCode::SPEC_MISMATCH ? ErrorCode::SIGNATURE_INVALID
                                                                   : st.error().code;
      return refuse(Error{code, fmt::format("{}: {}", f, st.error().message)});
    }
    signed_by.insert(sig->party);
    sigs.push_back(json::parse(spec::SignatureToJson(*sig)));
  }
  std::vector<std::string> missing;
  for (const auto& p : s.spec.parties) {
    if (!signed_by.count(p.name)) missing.push_back(p.name);
  }
  if (!missing.empty()) {
    return refuse(Error{ErrorCode::SIGNATURE_MISSING,
                        fmt::format("no valid signature from: {}", fmt::join(missing, ", "))});
  }
  json state = s.state;
  state["status"] = "active";
  state["activated_at"] = s.clock->NowRfc3339();
  state["signatures"] = sigs;
  if (auto st = WriteJson(P(s.dir, "state.json"), state); !st) return refuse(st.error());
  auto audited = s.audit->Append(
      "room.activate", "operator",
      {{"spec_hash", s.spec.hash},
       {"signed_by", std::vector<std::string>(signed_by.begin(), signed_by.end())}});
  if (!audited) {
    // An activation the log does not show did not happen.
    return std::unexpected(WithCleanup(audited.error(), WriteJson(P(s.dir, "state.json"), s.state)));
  }
  s.state = state;
  return Ok();
}

Status Room::StoreDataset(const engine::MemFile& plain, const std::vector<Segment>& segments,
                          const package::Header& h, const std::string& package_digest,
                          const std::string& owner) {
  auto& s = *s_;
  auto refuse = [&](const Error& e) {
    return s.audit->Refuse("ingest.refused", "operator",
                           {{"dataset", h.dataset}, {"reason", e.message}}, e);
  };
  if (!s.spec.FindDataset(h.dataset) || !IsPackageId(h.package_id)) {
    return refuse(Error{ErrorCode::TAMPERED, "the package's dataset or id is malformed"});
  }
  const std::string data_path = P(s.dir, DataFile(h.dataset, h.package_id));
  const std::string key_path = P(s.dir, KeyFile(h.dataset, h.package_id));
  const std::string ad = h.dataset + "/" + h.package_id;
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
  if (auto it = s.datasets.find(h.dataset); it != s.datasets.end()) previous = it->second;
  DatasetEntry e;
  e.name = h.dataset;
  e.package_id = h.package_id;
  e.owner = owner;
  e.ingested_unix = s.clock->NowUnix();
  e.ingested_at = s.clock->NowRfc3339();
  e.rows = h.row_count;
  e.bytes = written->bytes;
  e.digest = package_digest;
  e.schema = h.schema;
  auto old_datasets = s.datasets;
  auto old_disposed = s.disposed;
  auto old_catalog = s.catalog;
  auto restore = [&]() -> Status {
    s.datasets = old_datasets;
    s.disposed = old_disposed;
    s.catalog = old_catalog;
    return WriteJson(P(s.dir, "catalog.json"), old_catalog);
  };
  s.datasets[h.dataset] = e;
  s.disposed.erase(h.dataset);
  s.catalog["packages"][h.package_id] = {{"dataset", h.dataset}, {"digest", package_digest},
                                         {"at", e.ingested_at}};
  if (auto saved = s.SaveCatalog(); !saved) {
    Status undo = restore();
    if (undo) undo = RemoveBoth(key_path, data_path);
    return refuse(WithCleanup(saved.error(), undo));
  }
  // 4. Audited, or undone: an ingest the log does not show did not happen.
  auto audited = s.audit->Append("dataset.ingest", owner,
                                 {{"dataset", e.name},
                                  {"package_id", e.package_id},
                                  {"rows", e.rows},
                                  {"bytes", e.bytes},
                                  {"replaced", previous.has_value()}});
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
  return s.audit->Append("dataset.dispose", actor,
                         {{"dataset", e.name},
                          {"package_id", e.package_id},
                          {"reason", reason},
                          {"rows", e.rows}});
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

}  // namespace cr::room
