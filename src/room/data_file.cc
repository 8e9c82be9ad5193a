#include "room/data_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/files.h"

namespace cr::room {
namespace {

constexpr std::string_view kMagic = "CRDATA01";
constexpr uint64_t kHeaderIndex = ~uint64_t{0};   // the header's nonce; units count from 0
constexpr uint32_t kMaxHeaderBytes = 64u << 20;    // a header is a few KB per 100 MB of data
constexpr size_t kPrefixBytes = kMagic.size() + 1 + 4;

std::string HeaderAd(std::string_view binding) {
  return fmt::format("cleanroom-data-v1 header\n{}", binding);
}

void PutU64(std::string* s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}

// Each unit is bound to the file (binding), its index, its place in the
// plaintext and its length: units cannot be moved, swapped or cut.
std::string UnitAd(std::string_view binding, uint64_t index, uint64_t offset, uint64_t len) {
  std::string ad = fmt::format("cleanroom-data-v1 unit\n{}\n", binding);
  PutU64(&ad, index);
  PutU64(&ad, offset);
  PutU64(&ad, len);
  return ad;
}

struct Unit {
  uint64_t index = 0;
  uint64_t plain_offset = 0;
  uint64_t length = 0;   // plaintext bytes
  uint64_t cipher_offset = 0;
};

// The units of the segments, in file order, with their ciphertext offsets.
std::vector<Unit> Units(const std::vector<Segment>& segments, uint64_t data_start) {
  std::vector<Unit> out;
  uint64_t index = 0, cipher = data_start;
  for (const auto& s : segments) {
    for (uint64_t off = 0; off < s.length; off += kUnitBytes) {
      uint64_t len = std::min(kUnitBytes, s.length - off);
      out.push_back({index++, s.offset + off, len, cipher});
      cipher += len + crypto::UnitCipher::kTagBytes;
    }
  }
  return out;
}

// A short read is damage (TAMPERED); a failing read is the machine's (INTERNAL).
Status PreadAll(int fd, void* buf, size_t len, uint64_t offset) {
  auto* p = static_cast<char*>(buf);
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, p + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail(ErrorCode::INTERNAL, "cannot read stored data: {}", strerror(errno));
    if (n == 0) return Fail(ErrorCode::TAMPERED, "stored data is truncated");
    done += static_cast<size_t>(n);
  }
  return Ok();
}

// Runs `work` on the calling thread and up to threads - 1 more; joins them all
// (also when a thread cannot be started: the others and the caller finish the
// work between them).
template <typename F>
void RunOnThreads(unsigned threads, F&& work) {
  std::vector<std::jthread> pool;
  for (unsigned t = 1; t < threads; ++t) {
    try {
      pool.emplace_back(work);
    } catch (const std::system_error&) {
      break;
    }
  }
  work();
}

bool Contiguous(const std::vector<Segment>& segments, uint64_t size) {
  uint64_t at = 0;
  for (const auto& s : segments) {
    if (s.offset != at || s.length == 0) return false;
    at += s.length;
  }
  return at == size;
}

}  // namespace

