#include "diffcheck/unit_sets.h"

#include <errno.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>

#include "common/files.h"

namespace cr::diffcheck {
namespace {

using nlohmann::json;

constexpr const char* kKeyContext = room::kUnitSetsKeyContext;
constexpr const char* kIndex = "index.json";
// Sealed under its path in the room, as every other metadata file, so that
// room rotate-key reseals it with the rest.
constexpr const char* kIndexName = "unitsets/index.json";

uint64_t GenerationOf(const json& index) {
  auto it = index.find("generation");
  return it != index.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

// What the audit log records of the index (see IndexMark in the header):
// its generation and the SHA-256 of its plaintext, which room rotate-key's
// reseal leaves as it is.
json MarkOf(const json& index) {
  return {{"generation", GenerationOf(index)}, {"sha256", ToHex(crypto::Sha256(index.dump()))}};
}

// Every write is one generation on: an older copy put back is behind the
// generation the audit log last recorded.
Result<json> WriteIndex(const std::string& dir, const room::MetaSealer& sealer, json index) {
  index["generation"] = GenerationOf(index) + 1;
  CR_TRY(WriteFileAtomic(JoinPath(dir, kIndex), sealer.Seal(kIndexName, index), 0600));
  return MarkOf(index);
}

// splitmix64's finaliser: the fingerprint is the sum of these over a set's
// hashes, so it does not depend on the order they arrive in.
uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Sorts 32-bit keys in four byte-wide passes: several times faster than
// std::sort on millions of uniform keys.
void RadixSort(std::vector<uint32_t>* v) {
  std::vector<uint32_t> tmp(v->size());
  for (int shift = 0; shift < 32; shift += 8) {
    size_t counts[257] = {0};
    for (uint32_t x : *v) ++counts[((x >> shift) & 0xff) + 1];
    for (int i = 0; i < 256; ++i) counts[i + 1] += counts[i];
    for (uint32_t x : *v) tmp[counts[(x >> shift) & 0xff]++] = x;
    v->swap(tmp);
  }
}

std::string Hex64(uint64_t v) { return fmt::format("{:016x}", v); }

bool IsId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-';
  });
}

Result<int> LockDir(const std::string& dir) {
  CR_TRY(MakeDirs(dir, 0700));
  const std::string path = JoinPath(dir, ".lock");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Fail(ErrorCode::INTERNAL, "cannot open {}: {}", path, strerror(errno));
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      ::close(fd);
      return Fail(ErrorCode::INTERNAL, "cannot lock {}", path);
    }
  }
  return fd;
}

// The index: {"entries": [{"result", "datasets", "rows": [{"count", "fp"}]}]}.
// A store that was never written is empty; one whose index is gone is not.
Result<json> ReadIndex(const std::string& dir, const room::MetaSealer& sealer) {
  if (!PathExists(JoinPath(dir, kIndex))) {
    bool any = false;
    if (PathExists(dir)) {
      std::error_code ec;
      for (const auto& f : std::filesystem::directory_iterator(dir, ec)) {
        any = any || f.path().filename().string().ends_with(".units");
      }
    }
    if (any) {
      return Fail(ErrorCode::TAMPERED,
                  "the room's difference-check store has unit sets but no index (removed)");
    }
    return json{{"entries", json::array()}};
  }
  CR_ASSIGN(std::string text, ReadFile(JoinPath(dir, kIndex)));
  CR_ASSIGN(json index, sealer.Open(kIndexName, text));
  auto bad = [] {
    return Fail(ErrorCode::TAMPERED, "the room's difference-check index is malformed");
  };
  if (!index.contains("entries") || !index["entries"].is_array()) return bad();
  if (index.contains("generation") && !index["generation"].is_number_unsigned()) return bad();
  for (const json& e : index["entries"]) {
    if (!e.is_object() || !e.contains("result") || !e["result"].is_string() ||
        !IsId(e["result"].get<std::string>()) || !e.contains("datasets") ||
        !e["datasets"].is_array() || !e.contains("rows") || !e["rows"].is_array()) {
      return bad();
    }
    for (const json& d : e["datasets"]) {
      if (!d.is_string()) return bad();
    }
    for (const json& r : e["rows"]) {
      if (!r.is_object() || !r.contains("count") || !r["count"].is_number_unsigned() ||
          !r.contains("fp") || !r["fp"].is_string() || r["fp"].get<std::string>().size() != 16) {
        return bad();
      }
    }
  }
  return index;
}

