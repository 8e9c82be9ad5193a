#include "audit/audit_log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>

#include "common/files.h"

namespace cr::audit {
namespace {

using nlohmann::json;

// Replacing invalid UTF-8 (instead of throwing) keeps Append total and the
// serialisation stable: what is written re-parses and re-dumps to the same bytes.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Hex SHA-256 of the entry without "hash" and "sig". nlohmann::json objects are
// std::map-backed, so dump() emits keys sorted: a canonical form for free.
std::string EntryHash(const json& entry) {
  json body = entry;
  body.erase("hash");
  body.erase("sig");
  return ToHex(crypto::Sha256(Dump(body)));
}

// Why `entry` is not a well-formed, correctly hashed entry signed by `room_pub`;
// empty when it is. Reasons name fields, never their contents.
std::string CheckEntry(const json& entry, const crypto::PublicIdentity& room_pub) {
  if (!entry.is_object()) return "is not a JSON object (changed)";
  struct Field {
    const char* name;
    bool (json::*is)() const noexcept;
  };
  static constexpr Field kFields[] = {
      {"seq", &json::is_number_unsigned}, {"time", &json::is_string},
      {"event", &json::is_string},        {"actor", &json::is_string},
      {"details", &json::is_object},      {"prev", &json::is_string},
      {"hash", &json::is_string},         {"sig", &json::is_string},
  };
  for (const auto& f : kFields) {
    auto it = entry.find(f.name);
    if (it == entry.end() || !((*it).*(f.is))()) {
      return fmt::format("lacks a valid \"{}\" field (changed)", f.name);
    }
  }
  if (entry.size() != std::size(kFields)) return "has unexpected fields (changed)";
  if (entry["seq"].get<uint64_t>() == 0) return "has seq 0 (changed)";
  const std::string& hash = entry["hash"].get_ref<const std::string&>();
  if (EntryHash(entry) != hash) return "was changed: its hash does not match its contents";
  std::string raw_hash, sig;
  auto decoded = crypto::Base64Decode(entry["sig"].get_ref<const std::string&>());
  if (!FromHex(hash, &raw_hash) || !decoded || !crypto::Verify(room_pub, raw_hash, *decoded)) {
    return "has a bad signature: not signed by the room key (forged, or changed and re-hashed)";
  }
  return "";
}

// When `entry` is a rotation record into `after` whose countersignature by
// `after` verifies: the key that signs it and the entries before it.
std::optional<crypto::PublicIdentity> KeyBefore(const json& entry,
                                                const crypto::PublicIdentity& after) {
  if (!entry.is_object() || !entry.contains("event") || !entry["event"].is_string() ||
      entry["event"].get<std::string>() != kRotateEvent ||
      !entry.contains("details") || !entry["details"].is_object() || !entry.contains("prev") ||
      !entry["prev"].is_string()) {
    return std::nullopt;
  }
  const json& d = entry["details"];
  for (const char* f : {"previous_room_key", "new_room_key", "new_key_sig"}) {
    if (!d.contains(f) || !d[f].is_string()) return std::nullopt;
  }
  auto to = crypto::PublicIdentity::FromText(d["new_room_key"].get<std::string>());
  auto from = crypto::PublicIdentity::FromText(d["previous_room_key"].get<std::string>());
  auto sig = crypto::Base64Decode(d["new_key_sig"].get<std::string>());
  if (!to || !from || !sig || *to != after) return std::nullopt;
  if (!crypto::Verify(after, RotationMessage(entry["prev"].get<std::string>(), *from, after), *sig)) {
    return std::nullopt;
  }
  return *from;
}

// The key a checked rotation record passes the log to.
std::optional<crypto::PublicIdentity> KeyAfter(const json& entry) {
  if (!entry.is_object() || !entry.contains("details") || !entry["details"].is_object() ||
      !entry["details"].contains("new_room_key") || !entry["details"]["new_room_key"].is_string()) {
    return std::nullopt;
  }
  auto to = crypto::PublicIdentity::FromText(entry["details"]["new_room_key"].get<std::string>());
  if (!to || !KeyBefore(entry, *to)) return std::nullopt;
  return *to;
}

// CheckEntry for the last line, which may be the rotation into `room_pub`
// (signed by the key before it).
std::string CheckTailEntry(const json& entry, const crypto::PublicIdentity& room_pub) {
  // After a rotation away from this key, only the next key extends the log.
  if (auto to = KeyAfter(entry); to && *to != room_pub) {
    return "hands the log to another room key: this key no longer signs it";
  }
  std::string why = CheckEntry(entry, room_pub);
  if (!why.empty()) {
    if (auto from = KeyBefore(entry, room_pub)) why = CheckEntry(entry, *from);
  }
  return why;
}

struct Lines {
  std::vector<std::string_view> lines;
  bool last_incomplete = false;  // the file does not end with '\n'
};

Lines SplitLines(std::string_view data) {
  Lines out;
  size_t start = 0;
  while (start < data.size()) {
    size_t nl = data.find('\n', start);
    if (nl == std::string_view::npos) {
      out.lines.push_back(data.substr(start));
      out.last_incomplete = true;
      break;
    }
    out.lines.push_back(data.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

json Parse(std::string_view line) { return json::parse(line, nullptr, /*allow_exceptions=*/false); }

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Status PreadAll(int fd, char* buf, size_t len, off_t at, const std::string& path) {
  while (len > 0) {
    ssize_t n = ::pread(fd, buf, len, at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Fail(ErrorCode::FILE_UNREADABLE, "cannot read {}", path);
    buf += n;
    len -= static_cast<size_t>(n);
    at += n;
  }
  return Ok();
}

// The last line of a non-empty file, without its '\n', read backwards in
// blocks so appending stays O(entry) however long the log grows.
Result<std::string> ReadLastLine(int fd, off_t size, const std::string& path) {
  char last = 0;
  CR_TRY(PreadAll(fd, &last, 1, size - 1, path));
  if (last != '\n') {
    return Fail(ErrorCode::AUDIT_CHAIN_BROKEN,
                "{}: the last line is incomplete (the log was cut mid-entry); refusing to append",
                path);
  }
  std::string tail;
  off_t pos = size - 1;
  constexpr off_t kBlock = 4096;
  while (pos > 0) {
    off_t n = std::min(pos, kBlock);
    std::string block(static_cast<size_t>(n), '\0');
    CR_TRY(PreadAll(fd, block.data(), block.size(), pos - n, path));
    size_t nl = block.rfind('\n');
    if (nl != std::string::npos) {
      tail.insert(0, block, nl + 1);
      return tail;
    }
    tail.insert(0, block);
    pos -= n;
  }
  return tail;
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail(ErrorCode::INTERNAL, "cannot write {}: {}", path, strerror(errno));
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Ok();
}

}  // namespace

std::string RotationMessage(std::string_view prev_hash, const crypto::PublicIdentity& from,
                            const crypto::PublicIdentity& to) {
  return fmt::format("cleanroom room key rotation\n{}\n{}\n{}", prev_hash, from.ToText(), to.ToText());
}

AuditLog::AuditLog(std::string path, const crypto::Identity& room, const Clock& clock)
    : path_(std::move(path)), room_(room), clock_(clock) {}

std::unexpected<Error> AuditLog::Refuse(std::string_view event, std::string_view actor,
                                        json details, const Error& refusal) {
  if (!details.is_object()) details = json::object();
  details["code"] = CodeName(refusal.code);
  if (auto st = Append(event, actor, details); !st) {
    return std::unexpected(Error{st.error().code,
                                 fmt::format("{} (while recording a refusal with {})",
                                             st.error().message, CodeName(refusal.code))});
  }
  return std::unexpected(refusal);
}

Status AuditLog::CheckTail() const {
  Fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Fail(ErrorCode::AUDIT_CHAIN_BROKEN, "{} is missing or unreadable", path_);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return Fail(ErrorCode::INTERNAL, "cannot stat {}: {}", path_, strerror(errno));
  }
  if (st.st_size == 0) return Fail(ErrorCode::AUDIT_CHAIN_BROKEN, "{} is empty (truncated)", path_);
  CR_ASSIGN(std::string last_line, ReadLastLine(fd.get(), st.st_size, path_));
  json last = Parse(last_line);
  if (last.is_discarded()) {
    return Fail(ErrorCode::AUDIT_CHAIN_BROKEN, "{}: the last line does not parse", path_);
  }
  if (std::string why = CheckTailEntry(last, room_.pub()); !why.empty()) {
    return Fail(ErrorCode::AUDIT_CHAIN_BROKEN, "{}: the last line {}", path_, why);
  }
  return Ok();
}

Status AuditLog::Append(std::string_view event, std::string_view actor, const json& details) {
  return AppendEntry(event, actor, details, nullptr);
}

Status AuditLog::AppendRotation(std::string_view actor, const crypto::Identity& next,
                                const json& details) {
  return AppendEntry(kRotateEvent, actor, details, &next);
}

Status AuditLog::AppendEntry(std::string_view event, std::string_view actor, const json& details,
                             const crypto::Identity* next) {
  if (!details.is_null() && !details.is_object()) {
    return Fail(ErrorCode::INTERNAL, "audit details for event {} must be a JSON object", event);
  }
  Fd fd(::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (fd.get() < 0) return Fail(ErrorCode::INTERNAL, "cannot open {}: {}", path_, strerror(errno));
  // Held until fd closes: another appender must not read the same tail and
  // write a second entry with the same seq.
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR)
      return Fail(ErrorCode::INTERNAL, "cannot lock {}: {}", path_, strerror(errno));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return Fail(ErrorCode::INTERNAL, "cannot stat {}: {}", path_, strerror(errno));
  }

  uint64_t seq = 1;
  std::string prev(kGenesisHash);
  if (st.st_size > 0) {
    CR_ASSIGN(std::string last_line, ReadLastLine(fd.get(), st.st_size, path_));
    json last = Parse(last_line);
    if (last.is_discarded()) {
      return Fail(ErrorCode::AUDIT_CHAIN_BROKEN,
                  "{}: the last line does not parse; refusing to append", path_);
    }
    // Checking the tail (not the whole log) keeps appends cheap while making
    // sure we never sign a chain onto a forged or altered entry.
    if (std::string why = CheckTailEntry(last, room_.pub()); !why.empty()) {
      return Fail(ErrorCode::AUDIT_CHAIN_BROKEN, "{}: the last line {}; refusing to append", path_,
                  why);
    }
    seq = last["seq"].get<uint64_t>() + 1;
    prev = last["hash"].get<std::string>();
  }

  json entry = {
      {"seq", seq},
      {"time", clock_.NowRfc3339()},
      {"event", std::string(event)},
      {"actor", std::string(actor)},
      {"details", details.is_null() ? json::object() : details},
      {"prev", prev},
  };
  if (next) {
    json& d = entry["details"];
    d["previous_room_key"] = room_.pub().ToText();
    d["new_room_key"] = next->pub().ToText();
    d["new_key_sig"] = crypto::Base64Encode(next->Sign(RotationMessage(prev, room_.pub(), next->pub())));
  }
  std::string raw_hash = crypto::Sha256(Dump(entry));
  entry["hash"] = ToHex(raw_hash);
  entry["sig"] = crypto::Base64Encode(room_.Sign(raw_hash));
  std::string line = Dump(entry);
  line.push_back('\n');

  Status written = WriteAll(fd.get(), line, path_);
  if (written && ::fsync(fd.get()) != 0) {
    written = Fail(ErrorCode::INTERNAL, "cannot sync {}: {}", path_, strerror(errno));
  }
  if (!written) {
    // Roll back a partial line so one failed write does not break the chain for good.
    if (::ftruncate(fd.get(), st.st_size) != 0 || ::fsync(fd.get()) != 0) {
      written.error().message += "; the partial line could not be removed (verify the log)";
    }
    return written;
  }
  if (st.st_size == 0) return SyncDir(DirName(path_));  // make the new file's name durable
  return Ok();
}

Result<VerifyReport> Verify(const std::string& path, const crypto::PublicIdentity& room_pub) {
  VerifyReport report{0, std::string(kGenesisHash)};
  if (!PathExists(path)) return report;
  CR_ASSIGN(std::string data, ReadFile(path));
  Lines split = SplitLines(data);

  std::vector<json> entries;
  entries.reserve(split.lines.size());
  for (auto line : split.lines) entries.push_back(Parse(line));

  auto broken = [&](size_t i, std::string_view why) {
    return Fail(ErrorCode::AUDIT_CHAIN_BROKEN, "{}: line {} {}", path, i + 1, why);
  };
  auto seq_of = [&](size_t i) -> uint64_t {
    const json& e = entries[i];
    if (!e.is_object()) return 0;
    auto it = e.find("seq");
    return it != e.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
  };

  // The key of the first entry: back from the current key through every
  // rotation into it (each countersigned by the key it passes to).
  crypto::PublicIdentity key = room_pub;
  for (size_t i = entries.size(); i-- > 0;) {
    if (auto from = KeyBefore(entries[i], key)) key = *from;
  }
  std::string prev_hash(kGenesisHash);
  for (size_t i = 0; i < entries.size(); ++i) {
    const bool last = i + 1 == entries.size();
    if (last && split.last_incomplete) {
      return broken(i, "is incomplete: the log was cut mid-entry (truncated)");
    }
    if (split.lines[i].empty()) return broken(i, "is empty (an entry was blanked out)");
    if (entries[i].is_discarded()) return broken(i, "does not parse (changed)");
    if (std::string why = CheckEntry(entries[i], key); !why.empty()) return broken(i, why);
    if (auto to = KeyAfter(entries[i])) key = *to;

    const uint64_t expected = i + 1;
    const uint64_t seq = seq_of(i);
    if (seq > expected) {
      bool later = false;
      for (size_t j = i + 1; j < entries.size() && !later; ++j) later = seq_of(j) == expected;
      return broken(i, fmt::format("{}: expected seq {}, found {}",
                                   later ? "is out of order (entries reordered)"
                                         : "follows a gap (entries deleted before it)",
                                   expected, seq));
    }
    if (seq < expected) {
      return broken(i,
                    fmt::format("repeats an earlier seq (entry inserted, replayed or reordered): "
                                "expected seq {}, found {}",
                                expected, seq));
    }
    if (entries[i]["prev"].get_ref<const std::string&>() != prev_hash) {
      return broken(i,
                    "does not chain to the entry before it (an entry was inserted, deleted "
                    "or reordered)");
    }
    prev_hash = entries[i]["hash"].get<std::string>();
  }
  if (!entries.empty() && key != room_pub) {
    return broken(entries.size() - 1, "is not signed by the room's current key (room.pub)");
  }
  report.entries = entries.size();
  report.head_hash = prev_hash;
  return report;
}

Result<std::vector<nlohmann::json>> ReadEntries(const std::string& path) {
  std::vector<json> out;
  if (!PathExists(path)) return out;
  CR_ASSIGN(std::string data, ReadFile(path));
  Lines split = SplitLines(data);
  out.reserve(split.lines.size());
  for (size_t i = 0; i < split.lines.size(); ++i) {
    json entry = Parse(split.lines[i]);
    if (entry.is_discarded() || !entry.is_object()) {
      return Fail(ErrorCode::AUDIT_CHAIN_BROKEN, "{}: line {} is not a valid entry", path, i + 1);
    }
    out.push_back(std::move(entry));
  }
  return out;
}

Result<std::map<std::string, json>> LastEntriesWith(const std::string& path,
                                                    const crypto::PublicIdentity& room_pub,
                                                    const std::vector<std::string>& detail_keys) {
  std::map<std::string, json> found;
  for (const auto& k : detail_keys) found[k] = nullptr;
  size_t missing = found.size();
  CR_ASSIGN(auto data, ReadFile(path));
  Lines split = SplitLines(data);
  if (split.last_incomplete) {
    return Fail(ErrorCode::AUDIT_CHAIN_BROKEN, "{}: the last line is incomplete", path);
  }
  std::string next_prev;  // "prev" of the entry after the one being read
  crypto::PublicIdentity key = room_pub;  // the key entries from here back are signed by
  for (size_t i = split.lines.size(); i-- > 0 && missing > 0;) {
    json entry = Parse(split.lines[i]);
    if (entry.is_discarded()) {
      return Fail(ErrorCode::AUDIT_CHAIN_BROKEN, "{}: line {} does not parse", path, i + 1);
    }
    if (auto from = KeyBefore(entry, key)) key = *from;
    if (std::string why = CheckEntry(entry, key); !why.empty()) {
      return Fail(ErrorCode::AUDIT_CHAIN_BROKEN, "{}: line {} {}", path, i + 1, why);
    }
    if (!next_prev.empty() && entry["hash"].get<std::string>() != next_prev) {
      return Fail(ErrorCode::AUDIT_CHAIN_BROKEN, "{}: line {} is not the entry line {} follows",
                  path, i + 1, i + 2);
    }
    next_prev = entry["prev"].get<std::string>();
    for (auto& [k, e] : found) {
      if (e.is_null() && entry["details"].contains(k)) {
        e = entry;
        --missing;
      }
    }
  }
  return found;
}

Result<json> LastEntryWith(const std::string& path, const crypto::PublicIdentity& room_pub,
                           std::string_view detail_key) {
  const std::string k(detail_key);
  CR_ASSIGN(auto found, LastEntriesWith(path, room_pub, {k}));
  return found[k];
}

}  // namespace cr::audit