Result<std::vector<Segment>> ParquetSegments(engine::Database& db, const engine::MemFile& plain) {
  CR_ASSIGN(uint64_t size, plain.Size());
  std::vector<Segment> whole;
  if (size) whole.push_back({"", 0, size});
  const std::string src = engine::QuoteLiteral(plain.path());
  // Column names in schema order: DuckDB picks a chunk by its column's
  // position, so a chunk is named by that position, and a footer whose own
  // names disagree makes the whole file one shared segment.
  auto described = db.Query(fmt::format("DESCRIBE SELECT * FROM read_parquet({})", src),
                            ErrorCode::BAD_INPUT, false);
  if (!described) return whole;
  std::vector<std::string> names;
  for (size_t r = 0; r < described->row_count(); ++r) names.push_back(described->at(r, 0).value_or(""));
  // Where DuckDB starts reading a chunk: its dictionary page when it has one
  // (an offset below 4 is ignored, as DuckDB does), else its first data page.
  auto meta = db.Query(
      fmt::format("SELECT column_id, path_in_schema, CASE WHEN dictionary_page_offset >= 4 AND "
                  "dictionary_page_offset < data_page_offset THEN dictionary_page_offset ELSE "
                  "data_page_offset END AS start, total_compressed_size FROM parquet_metadata({}) "
                  "ORDER BY start",
                  src),
      ErrorCode::BAD_INPUT, false);
  if (!meta) return whole;
  std::vector<Segment> chunks;
  for (size_t r = 0; r < meta->row_count(); ++r) {
    auto id = meta->at(r, 0), path = meta->at(r, 1), off = meta->at(r, 2), len = meta->at(r, 3);
    if (!id || !path || !off || !len) return whole;
    try {
      long long c = std::stoll(*id), o = std::stoll(*off), l = std::stoll(*len);
      if (c < 0 || static_cast<size_t>(c) >= names.size() || names[static_cast<size_t>(c)] != *path ||
          path->empty() || o < 4 || l <= 0) {
        return whole;
      }
      chunks.push_back({*path, static_cast<uint64_t>(o), static_cast<uint64_t>(l)});
    } catch (const std::exception&) {
      return whole;
    }
  }
  // Chunks in file order, no overlap, inside the file; the rest is shared.
  std::vector<Segment> out;
  uint64_t at = 0;
  for (const auto& c : chunks) {
    if (c.offset < at || c.offset + c.length > size || c.offset + c.length < c.offset) return whole;
    if (c.offset > at) out.push_back({"", at, c.offset - at});
    out.push_back(c);
    at = c.offset + c.length;
  }
  if (at < size) out.push_back({"", at, size - at});
  if (!Contiguous(out, size)) return whole;
  return out;
}

Result<WrittenData> WriteDataFile(const std::string& path, const engine::MemFile& plain,
                                  const std::vector<Segment>& segments, std::string_view binding) {
  CR_ASSIGN(uint64_t size, plain.Size());
  if (!Contiguous(segments, size)) {
    return Fail(ErrorCode::INTERNAL, "segments do not cover the data exactly");
  }
  WrittenData out{crypto::SecureBuffer(crypto::kKeyBytes), 0};
  crypto::RandomBytes(out.key.data(), out.key.size());
  const auto kind = crypto::UnitCipherKind::kAes256Gcm;
  CR_ASSIGN(auto cipher, crypto::UnitCipher::Create(kind, out.key));

  nlohmann::json segs = nlohmann::json::array();
  for (const auto& s : segments) segs.push_back({s.column, s.offset, s.length});
  const std::string header =
      nlohmann::json{{"plain_size", size}, {"unit_bytes", kUnitBytes}, {"segments", segs}}.dump();
  std::string prefix(kMagic);
  prefix.push_back(static_cast<char>(kind));
  const std::string header_ad = HeaderAd(binding) + prefix;
  std::string sealed_header(header.size() + crypto::UnitCipher::kTagBytes, '\0');
  if (!cipher.Seal(kHeaderIndex, header_ad, reinterpret_cast<const unsigned char*>(header.data()),
                   header.size(), reinterpret_cast<unsigned char*>(sealed_header.data()))) {
    return Fail(ErrorCode::INTERNAL, "cannot encrypt the data to store");
  }
  if (sealed_header.size() > kMaxHeaderBytes) {
    return Fail(ErrorCode::INTERNAL, "the data has too many column chunks");
  }
  uint32_t hl = static_cast<uint32_t>(sealed_header.size());
  for (int i = 0; i < 4; ++i) prefix.push_back(static_cast<char>(hl >> (8 * i)));

  // Units are sealed in batches on every core, then written in order. The
  // buffers exist before the temporary file does (which is removed on any
  // failure), and are wiped on every path.
  const auto units = Units(segments, kPrefixBytes + sealed_header.size());
  // Buffers sized by the units there are: a small part (a pooled
  // contributor's 10,000 rows are ~200 KB) need not zero and wipe 64 MB.
  const unsigned threads = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
  const size_t batch = std::max<size_t>(1, std::min<size_t>(16 * threads, units.size()));
  uint64_t unit_cap = 0;
  for (const auto& u : units) unit_cap = std::max(unit_cap, u.length);
  const size_t stride = unit_cap + crypto::UnitCipher::kTagBytes;
  std::vector<unsigned char> plain_buf(batch * unit_cap), cipher_buf(batch * stride);
  struct Wipe {
    std::vector<unsigned char>& v;
    ~Wipe() { sodium_memzero(v.data(), v.size()); }
  } wipe{plain_buf};

  CR_ASSIGN(auto file, AtomicFileWriter::Create(path, 0600));
  CR_TRY(file.Write(prefix));
  CR_TRY(file.Write(sealed_header));
  for (size_t first = 0; first < units.size(); first += batch) {
    size_t n = std::min(batch, units.size() - first);
    std::atomic<size_t> next{0};
    std::atomic<bool> ok{true};
    RunOnThreads(static_cast<unsigned>(std::min<size_t>(threads, n)), [&] {
      for (size_t i; ok && (i = next.fetch_add(1)) < n;) {
        const Unit& u = units[first + i];
        unsigned char* p = plain_buf.data() + i * unit_cap;
        if (!PreadAll(plain.fd(), p, u.length, u.plain_offset) ||
            !cipher.Seal(u.index, UnitAd(binding, u.index, u.plain_offset, u.length), p, u.length,
                         cipher_buf.data() + i * stride)) {
          ok = false;
        }
      }
    });
    if (!ok) return Fail(ErrorCode::INTERNAL, "cannot read or encrypt the data to store");
    for (size_t i = 0; i < n; ++i) {
      const auto* c = reinterpret_cast<const char*>(cipher_buf.data() + i * stride);
      CR_TRY(file.Write({c, units[first + i].length + crypto::UnitCipher::kTagBytes}));
    }
  }
  out.bytes = file.bytes_written();
  if (auto st = file.Commit(); !st) {
    // Not durably in place (or not at all): nothing refers to it yet, remove it.
    Error e = st.error();
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      e.message += fmt::format("; {} could not be removed either", path);
    }
    return std::unexpected(e);
  }
  return out;
}