std::string UnitsName(const std::string& id) { return id + ".units"; }

// A set's file form: LEB128 varints, the number of values and then the
// gaps between the sorted values (the first from 0). Uniform 32-bit hashes
// take 3 bytes a unit at 20,000 units and 2 at 2,000,000.
void PutVarint(std::string* out, uint32_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view* in, uint32_t* v) {
  uint64_t x = 0;
  for (int shift = 0; shift <= 28; shift += 7) {
    if (in->empty()) return false;
    const auto byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    x |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      if (x > UINT32_MAX) return false;
      *v = static_cast<uint32_t>(x);
      return true;
    }
  }
  return false;
}

void Encode(const std::vector<uint32_t>& low, std::string* out) {
  PutVarint(out, static_cast<uint32_t>(low.size()));
  uint32_t prev = 0;
  for (uint32_t v : low) {
    PutVarint(out, v - prev);
    prev = v;
  }
}

// Strictly ascending or refused: a set the room did not write is damage.
bool Decode(std::string_view* in, std::vector<uint32_t>* low) {
  uint32_t n;
  if (!GetVarint(in, &n) || n > in->size()) return false;
  low->resize(n);
  uint64_t prev = 0;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t gap;
    if (!GetVarint(in, &gap) || (i > 0 && gap == 0)) return false;
    prev += gap;
    if (prev > UINT32_MAX) return false;
    (*low)[i] = static_cast<uint32_t>(prev);
  }
  return true;
}

}  // namespace

// ----- UnitSet ---------------------------------------------------------------

void UnitSet::Add(const uint64_t* values, size_t n, bool distinct) {
  all_distinct_ = all_distinct_ && distinct && adds_ == 0;
  ++adds_;
  pending_.insert(pending_.end(), values, values + n);
}

uint64_t UnitFingerprint(uint64_t unit_hash) { return Mix(unit_hash); }

void UnitSet::SetSummary(uint64_t count, uint64_t fingerprint) {
  count_ = count;
  fingerprint_ = fingerprint;
  summary_only_ = true;
  has_summary_ = true;
  consistent_ = true;
}

void UnitSet::Finish() {
  const uint64_t summary_count = count_, summary_fp = fingerprint_;
  if (!all_distinct_) {
    std::sort(pending_.begin(), pending_.end());
    pending_.erase(std::unique(pending_.begin(), pending_.end()), pending_.end());
  }
  count_ = pending_.size();
  fingerprint_ = 0;
  std::vector<uint32_t> low(pending_.size());
  for (size_t i = 0; i < pending_.size(); ++i) {
    fingerprint_ += Mix(pending_[i]);
    low[i] = static_cast<uint32_t>(pending_[i]);
  }
  std::vector<uint64_t>().swap(pending_);
  RadixSort(&low);
  low.erase(std::unique(low.begin(), low.end()), low.end());  // colliding lower halves
  low.shrink_to_fit();
  low_ = std::move(low);
  if (has_summary_) {
    consistent_ = count_ == summary_count && fingerprint_ == summary_fp;
    summary_only_ = false;
  }
}

uint64_t LowDifference(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b,
                       uint64_t enough) {
  uint64_t d = 0;
  size_t i = 0, j = 0;
  const size_t na = a.size(), nb = b.size();
  while (i < na && j < nb) {
    if (a[i] == b[j]) {
      ++i;
      ++j;
      continue;
    }
    if (++d >= enough) return d;
    a[i] < b[j] ? ++i : ++j;
  }
  d += (na - i) + (nb - j);
  return std::min(d, enough);
}

// ----- SetCache --------------------------------------------------------------

std::shared_ptr<const SetCache::Sets> SetCache::Get(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return nullptr;
  it->second.used = ++tick_;
  return it->second.sets;
}

