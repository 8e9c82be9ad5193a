#include "room/cache.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <cctype>
#include <limits>

#include <fmt/format.h>

namespace cr::room {

// The file and its mapping live as long as the last query reading them, not
// as long as the entry: an entry evicted mid-query must not pull pages away.
struct DecryptCache::Entry {
  struct Holder {
    explicit Holder(engine::MemFile f) : file(std::move(f)) {}
    Holder(const Holder&) = delete;
    Holder& operator=(const Holder&) = delete;
    engine::MemFile file;
    void* map = MAP_FAILED;
    size_t map_len = 0;
    ~Holder() {
      if (map != MAP_FAILED) ::munmap(map, map_len);
    }
  };
  std::shared_ptr<Holder> holder;
  uint64_t bytes = 0;
  bool locked = false;
  std::list<Key>::iterator lru;
};

namespace {

// Memory the file's pages really take (the columns not decrypted are holes).
uint64_t ResidentBytes(const engine::MemFile& f) {
  struct stat st;
  if (::fstat(f.fd(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

std::string ColumnsKey(const std::set<std::string>& columns) {
  std::string k;
  for (const auto& c : columns) {
    // Column names cannot hold NUL: an unambiguous separator.
    k += c;
    k += '\0';
  }
  return k;
}

}  // namespace

DecryptCache::DecryptCache(uint64_t max_bytes) : max_bytes_(max_bytes) {}
DecryptCache::~DecryptCache() { Clear(); }

void DecryptCache::DropLocked(std::map<Key, std::unique_ptr<Entry>>::iterator it) {
  stats_.bytes -= it->second->bytes;
  if (it->second->locked) stats_.locked_bytes -= it->second->bytes;
  --stats_.entries;
  lru_.erase(it->second->lru);
  entries_.erase(it);
}

void DecryptCache::SyncLocked(const Room& room) {
  const auto& catalogue = room.datasets();
  for (auto it = entries_.begin(); it != entries_.end();) {
    auto next = std::next(it);
    if (it->first.dir == room.dir()) {
      auto d = catalogue.find(it->first.dataset);
      if (d == catalogue.end() || d->second.package_id != it->first.package_id) {
        DropLocked(it);
        ++stats_.invalidations;
      }
    }
    it = next;
  }
}

void DecryptCache::Sync(const Room& room) {
  std::lock_guard lock(mu_);
  SyncLocked(room);
}

void DecryptCache::Clear() {
  std::lock_guard lock(mu_);
  while (!entries_.empty()) DropLocked(entries_.begin());
}

DecryptCache::Stats DecryptCache::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

Result<std::shared_ptr<const engine::MemFile>> DecryptCache::Get(
    const Room& room, const std::string& dataset, const std::set<std::string>& columns) {
  auto d = room.datasets().find(dataset);
  if (d == room.datasets().end() || max_bytes_ == 0) {
    // Room::Decrypt says why an unknown dataset cannot be read.
    CR_ASSIGN(auto mem, room.Decrypt(dataset, &columns));
    if (max_bytes_ == 0) {
      std::lock_guard lock(mu_);
      ++stats_.misses;
    }
    return std::make_shared<const engine::MemFile>(std::move(mem));
  }
  Key key{room.dir(), dataset, d->second.package_id, ColumnsKey(columns)};
  {
    std::lock_guard lock(mu_);
    SyncLocked(room);
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      ++stats_.hits;
      lru_.splice(lru_.begin(), lru_, it->second->lru);
      auto& h = it->second->holder;
      return std::shared_ptr<const engine::MemFile>(h, &h->file);
    }
    ++stats_.misses;
  }
  // Decrypted outside the lock: other datasets' queries keep running. Two
  // queries missing the same entry at once both decrypt; the first one kept wins.
  CR_ASSIGN(auto mem, room.Decrypt(dataset, &columns));
  auto holder = std::make_shared<Entry::Holder>(std::move(mem));
  const uint64_t bytes = ResidentBytes(holder->file);
  std::shared_ptr<const engine::MemFile> out(holder, &holder->file);
  if (bytes > max_bytes_) return out;

  auto entry = std::make_unique<Entry>();
  entry->bytes = bytes;
  auto size = holder->file.Size();
  if (size && *size > 0) {
    // Mapped only to pin the plaintext in RAM: memfd pages can be swapped out,
    // and a cache keeps them far longer than one query does. The mapping puts
    // them in the address space, so it is excluded from core dumps. mlock
    // fails beyond RLIMIT_MEMLOCK; the entry is kept anyway (counted apart in
    // stats().locked_bytes), as a query's own decryption would be.
    holder->map_len = static_cast<size_t>(*size);
    holder->map = ::mmap(nullptr, holder->map_len, PROT_READ, MAP_SHARED, holder->file.fd(), 0);
    if (holder->map != MAP_FAILED) {
      (void)::madvise(holder->map, holder->map_len, MADV_DONTDUMP);
      entry->locked = ::mlock(holder->map, holder->map_len) == 0;
    }
  }
  entry->holder = holder;

  std::lock_guard lock(mu_);
  if (auto it = entries_.find(key); it != entries_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second->lru);
    auto& h = it->second->holder;
    return std::shared_ptr<const engine::MemFile>(h, &h->file);
  }
  // The catalogue may have moved on while this decrypted (a new version
  // stored meanwhile): the caller still gets what it decrypted, unkept.
  auto now = room.datasets().find(dataset);
  if (now == room.datasets().end() || now->second.package_id != key.package_id) return out;
  while (!lru_.empty() && stats_.bytes + bytes > max_bytes_) {
    DropLocked(entries_.find(lru_.back()));
    ++stats_.evictions;
  }
  lru_.push_front(key);
  entry->lru = lru_.begin();
  stats_.bytes += bytes;
  if (entry->locked) stats_.locked_bytes += bytes;
  ++stats_.entries;
  entries_.emplace(std::move(key), std::move(entry));
  return out;
}

Result<uint64_t> ParseByteSize(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  const std::string unit = text.substr(i);
  uint64_t mult = 0;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "KiB") mult = 1ULL << 10;
  else if (unit == "MiB") mult = 1ULL << 20;
  else if (unit == "GiB") mult = 1ULL << 30;
  else if (unit == "TiB") mult = 1ULL << 40;
  if (i == 0 || i > 19 || mult == 0) {
    return Fail(ErrorCode::BAD_INPUT,
                "'{}' is not a memory size (a whole number of B, KiB, MiB, GiB or TiB, e.g. 512MiB)",
                text);
  }
  const uint64_t n = std::stoull(text.substr(0, i));
  if (n > std::numeric_limits<uint64_t>::max() / mult) {
    return Fail(ErrorCode::BAD_INPUT, "memory size '{}' is too large", text);
  }
  return n * mult;
}

}  // namespace cr::room