Result<engine::MemFile> ReadDataFile(const std::string& path, const crypto::SecureBuffer& key,
                                     std::string_view binding,
                                     const std::set<std::string>* columns, unsigned threads) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return Fail(ErrorCode::TAMPERED, "stored data is missing: {}", path);
  if (fd < 0) return Fail(ErrorCode::INTERNAL, "cannot open stored data {}: {}", path, strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  auto tampered = [&](std::string_view what) {
    return Fail(ErrorCode::TAMPERED, "stored data for {} is damaged or was changed ({})", binding,
                what);
  };

  std::string prefix(kPrefixBytes, '\0');
  CR_TRY(PreadAll(fd, prefix.data(), prefix.size(), 0));
  if (prefix.compare(0, kMagic.size(), kMagic) != 0) return tampered("not a room data file");
  auto kind = static_cast<crypto::UnitCipherKind>(prefix[kMagic.size()]);
  if (kind != crypto::UnitCipherKind::kAes256Gcm) return tampered("unknown cipher");
  uint32_t hl = 0;
  for (int i = 0; i < 4; ++i) {
    hl |= static_cast<uint32_t>(static_cast<unsigned char>(prefix[kMagic.size() + 1 + i])) << (8 * i);
  }
  if (hl < crypto::UnitCipher::kTagBytes || hl > kMaxHeaderBytes) return tampered("header size");
  CR_ASSIGN(auto cipher, crypto::UnitCipher::Create(kind, key));
  std::string sealed(hl, '\0');
  CR_TRY(PreadAll(fd, sealed.data(), sealed.size(), kPrefixBytes));
  std::string header(hl - crypto::UnitCipher::kTagBytes, '\0');
  if (!cipher.Open(kHeaderIndex, HeaderAd(binding) + prefix.substr(0, kMagic.size() + 1),
                   reinterpret_cast<const unsigned char*>(sealed.data()), sealed.size(),
                   reinterpret_cast<unsigned char*>(header.data()))) {
    return tampered("header");
  }
  uint64_t size = 0;
  std::vector<Segment> segments;
  try {
    auto j = nlohmann::json::parse(header);
    size = j.at("plain_size").get<uint64_t>();
    if (j.at("unit_bytes").get<uint64_t>() != kUnitBytes) return tampered("unit size");
    for (const auto& s : j.at("segments")) {
      segments.push_back({s.at(0).get<std::string>(), s.at(1).get<uint64_t>(), s.at(2).get<uint64_t>()});
    }
  } catch (const nlohmann::json::exception&) {
    return tampered("header");
  }
  if (!Contiguous(segments, size)) return tampered("segments");
  const auto units = Units(segments, kPrefixBytes + hl);
  uint64_t expected = kPrefixBytes + hl;
  if (!units.empty()) expected = units.back().cipher_offset + units.back().length + crypto::UnitCipher::kTagBytes;
  struct stat st;
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != expected) return tampered("size");

  // The units to read: shared ones and those of the wanted columns. A file
  // split by column must have every wanted column (else the view would read
  // bytes nobody decrypted); a file of one shared segment is read whole.
  bool split = std::any_of(segments.begin(), segments.end(),
                           [](const Segment& s) { return !s.column.empty(); });
  if (columns && split) {
    for (const auto& c : *columns) {
      if (std::none_of(segments.begin(), segments.end(),
                       [&](const Segment& s) { return s.column == c; })) {
        return Fail(ErrorCode::INTERNAL, "stored data for {} has no column {}", binding, c);
      }
    }
  }
  std::vector<Unit> wanted;
  {
    size_t u = 0;
    for (const auto& s : segments) {
      bool want = s.column.empty() || !columns || columns->count(s.column);
      for (uint64_t off = 0; off < s.length; off += kUnitBytes, ++u) {
        if (want) wanted.push_back(units[u]);
      }
    }
  }

  CR_ASSIGN(auto mem, engine::MemFile::Create("cleanroom-data"));
  if (::ftruncate(mem.fd(), static_cast<off_t>(size)) != 0) {
    return Fail(ErrorCode::INTERNAL, "in-memory file: {}", strerror(errno));
  }
  if (size == 0) return mem;

  // Each thread reads a unit into its own buffer, decrypts it in place and
  // copies it into the in-memory file: measured faster than decrypting into a
  // mapping of the file (fewer page faults) or into a second buffer (less
  // cache traffic). The buffer is wiped at the end.
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  threads = static_cast<unsigned>(std::min<size_t>(threads, std::max<size_t>(1, wanted.size())));
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::optional<Error> error;
  auto fail = [&](Error e) {
    std::lock_guard lock(mu);
    if (!error) error = std::move(e);
    failed = true;
  };
  uint64_t unit_cap = 0;
  for (const auto& u : wanted) unit_cap = std::max(unit_cap, u.length);
  RunOnThreads(threads, [&] {
    std::vector<unsigned char> buf(unit_cap + crypto::UnitCipher::kTagBytes);
    for (size_t i; !failed && (i = next.fetch_add(1)) < wanted.size();) {
      const Unit& u = wanted[i];
      const size_t n = u.length + crypto::UnitCipher::kTagBytes;
      if (auto st = PreadAll(fd, buf.data(), n, u.cipher_offset); !st) {
        fail(st.error());
      } else if (!cipher.Open(u.index, UnitAd(binding, u.index, u.plain_offset, u.length),
                              buf.data(), n, buf.data())) {
        fail(tampered("a unit does not authenticate").error());
      } else if (auto w = mem.WriteAt(u.plain_offset, {reinterpret_cast<const char*>(buf.data()),
                                                        u.length});
                 !w) {
        fail(w.error());
      }
    }
    sodium_memzero(buf.data(), buf.size());
  });
  if (error) return std::unexpected(*error);
  return mem;
}

}  // namespace cr::room