void SetCache::Put(const std::string& id, std::shared_ptr<const Sets> sets) {
  uint64_t bytes = sizeof(Sets);
  for (const auto& row : *sets) bytes += row.size() * sizeof(uint32_t) + sizeof row;
  std::lock_guard lock(mu_);
  if (bytes > max_bytes_) return;
  if (auto it = entries_.find(id); it != entries_.end()) {
    bytes_ -= it->second.bytes;
    entries_.erase(it);
  }
  while (bytes_ + bytes > max_bytes_ && !entries_.empty()) {
    auto oldest = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.used < oldest->second.used) oldest = it;
    }
    bytes_ -= oldest->second.bytes;
    entries_.erase(oldest);
  }
  entries_[id] = Entry{std::move(sets), bytes, ++tick_};
  bytes_ += bytes;
}

void SetCache::Retain(const std::set<std::string>& ids) {
  std::lock_guard lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (ids.count(it->first)) {
      ++it;
    } else {
      bytes_ -= it->second.bytes;
      it = entries_.erase(it);
    }
  }
}

uint64_t SetCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

size_t SetCache::entries() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

// ----- Store -----------------------------------------------------------------

Store::Lock::~Lock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

Store::Store(std::string room_dir, const crypto::Identity& room_key, SetCache* cache)
    : dir_(JoinPath(room_dir, "unitsets")), room_key_(&room_key), sealer_(room_key), cache_(cache) {}

Result<Store::Lock> Store::Acquire() const {
  CR_ASSIGN(int fd, LockDir(dir_));
  return Lock(fd);
}

Result<std::vector<bool>> Store::Check(const Lock& lock, const std::vector<std::string>& datasets,
                                       const std::vector<UnitSet>& rows, int64_t k) const {
  return CheckRows(lock, datasets, rows, k, nullptr, nullptr);
}

Result<std::vector<bool>> Store::Check(const Lock& lock, const std::vector<std::string>& datasets,
                                       std::vector<UnitSet>& rows, int64_t k,
                                       const Fill& fill) const {
  return CheckRows(lock, datasets, rows, k, &rows, &fill);
}

Result<std::vector<bool>> Store::CheckRows(const Lock&, const std::vector<std::string>& datasets,
                                           const std::vector<UnitSet>& rows, int64_t k,
                                           std::vector<UnitSet>* fillable, const Fill* fill) const {
  std::vector<bool> withheld(rows.size(), false);
  if (rows.empty()) return withheld;
  CR_ASSIGN(json index, ReadIndex(dir_, sealer_));
  const std::set<std::string> want(datasets.begin(), datasets.end());
  const uint64_t limit = static_cast<uint64_t>(std::max<int64_t>(k, 1));
  using Sets = SetCache::Sets;
  std::map<std::string, std::shared_ptr<const Sets>> loaded;  // result id -> its rows' sets
  if (cache_) {
    std::set<std::string> listed;
    for (const json& e : index["entries"]) listed.insert(e["result"].get<std::string>());
    cache_->Retain(listed);
  }
  std::optional<crypto::SecureBuffer> key;  // derived at the first file read

  auto sets_of = [&](const std::string& id, size_t rows_in_index) -> Result<const Sets*> {
    if (auto it = loaded.find(id); it != loaded.end()) return it->second.get();
    if (cache_) {
      if (auto hit = cache_->Get(id); hit && hit->size() == rows_in_index) {
        return loaded.emplace(id, std::move(hit)).first->second.get();
      }
    }
    const std::string name = UnitsName(id);
    auto sealed = ReadFile(JoinPath(dir_, name));
    if (!sealed) {
      return Fail(ErrorCode::TAMPERED, "the difference-check unit sets of a result are missing");
    }
    if (!key) key.emplace(room_key_->DeriveKey(1, kKeyContext));
    auto plain = crypto::AeadOpen(*key, *sealed, "unitsets/" + name);
    if (!plain) {
      return Fail(ErrorCode::TAMPERED,
                  "a difference-check unit set file does not open (changed or moved)");
    }
    std::string_view p = plain->view();
    auto out = std::make_shared<Sets>();
    while (!p.empty() && out->size() < rows_in_index) {
      if (!Decode(&p, &out->emplace_back())) break;
    }
    if (out->size() != rows_in_index || !p.empty()) {
      return Fail(ErrorCode::TAMPERED, "a difference-check unit set file is malformed");
    }
    if (cache_) cache_->Put(id, out);
    return loaded.emplace(id, std::move(out)).first->second.get();
  };

  // First the sizes and fingerprints (in the index): which rows must be
  // compared with which stored rows, and which are not stored yet.
  struct Pair {
    size_t row;
    const json* entry;
    size_t stored_row;
  };
  std::vector<Pair> pairs;
  std::set<std::pair<uint64_t, std::string>> known;
  for (const json& e : index["entries"]) {
    std::set<std::string> have;
    for (const json& d : e["datasets"]) have.insert(d.get<std::string>());
    if (have != want) continue;
    const json& stored = e["rows"];
    for (size_t i = 0; i < stored.size(); ++i) {
      const uint64_t count = stored[i]["count"].get<uint64_t>();
      const std::string fp = stored[i]["fp"].get<std::string>();
      known.insert({count, fp});
      for (size_t r = 0; r < rows.size(); ++r) {
        const UnitSet& row = rows[r];
        // |A| - |B| bounds |A xor B| from below: far apart in size is far apart.
        const uint64_t gap = row.count() > count ? row.count() - count : count - row.count();
        if (gap >= limit) continue;
        if (gap == 0 && fp == Hex64(row.fingerprint())) continue;  // the same set
        pairs.push_back({r, &e, i});
      }
    }
  }
  // Summaries whose hashes are needed: compared here, or stored by Add.
  std::set<size_t> needed;
  for (const Pair& p : pairs) {
    if (rows[p.row].summary_only()) needed.insert(p.row);
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    if (rows[r].summary_only() &&
        !known.count({rows[r].count(), Hex64(rows[r].fingerprint())})) {
      needed.insert(r);
    }
  }
  if (!needed.empty()) {
    if (!fill || !*fill) {
      return Fail(ErrorCode::INTERNAL, "a released row's units are needed but were not fetched");
    }
    const std::vector<size_t> which(needed.begin(), needed.end());
    CR_TRY((*fill)(*fillable, which));
    for (size_t r : which) {
      if (rows[r].summary_only() || !rows[r].consistent()) {
        return Fail(ErrorCode::INTERNAL,
                    "the units behind a released row do not match the room's count of them; "
                    "nothing is released");
      }
    }
  }
  for (const Pair& p : pairs) {
    if (withheld[p.row]) continue;
    const json& stored = (*p.entry)["rows"];
    CR_ASSIGN(const Sets* sets, sets_of((*p.entry)["result"].get<std::string>(), stored.size()));
    // The lower halves' difference never exceeds the sets' (see the header);
    // counting stops as soon as it reaches k.
    if (LowDifference(rows[p.row].low(), (*sets)[p.stored_row], limit) < limit) {
      withheld[p.row] = true;
    }
  }
  return withheld;
}

