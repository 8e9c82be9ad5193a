// The warm room: decrypted datasets kept in memory between queries of a
// long-running room (`cleanroom serve`), so a query on a warm room costs about
// what plain DuckDB costs over the same Parquet.
//
// An entry is one dataset of one package version, decrypted for one column
// set (what Room::Decrypt(dataset, &columns) returns), in an in-memory file.
// Entries are least-recently-used under a byte budget, and are dropped when
// the room's catalogue no longer holds that package for the dataset (a new
// version, dispose, retention) and on Clear (shutdown). A dropped entry's
// memfd is closed once the last query using it ends: its pages are gone.
// Local commands never cache: only a process that keeps the room open does.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "common/error.h"
#include "engine/engine.h"
#include "room/room.h"

namespace cr::room {

class DecryptCache {
 public:
  // `max_bytes` 0 turns the cache off: every Get decrypts, nothing is kept.
  explicit DecryptCache(uint64_t max_bytes);
  ~DecryptCache();
  DecryptCache(const DecryptCache&) = delete;
  DecryptCache& operator=(const DecryptCache&) = delete;

  // The decrypted `dataset` of `room` for `columns`, from memory when the
  // room's current package for it was decrypted before for the same columns,
  // decrypted (and kept, budget allowing) otherwise. Errors as Room::Decrypt.
  // Thread-safe; the returned file stays valid while held, even if evicted.
  Result<std::shared_ptr<const engine::MemFile>> Get(const Room& room, const std::string& dataset,
                                                     const std::set<std::string>& columns);

  // Drops every entry whose package the room's catalogue no longer holds (Get
  // does this too; call it after an ingest or dispose to free memory at once).
  void Sync(const Room& room);
  // Drops everything (shutdown).
  void Clear();

  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;      // decryptions
    uint64_t evictions = 0;   // dropped for the budget
    uint64_t invalidations = 0;  // dropped because the package left the catalogue
    uint64_t entries = 0;
    uint64_t bytes = 0;          // memory the entries hold
    uint64_t locked_bytes = 0;   // of which locked in RAM (mlock succeeded)
  };
  Stats stats() const;
  uint64_t max_bytes() const { return max_bytes_; }

 private:
  struct Entry;
  struct Key {
    std::string dir, dataset, package_id, columns;
    auto operator<=>(const Key&) const = default;
  };
  void DropLocked(std::map<Key, std::unique_ptr<Entry>>::iterator it);
  void SyncLocked(const Room& room);

  const uint64_t max_bytes_;
  mutable std::mutex mu_;
  std::map<Key, std::unique_ptr<Entry>> entries_;
  std::list<Key> lru_;  // most recently used first
  Stats stats_;
};

// Parses a memory size: "512MiB", "2GiB", "64KiB", "1000000" (bytes), "0".
// BAD_INPUT for anything else.
Result<uint64_t> ParseByteSize(const std::string& text);

}  // namespace cr::room
