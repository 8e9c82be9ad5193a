#include "room/room.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "common/files.h"

namespace cr::room {
namespace {

constexpr char kWrapContext[8] = {'c', 'r', 'w', 'r', 'a', 'p', 'k', '1'};

std::string P(const std::string& dir, const std::string& rel) { return dir + "/" + rel; }

std::string DataFile(const std::string& dataset, const std::string& id) {
  return "data/" + dataset + "-" + id + ".crdata";
}
std::string KeyFile(const std::string& dataset, const std::string& id) {
  return "keys/" + dataset + "-" + id + ".key";
}

Result<nlohmann::json> ReadJson(const std::string& path) {
  CR_ASSIGN(auto text, ReadFile(path));
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Fail(ErrorCode::TAMPERED, "{} is not valid room state", path);
  }
  return j;
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

Result<DatasetEntry> EntryFromJson(const std::string& name, const nlohmann::json& j) {
  try {
    DatasetEntry e;
    e.name = name;
    e.package_id = j.at("package_id").get<std::string>();
    e.owner = j.at("owner").get<std::string>();
    e.ingested_at = j.at("ingested_at").get<std::string>();
    e.ingested_unix = j.at("ingested_unix").get<long long>();
    e.rows = j.at("rows").get<int64_t>();
    e.bytes = j.at("bytes").get<uint64_t>();
    e.digest = j.at("digest").get<std::string>();
    for (const auto& c : j.at("schema")) {
      e.schema.push_back({c.at("name"), c.at("type"), c.at("role")});
    }
    return e;
  } catch (const nlohmann::json::exception&) {
    return Fail(ErrorCode::TAMPERED, "catalog entry for '{}' is malformed", name);
  }
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
  std::optional<crypto::Identity> key;
  spec::Spec spec;
  nlohmann::json state;
  nlohmann::json catalog;
  std::map<std::string, DatasetEntry> datasets;
  std::unique_ptr<audit::AuditLog> audit;

  ~State() {
    if (lock_fd >= 0) ::close(lock_fd);  // releases the flock
  }

  Status SaveCatalog() {
    nlohmann::json ds = nlohmann::json::object();
    for (const auto& [name, e] : datasets) ds[name] = EntryToJson(e);
    catalog["datasets"] = ds;
    return WriteJson(P(dir, "catalog.json"), catalog);
  }

  crypto::SecureBuffer WrapKey() const { return key->DeriveKey(1, kWrapContext); }
};

Room::Room() : s_(std::make_unique<State>()) {}
Room::~Room() = default;
Room::Room(Room&&) noexcept = default;
Room& Room::operator=(Room&&) noexcept = default;

const std::string& Room::dir() const { return s_->dir; }
const spec::Spec& Room::spec() const { return s_->spec; }
const crypto::Identity& Room::key() const { return *s_->key; }
bool Room::active() const { return s_->state.value("status", "") == "active"; }
audit::AuditLog& Room::audit() { return *s_->audit; }
const std::map<std::string, DatasetEntry>& Room::datasets() const { return s_->datasets; }
bool Room::PackageSeen(const std::string& id) const {
  return s_->catalog["packages"].contains(id);
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

Result<crypto::PublicIdentity> Room::Init(const std::string& dir, const std::string& spec_path) {
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
    ::chmod(tmp.c_str(), 0700);
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
    nlohmann::json keys = nlohmann::json::object();
    for (const auto& party : spec.parties) {
      if (!party.key_bytes.empty()) keys[party.public_key_source] = crypto::Base64Encode(party.key_bytes);
    }
    CR_TRY(WriteJson(P(tmp, "spec-keys.json"), keys, 0644));
    nlohmann::json state = {{"format", 1},
                            {"status", "initialized"},
                            {"collaboration", spec.collaboration},
                            {"spec_hash", spec.hash},
                            {"created_at", NowRfc3339()},
                            {"signatures", nlohmann::json::array()}};
    CR_TRY(WriteJson(P(tmp, "state.json"), state));
    nlohmann::json catalog = {{"datasets", nlohmann::json::object()},
                              {"packages", nlohmann::json::object()}};
    CR_TRY(WriteJson(P(tmp, "catalog.json"), catalog));
    audit::AuditLog log(P(tmp, "audit.log"), id);
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
  Room room;
  auto& s = *room.s_;
  s.dir = dir;
  if (!PathExists(P(dir, "state.json"))) {
    return Fail(ErrorCode::FILE_UNREADABLE, "{} is not a room (no state.json); run room init",
                dir);
  }
  if (mode == OpenMode::kReadWrite) {
    s.lock_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s.lock_fd < 0) return Fail(ErrorCode::INTERNAL, "cannot open the room {}", dir);
    // Another command holds the room: wait a while, then say so rather than hang.
    bool locked = false;
    for (int i = 0; i < 600 && !locked; ++i) {
      locked = ::flock(s.lock_fd, LOCK_EX | LOCK_NB) == 0;
      if (!locked) ::usleep(100 * 1000);
    }
    if (!locked) return Fail(ErrorCode::INTERNAL, "the room {} is busy (another command holds it)", dir);
  }
  CR_ASSIGN(auto id, crypto::Identity::Load(P(dir, "room.key")));
  s.key.emplace(std::move(id));
  CR_ASSIGN(s.state, ReadJson(P(dir, "state.json")));
  CR_ASSIGN(s.catalog, ReadJson(P(dir, "catalog.json")));
  CR_ASSIGN(auto spec_bytes, ReadFile(P(dir, "spec.yaml")));
  CR_ASSIGN(auto keys_json, ReadJson(P(dir, "spec-keys.json")));
  std::map<std::string, std::string> key_files;
  for (auto it = keys_json.begin(); it != keys_json.end(); ++it) {
    auto bytes = crypto::Base64Decode(it.value().get<std::string>());
    if (!bytes) return Fail(ErrorCode::TAMPERED, "spec-keys.json is malformed");
    key_files[it.key()] = *bytes;
  }
  CR_ASSIGN(s.spec, spec::ParseWithKeyFiles(spec_bytes, key_files));
  if (s.spec.hash != s.state.value("spec_hash", "")) {
    return Fail(ErrorCode::TAMPERED, "the room's spec does not match the hash it was created with");
  }
  if (!s.catalog.contains("packages") || !s.catalog["packages"].is_object() ||
      !s.catalog.contains("datasets") || !s.catalog["datasets"].is_object()) {
    return Fail(ErrorCode::TAMPERED, "catalog.json is malformed");
  }
  for (auto it = s.catalog["datasets"].begin(); it != s.catalog["datasets"].end(); ++it) {
    CR_ASSIGN(auto e, EntryFromJson(it.key(), it.value()));
    s.datasets[e.name] = std::move(e);
  }
  s.audit = std::make_unique<audit::AuditLog>(AuditLogPath(dir), *s.key);

  if (mode == OpenMode::kReadWrite) {
    // Finish a disposal a crash interrupted (key gone, data or entry left).
    std::vector<std::string> broken;
    for (const auto& [name, e] : s.datasets) {
      if (!PathExists(P(dir, KeyFile(name, e.package_id)))) broken.push_back(name);
    }
    for (const auto& name : broken) CR_TRY(room.Dispose(name, "recovery", "room"));
    // Retention: crypto-shred what has outlived retention_days.
    if (s.spec.retention_days > 0) {
      long long limit = static_cast<long long>(s.spec.retention_days) * 86400;
      std::vector<std::string> expired;
      for (const auto& [name, e] : s.datasets) {
        if (NowUnix() - e.ingested_unix >= limit) expired.push_back(name);
      }
      for (const auto& name : expired) CR_TRY(room.Dispose(name, "retention", "room"));
    }
  }
  return room;
}

Status Room::Activate(const std::vector<std::string>& files) {
  auto& s = *s_;
  if (active()) return Fail(ErrorCode::ROOM_EXISTS, "the room is already active");
  std::set<std::string> signed_by;
  nlohmann::json sigs = nlohmann::json::array();
  for (const auto& f : files) {
    CR_ASSIGN(auto text, ReadFile(f));
    auto sig = spec::SignatureFromJson(text);
    if (!sig) return Fail(sig.error().code, "{}: {}", f, sig.error().message);
    if (auto st = spec::Verify(s.spec, *sig); !st) {
      // A signature over other bytes is, for this room, simply not a valid signature.
      ErrorCode code = st.error().code == ErrorCode::SPEC_MISMATCH ? ErrorCode::SIGNATURE_INVALID
                                                                   : st.error().code;
      return Fail(code, "{}: {}", f, st.error().message);
    }
    signed_by.insert(sig->party);
    sigs.push_back(nlohmann::json::parse(spec::SignatureToJson(*sig)));
  }
  std::vector<std::string> missing;
  for (const auto& p : s.spec.parties) {
    if (!signed_by.count(p.name)) missing.push_back(p.name);
  }
  if (!missing.empty()) {
    return Fail(ErrorCode::SIGNATURE_MISSING, "no valid signature from: {}",
                fmt::join(missing, ", "));
  }
  nlohmann::json state = s.state;
  state["status"] = "active";
  state["activated_at"] = NowRfc3339();
  state["signatures"] = sigs;
  CR_TRY(WriteJson(P(s.dir, "state.json"), state));
  s.state = state;
  return s.audit->Append("room.activate", "operator",
                         {{"spec_hash", s.spec.hash},
                          {"signed_by", std::vector<std::string>(signed_by.begin(), signed_by.end())}});
}

Status Room::StoreDataset(const engine::MemFile& plain, const std::vector<Segment>& segments,
                          const package::Header& h, const std::string& package_digest,
                          const std::string& owner) {
  auto& s = *s_;
  std::string data_rel = DataFile(h.dataset, h.package_id);
  std::string key_rel = KeyFile(h.dataset, h.package_id);
  const std::string ad = h.dataset + "/" + h.package_id;
  // 1. The data, under a fresh key of the room's.
  CR_ASSIGN(auto written, WriteDataFile(P(s.dir, data_rel), plain, segments, ad));
  const crypto::SecureBuffer& data_key = written.key;
  // 2. Its key, wrapped by the room.
  auto wrap = s.WrapKey();
  if (auto st = WriteFileAtomic(P(s.dir, key_rel), crypto::AeadSeal(wrap, data_key.view(), ad),
                                0600);
      !st) {
    RemoveFileDurable(P(s.dir, data_rel));
    return st;
  }
  // 3. Commit: the catalogue names the new package (and remembers its id forever).
  std::optional<DatasetEntry> previous;
  if (auto it = s.datasets.find(h.dataset); it != s.datasets.end()) previous = it->second;
  DatasetEntry e;
  e.name = h.dataset;
  e.package_id = h.package_id;
  e.owner = owner;
  e.ingested_at = NowRfc3339();
  e.ingested_unix = NowUnix();
  e.rows = h.row_count;
  e.bytes = written.bytes;
  e.digest = package_digest;
  e.schema = h.schema;
  auto old_datasets = s.datasets;
  auto old_catalog = s.catalog;
  s.datasets[h.dataset] = e;
  s.catalog["packages"][h.package_id] = {{"dataset", h.dataset}, {"digest", package_digest},
                                         {"at", e.ingested_at}};
  if (auto saved = s.SaveCatalog(); !saved) {
    s.datasets = old_datasets;
    s.catalog = old_catalog;
    RemoveFileDurable(P(s.dir, key_rel));
    RemoveFileDurable(P(s.dir, data_rel));
    return saved;
  }
  // 4. The replaced package is crypto-shredded.
  if (previous) {
    CR_TRY(RemoveFileDurable(P(s.dir, KeyFile(previous->name, previous->package_id))));
    CR_TRY(RemoveFileDurable(P(s.dir, DataFile(previous->name, previous->package_id))));
  }
  return Ok();
}

Status Room::Dispose(const std::string& dataset, const std::string& reason,
                     const std::string& actor) {
  auto& s = *s_;
  auto it = s.datasets.find(dataset);
  if (it == s.datasets.end()) {
    return Fail(ErrorCode::UNKNOWN_DATASET, "the room holds no data for '{}'", dataset);
  }
  DatasetEntry e = it->second;
  // Key first: once it is gone the ciphertext is noise, whatever happens next.
  CR_TRY(RemoveFileDurable(P(s.dir, KeyFile(e.name, e.package_id))));
  CR_TRY(RemoveFileDurable(P(s.dir, DataFile(e.name, e.package_id))));
  s.datasets.erase(it);
  CR_TRY(s.SaveCatalog());
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