Result<json> Store::Add(const Lock&, const std::string& id,
                        const std::vector<std::string>& datasets,
                        const std::vector<const UnitSet*>& rows) const {
  if (!IsId(id)) return Fail(ErrorCode::INTERNAL, "invalid result id for the unit set store");
  CR_ASSIGN(json index, ReadIndex(dir_, sealer_));
  if (rows.empty()) return MarkOf(index);
  const std::set<std::string> want(datasets.begin(), datasets.end());
  std::set<std::pair<uint64_t, std::string>> known;
  for (const json& e : index["entries"]) {
    std::set<std::string> have;
    for (const json& d : e["datasets"]) have.insert(d.get<std::string>());
    if (have != want) continue;
    for (const json& r : e["rows"])
      known.insert({r["count"].get<uint64_t>(), r["fp"].get<std::string>()});
  }
  json entry_rows = json::array();
  std::string plain;
  SetCache::Sets stored_lows;  // what the file holds, for the cache
  for (const UnitSet* row : rows) {
    std::string fp = Hex64(row->fingerprint());
    if (!known.insert({row->count(), fp}).second) continue;  // the same set is stored already
    if (row->summary_only()) {
      return Fail(ErrorCode::INTERNAL, "a released row's units were not fetched for the store");
    }
    entry_rows.push_back({{"count", row->count()}, {"fp", fp}});
    Encode(row->low(), &plain);
    if (cache_) stored_lows.push_back(row->low());
  }
  if (entry_rows.empty()) return MarkOf(index);
  // The index exists before the first set file does: a crash between the
  // two leaves an index and an unlisted file (ignored), never a file without
  // an index, which reads as a removed index and is refused.
  if (!PathExists(JoinPath(dir_, kIndex))) {
    CR_ASSIGN(json first, WriteIndex(dir_, sealer_, index));
    index["generation"] = first["generation"];
  }
  crypto::SecureBuffer key = room_key_->DeriveKey(1, kKeyContext);
  const std::string name = UnitsName(id);
  CR_TRY(WriteFileAtomic(JoinPath(dir_, name), crypto::AeadSeal(key, plain, "unitsets/" + name),
                         0600));
  index["entries"].push_back({{"result", id},
                              {"datasets", std::vector<std::string>(want.begin(), want.end())},
                              {"rows", std::move(entry_rows)}});
  CR_ASSIGN(json mark, WriteIndex(dir_, sealer_, index));
  if (cache_) cache_->Put(id, std::make_shared<const SetCache::Sets>(std::move(stored_lows)));
  return mark;
}

