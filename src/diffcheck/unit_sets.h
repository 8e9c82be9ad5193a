// Difference checks for threshold-only answers (docs/query-rules.md): the
// exact set of privacy units behind every released row, kept sealed in the
// room (DIR/unitsets/), and the check that withholds a new row whose units
// differ from an earlier released row's over the same datasets by 1 to k-1.
//
// A unit is a 64-bit hash (the lower half of its 128-bit keyed pseudonym).
// Each set keeps its exact size and a 64-bit fingerprint of its 64-bit hashes,
// and the sorted distinct lower 32 bits of those hashes, stored compressed
// (gaps as varints: 2-3 bytes a unit; a CRoaring bitmap of the same values
// took 9 bytes a unit at 20,000 units, one container each, and as long to
// load as the query ran). The symmetric difference D' of two sets' lower
// halves never exceeds the true one D, so D' >= k proves D >= k; when D' < k
// the row is withheld, except when the fingerprints and sizes agree (the same
// set). Collisions can only withhold more, never less. D' is counted by a
// merge that stops at k: two unrelated sets are told apart after about 2k
// values, two near ones cost one pass over both.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "crypto/crypto.h"
#include "room/sealed_meta.h"

namespace cr::diffcheck {

// The units behind one row, built from 64-bit unit hashes.
class UnitSet {
 public:
  // Adds hashes; `distinct` when they are known to be distinct from each
  // other and from every hash added before (one list(DISTINCT ...) per row).
  void Add(const uint64_t* values, size_t n, bool distinct);
  // Ends building: counts, fingerprints and compresses the hashes.
  void Finish();

  // A set known by its size and fingerprint only, computed inside the query
  // (a dataset whose every unit is in one row: count(unit), and the sum of
  // UnitFingerprint over its rows). Its hashes are fetched only when a check
  // or the store needs them (Store::Check's `fill`): Add them, then Finish,
  // after which `consistent()` says whether they agree with the summary.
  void SetSummary(uint64_t count, uint64_t fingerprint);
  bool summary_only() const { return summary_only_; }
  bool consistent() const { return consistent_; }

  uint64_t count() const { return count_; }
  uint64_t fingerprint() const { return fingerprint_; }
  // The sorted, distinct lower 32 bits of the hashes (after Finish).
  const std::vector<uint32_t>& low() const { return low_; }

 private:
  friend class Store;
  std::vector<uint64_t> pending_;
  bool all_distinct_ = true;
  size_t adds_ = 0;
  uint64_t count_ = 0;
  uint64_t fingerprint_ = 0;
  std::vector<uint32_t> low_;
  bool summary_only_ = false;
  bool has_summary_ = false;
  bool consistent_ = true;
};

// What one unit hash adds to a set's fingerprint (the fingerprint is the sum
// of these, mod 2^64): the same function inside a query and in UnitSet.
uint64_t UnitFingerprint(uint64_t unit_hash);

// |a xor b| of two sorted distinct lists, counted only up to `enough`.
uint64_t LowDifference(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b,
                       uint64_t enough);

// The decoded unit sets of stored results, kept between queries by a
// process that keeps the room open (the server's warm room, with
// --cache-memory): a stored result's sets never change (room rotate-key
// re-encrypts the same values), so each file is read, opened and decoded
// once, and a result just stored is there without being read at all. On
// the warm benchmark query reading one 275 KB file was 2-3 ms of a 150 ms
// query. Bounded by bytes; least recently used results go first, and a
// check drops the results its index no longer lists (disposed, removed).
// Thread-safe.
class SetCache {
 public:
  using Sets = std::vector<std::vector<uint32_t>>;  // one result's rows
  explicit SetCache(uint64_t max_bytes) : max_bytes_(max_bytes) {}

  std::shared_ptr<const Sets> Get(const std::string& id);
  void Put(const std::string& id, std::shared_ptr<const Sets> sets);
  // Drops every result not in `ids`.
  void Retain(const std::set<std::string>& ids);
  uint64_t bytes() const;
  size_t entries() const;