Result<json> Store::Remove(const Lock&, const std::string& id) const {
  CR_ASSIGN(json index, ReadIndex(dir_, sealer_));
  json kept = json::array();
  bool found = false;
  for (const json& e : index["entries"]) {
    if (e["result"] == id) {
      found = true;
    } else {
      kept.push_back(e);
    }
  }
  if (!found) return MarkOf(index);
  index["entries"] = std::move(kept);
  CR_ASSIGN(json mark, WriteIndex(dir_, sealer_, index));
  CR_TRY(RemoveFileDurable(JoinPath(dir_, UnitsName(id))));
  return mark;
}

Result<json> RemoveCovering(const std::string& room_dir, const room::MetaSealer& sealer,
                            const std::string& dataset) {
  const std::string dir = JoinPath(room_dir, "unitsets");
  if (!PathExists(dir)) return json(nullptr);
  CR_ASSIGN(int fd, LockDir(dir));
  struct Close {
    int fd;
    ~Close() { ::close(fd); }
  } close_fd{fd};
  CR_ASSIGN(json index, ReadIndex(dir, sealer));
  json kept = json::array();
  std::vector<std::string> gone;
  for (const json& e : index["entries"]) {
    bool covers = false;
    for (const json& d : e["datasets"]) covers = covers || d == dataset;
    if (covers) {
      gone.push_back(e["result"].get<std::string>());
    } else {
      kept.push_back(e);
    }
  }
  if (gone.empty()) return MarkOf(index);
  index["entries"] = std::move(kept);
  // The index first: a set it no longer lists is never read, even if its
  // file outlives a crash (and the next disposal or sweep removes it).
  CR_ASSIGN(json mark, WriteIndex(dir, sealer, index));
  for (const auto& id : gone) {
    const std::string path = JoinPath(dir, UnitsName(id));
    if (PathExists(path)) CR_TRY(RemoveFileDurable(path));
  }
  return mark;
}

Result<json> IndexMark(const std::string& room_dir, const room::MetaSealer& sealer) {
  const std::string dir = JoinPath(room_dir, "unitsets");
  if (!PathExists(dir)) return json(nullptr);
  CR_ASSIGN(json index, ReadIndex(dir, sealer));
  return MarkOf(index);
}

Status CheckIndexMark(const json& logged, const json& current) {
  if (logged.is_null()) return Ok();  // no query with difference checks recorded one yet
  if (!logged.is_object() || !logged.contains("generation") ||
      !logged["generation"].is_number_unsigned() || !logged.contains("sha256") ||
      !logged["sha256"].is_string()) {
    return Fail(ErrorCode::TAMPERED,
                "the room's audit log holds a malformed difference-check index record");
  }
  const uint64_t want = logged["generation"].get<uint64_t>();
  const uint64_t have = current.is_null() ? 0 : current["generation"].get<uint64_t>();
  if (current.is_null() && want > 0) {
    return Fail(ErrorCode::TAMPERED,
                "the room's difference-check store is gone while its audit log records one "
                "(unitsets/ removed)");
  }
  // Only the room's key seals an index, and every write is one generation
  // on: ahead of the log is the room's own (writes whose record a crash or a
  // failed release cut off); behind it is an older copy.
  if (have > want) return Ok();
  if (have == want && (current.is_null() || current["sha256"] == logged["sha256"])) return Ok();
  return Fail(ErrorCode::TAMPERED,
              "the room's difference-check index is not the one its audit log records last "
              "(generation {} against {}): an older copy was put back, so earlier answers "
              "would be forgotten",
              have, want);
}

}  // namespace cr::diffcheck