 private:
  struct Entry {
    std::shared_ptr<const Sets> sets;
    uint64_t bytes = 0;
    uint64_t used = 0;  // last use, for eviction
  };
  const uint64_t max_bytes_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
  uint64_t bytes_ = 0;
  uint64_t tick_ = 0;
};

// The room's store of released unit sets. Every method other than Acquire
// must be called with the lock Acquire returned still held, so that a check
// and the addition of what it released are one step: of two concurrent
// queries, the second is checked against the first's rows.
class Store {
 public:
  // DIR/unitsets/: index.json (sealed, the rows' sizes and fingerprints and
  // their datasets) and one ID.units per result (AEAD under a subkey of the
  // room key, bound to its name). `room_key` must outlive the store.
  // `cache` (may be null) must outlive the store too.
  Store(std::string room_dir, const crypto::Identity& room_key, SetCache* cache = nullptr);

  class Lock {
   public:
    Lock(Lock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
    Lock& operator=(Lock&&) = delete;
    ~Lock();

   private:
    friend class Store;
    explicit Lock(int fd) : fd_(fd) {}
    int fd_;
  };
  // An exclusive flock on DIR/unitsets/.lock (a new descriptor per call, so
  // threads of one server exclude each other as processes do).
  [[nodiscard]] Result<Lock> Acquire() const;

  // For each row, whether it is withheld: some stored row over exactly these
  // datasets differs from it by at least 1 and fewer than `k` units.
  // TAMPERED when the index or a bitmap it needs does not open.
  Result<std::vector<bool>> Check(const Lock& lock, const std::vector<std::string>& datasets,
                                  const std::vector<UnitSet>& rows, int64_t k) const;
  // The same for rows some of which may be summaries only (SetSummary):
  // `fill(rows, which)` is called once with every summary row whose hashes
  // the check or a later Add needs (compared with a stored set near it in
  // size, or not stored yet), and must complete them. A filled row whose
  // hashes disagree with its summary is INTERNAL: nothing is released.
  using Fill = std::function<Status(std::vector<UnitSet>& rows, const std::vector<size_t>& which)>;
  Result<std::vector<bool>> Check(const Lock& lock, const std::vector<std::string>& datasets,
                                  std::vector<UnitSet>& rows, int64_t k, const Fill& fill) const;
  // Records the released rows of result `id` (a set already stored for these
  // datasets is not stored twice). Nothing is written when `rows` is empty.
  // Returns the index's mark (IndexMark) after it, for the audit record.
  Result<nlohmann::json> Add(const Lock& lock, const std::string& id,
                             const std::vector<std::string>& datasets,
                             const std::vector<const UnitSet*>& rows) const;
  // Drops result `id`'s sets (its release failed after Add); the mark after.
  Result<nlohmann::json> Remove(const Lock& lock, const std::string& id) const;

  const std::string& dir() const { return dir_; }

 private:
  Result<std::vector<bool>> CheckRows(const Lock& lock, const std::vector<std::string>& datasets,
                                      const std::vector<UnitSet>& rows, int64_t k,
                                      std::vector<UnitSet>* fillable, const Fill* fill) const;
  std::string dir_;
  const crypto::Identity* room_key_;
  room::MetaSealer sealer_;
  SetCache* cache_;
};

// Removes every stored set over `dataset`, under the store's lock (Room::Dispose,
// at request or retention). Needs only the metadata sealer: nothing is opened.
// Returns the index's mark after it (null when the room has no store).
Result<nlohmann::json> RemoveCovering(const std::string& room_dir, const room::MetaSealer& sealer,
                                      const std::string& dataset);

// Rollback detection for the index (as for the catalogue): every write of
// unitsets/index.json is one generation on, and every audit record of a
// query with difference checks (and of a disposal) records the index's mark,
// {"generation", "sha256" of its plaintext}. Room::Open compares the index
// with the log's last mark: an older index put back would forget earlier
// answers and let the differencing pair through. Null when the room has no
// store.
Result<nlohmann::json> IndexMark(const std::string& room_dir, const room::MetaSealer& sealer);
// TAMPERED unless `current` (IndexMark) is the generation `logged` records
// (same hash) or later; a null `logged` (nothing recorded yet) accepts any.
Status CheckIndexMark(const nlohmann::json& logged, const nlohmann::json& current);

}  // namespace cr::diffcheck
