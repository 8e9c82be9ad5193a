#include "budget/ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <span>

#include "audit/audit_log.h"
#include "common/files.h"

namespace cr::budget {
namespace {

using nlohmann::json;

constexpr std::string_view kGenesis =
    "0000000000000000000000000000000000000000000000000000000000000000";
constexpr char kAnswerKeyContext[8] = {'c', 'r', 'b', 'u', 'd', 'g', 'e', 't'};
// The audit details key of a charge's record of the ledger's head.
constexpr const char* kAnchorKey = "budget";

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// ----- Calendar (proleptic Gregorian, UTC; Hinnant's days_from_civil) -------------

long long DaysFromCivil(long long y, unsigned m, unsigned d) {
  y -= m <= 2;
  const long long era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<long long>(doe) - 719468;
}

void CivilFromDays(long long z, long long* y, unsigned* m, unsigned* d) {
  z += 719468;
  const long long era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<long long>(yoe) + era * 400 + (*m <= 2);
}

std::string DayStamp(long long days) {
  long long y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  return fmt::format("{:04}-{:02}-{:02}T00:00:00Z", y, m, d);
}

// Seconds since the epoch of an entry's "time" (RFC 3339 UTC, as Clock writes it); 0 if malformed.
long long ParseStamp(const std::string& t) {
  long long y;
  unsigned mo, d, h, mi, sec;
  if (std::sscanf(t.c_str(), "%lld-%u-%uT%u:%u:%uZ", &y, &mo, &d, &h, &mi, &sec) != 6) return 0;
  return DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
}

long long FloorDiv(long long a, long long b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// ----- Entries ------------------------------------------------------------------------

bool IsQueryKey(std::string_view key) {
  if (key.size() != 64) return false;
  for (char c : key) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

int64_t ToUnits(double epsilon) { return std::llround(epsilon / kEpsilonUnit); }
double FromUnits(int64_t units) { return static_cast<double>(units) * kEpsilonUnit; }

std::string EntryHash(const json& entry) {
  json body = entry;
  body.erase("hash");
  body.erase("sig");
  return ToHex(crypto::Sha256(Dump(body)));
}

struct Field {
  const char* name;
  bool (json::*is)() const noexcept;
};
using Fields = std::span<const Field>;

// A charge of epsilon in budget.log.
constexpr Field kChargeFields[] = {
    {"seq", &json::is_number_unsigned},   {"time", &json::is_string},
    {"period", &json::is_string},         {"query_key", &json::is_string},
    {"party", &json::is_string},          {"epsilon", &json::is_number},
    {"units", &json::is_number_unsigned}, {"prev", &json::is_string},
    {"hash", &json::is_string},           {"sig", &json::is_string},
};
// A query counted against usage budgets in usage.log: "uses" lists
// {"dataset", "per", "period"} for each dataset with max_queries it touched.
constexpr Field kUseFields[] = {
    {"seq", &json::is_number_unsigned}, {"time", &json::is_string}, {"party", &json::is_string},
    {"uses", &json::is_array},          {"prev", &json::is_string}, {"hash", &json::is_string},
    {"sig", &json::is_string},
};

// Why `e` is not a well-formed entry with `fields` signed by `room`; empty when it is.
std::string CheckEntry(const json& e, const crypto::PublicIdentity& room, Fields fields) {
  if (!e.is_object()) return "is not a JSON object (changed)";
  for (const auto& f : fields) {
    auto it = e.find(f.name);
    if (it == e.end() || !((*it).*(f.is))()) return fmt::format("lacks a valid \"{}\" field (changed)", f.name);
  }
  if (e.size() != fields.size()) return "has unexpected fields (changed)";
  const std::string& hash = e["hash"].get_ref<const std::string&>();
  if (EntryHash(e) != hash) return "was changed: its hash does not match its contents";
  std::string raw_hash;
  auto sig = crypto::Base64Decode(e["sig"].get_ref<const std::string&>());
  if (!FromHex(hash, &raw_hash) || !sig || !crypto::Verify(room, raw_hash, *sig)) {
    return "has a bad signature: not signed by the room key";
  }
  return "";
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);  // also releases the flock
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Status Lock(int fd, int how, const std::string& path) {
  while (::flock(fd, how) != 0) {
    if (errno != EINTR) return Fail(ErrorCode::INTERNAL, "cannot lock {}: {}", path, strerror(errno));
  }
  return Ok();
}

Result<std::string> ReadAllFd(int fd, const std::string& path) {
  std::string data;
  char buf[65536];
  off_t at = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail(ErrorCode::FILE_UNREADABLE, "cannot read {}", path);
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    at += n;
  }
  return data;
}

// Every entry of the log, each checked: parses, signed by the room, hashed
// right, seq 1..n, each chained to the one before. A damaged ledger cannot be
// trusted to say what was spent, so every reader and writer refuses it.
Result<std::vector<json>> VerifiedEntries(std::string_view data, const std::string& path,
                                          const crypto::PublicIdentity& room,
                                          Fields fields = kChargeFields) {
  std::vector<json> out;
  std::string prev(kGenesis);
  size_t start = 0, line_no = 0;
  while (start < data.size()) {
    ++line_no;
    size_t nl = data.find('\n', start);
    if (nl == std::string_view::npos) {
      return Fail(ErrorCode::AUDIT_CHAIN_BROKEN, "{}: line {} is incomplete (truncated)", path, line_no);
    }
    json e = json::parse(data.substr(start, nl - start), nullptr, false);
    start = nl + 1;
    if (e.is_discarded()) return Fail(ErrorCode::AUDIT_CHAIN_BROKEN, "{}: line {} does not parse", path, line_no);
    if (std::string why = CheckEntry(e, room, fields); !why.empty()) {
      return Fail(ErrorCode::AUDIT_CHAIN_BROKEN, "{}: line {} {}", path, line_no, why);
    }
    if (e["seq"].get<uint64_t>() != line_no || e["prev"].get_ref<const std::string&>() != prev) {
      return Fail(ErrorCode::AUDIT_CHAIN_BROKEN,
                  "{}: line {} does not chain to the entry before it (inserted, deleted or reordered)",
                  path, line_no);
    }
    prev = e["hash"].get<std::string>();
    out.push_back(std::move(e));
  }
  return out;
}

// `while_locked` runs on the entries before the shared lock is let go.
using EntriesCheck = std::function<Status(const std::vector<json>&)>;

Result<std::vector<json>> ReadLedger(const std::string& path, const crypto::PublicIdentity& room,
                                     Fields fields = kChargeFields,
                                     const EntriesCheck& while_locked = {}) {
  if (!PathExists(path)) {
    std::vector<json> none;
    if (while_locked) CR_TRY(while_locked(none));
    return none;
  }
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Fail(ErrorCode::FILE_UNREADABLE, "cannot open {}", path);
  CR_TRY(Lock(fd.get(), LOCK_SH, path));  // never read a line half-appended
  CR_ASSIGN(std::string data, ReadAllFd(fd.get(), path));
  CR_ASSIGN(std::vector<json> entries, VerifiedEntries(data, path, room, fields));
  if (while_locked) CR_TRY(while_locked(entries));
  return entries;
}

// A chain cut back to an earlier prefix (an old copy put back, the last lines
// deleted, the file removed) is still a valid chain: only something outside
// the ledger can tell. Every charge records the ledger's new head (seq and
// hash) in the audit log, and the ledger must pass through the last head
// recorded there. Entries after it are the room's own (a crash between the two
// appends), and more entries only ever mean more spent, so they are accepted.
Status CheckAgainstAnchor(const std::vector<json>& entries, const std::string& audit_path,
                          const crypto::PublicIdentity& room, const char* anchor_key = kAnchorKey,
                          std::string_view file = "budget.log") {
  if (!PathExists(audit_path)) return Ok();  // a bare ledger (tests); a room always has its log
  CR_ASSIGN(json anchor, audit::LastEntryWith(audit_path, room, anchor_key));
  if (anchor.is_null()) return Ok();  // nothing charged since ledgers were anchored
  const json& mark = anchor["details"][anchor_key];
  if (!mark.is_object() || !mark.contains("seq") || !mark["seq"].is_number_unsigned() ||
      mark["seq"].get<uint64_t>() == 0 || !mark.contains("hash") || !mark["hash"].is_string()) {
    return Fail(ErrorCode::TAMPERED, "the room's audit log holds a malformed budget record");
  }
  const uint64_t seq = mark["seq"].get<uint64_t>();
  if (entries.size() < seq) {
    return Fail(ErrorCode::TAMPERED,
                "the room's {} has {} entries but its audit log records {}: an older copy "
                "was put back, or entries were cut off",
                file, entries.size(), seq);
  }
  if (entries[seq - 1]["hash"] != mark["hash"]) {
    return Fail(ErrorCode::TAMPERED,
                "the room's {} is not the ledger its audit log records (entry {} "
                "differs): the file was replaced",
                file, seq);
  }
  return Ok();
}

// A ledger read and checked against the audit log's anchor under one shared
// lock: a writer appends its entry and then its anchor while it holds the
// lock exclusively, so a reader that let go in between could see the anchor
// of an entry it had not read and take a live ledger for a rolled-back one.
Result<std::vector<json>> ReadAnchored(const std::string& path, const crypto::PublicIdentity& room,
                                       Fields fields, const std::string& audit_path,
                                       const char* anchor_key, std::string_view file) {
  return ReadLedger(path, room, fields, [&](const std::vector<json>& entries) {
    return CheckAgainstAnchor(entries, audit_path, room, anchor_key, file);
  });
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

// Hashes, signs and appends `entry` to the locked log `fd` (`size` bytes
// long before), fsynced; a partial line is cut off again.
Status AppendSigned(int fd, off_t size, const crypto::Identity& room_key, const std::string& path,
                    const std::string& dir, json* entry) {
  std::string raw_hash = crypto::Sha256(Dump(*entry));
  (*entry)["hash"] = ToHex(raw_hash);
  (*entry)["sig"] = crypto::Base64Encode(room_key.Sign(raw_hash));
  std::string line = Dump(*entry);
  line.push_back('\n');
  Status written = WriteAll(fd, line, path);
  if (written && ::fsync(fd) != 0) {
    written = Fail(ErrorCode::INTERNAL, "cannot sync {}: {}", path, strerror(errno));
  }
  if (!written) {
    // A partial line would break the chain for every later query: roll it back.
    if (::ftruncate(fd, size) != 0 || ::fsync(fd) != 0) {
      written.error().message += "; the partial line could not be removed";
    }
    return std::unexpected(written.error());
  }
  if (size == 0) CR_TRY(SyncDir(dir));
  return Ok();
}

}  // namespace

Result<Period> PeriodAt(std::string_view refresh, long long unix_seconds) {
  const long long days = FloorDiv(unix_seconds, 86400);
  long long y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  if (refresh == "none") return Period{"all", "", ""};
  if (refresh == "daily") {
    return Period{fmt::format("{:04}-{:02}-{:02}", y, m, d), DayStamp(days), DayStamp(days + 1)};
  }
  if (refresh == "monthly") {
    long long start = DaysFromCivil(y, m, 1);
    long long end = m == 12 ? DaysFromCivil(y + 1, 1, 1) : DaysFromCivil(y, m + 1, 1);
    return Period{fmt::format("{:04}-{:02}", y, m), DayStamp(start), DayStamp(end)};
  }
  if (refresh == "weekly") {
    // ISO 8601 weeks start on Monday; the week belongs to the year of its
    // Thursday. 1970-01-01 was a Thursday.
    long long monday = days - ((days % 7 + 7 + 3) % 7);
    long long thursday = monday + 3;
    long long ty;
    unsigned tm, td;
    CivilFromDays(thursday, &ty, &tm, &td);
    long long week = (thursday - DaysFromCivil(ty, 1, 1)) / 7 + 1;
    return Period{fmt::format("{:04}-W{:02}", ty, week), DayStamp(monday), DayStamp(monday + 7)};
  }
  return Fail(ErrorCode::SPEC_INVALID, "privacy.dp.refresh must be none, daily, weekly or monthly");
}

Ledger::Ledger(const std::string& room_dir, const crypto::Identity& room_key, const spec::Dp& dp,
               const Clock& clock)
    : room_dir_(room_dir),
      log_path_(JoinPath(room_dir, "budget.log")),
      audit_path_(JoinPath(room_dir, "audit.log")),
      answers_dir_(JoinPath(room_dir, "budget-answers")),
      room_key_(&room_key),
      dp_(dp),
      clock_(&clock),
      total_units_(ToUnits(dp.epsilon)) {}

Result<Ledger> Ledger::Open(const std::string& room_dir, const crypto::Identity& room_key,
                            const spec::Dp& dp, const Clock& clock) {
  if (!std::isfinite(dp.epsilon) || dp.epsilon <= 0 || dp.epsilon > 1e6) {
    return Fail(ErrorCode::BAD_INPUT, "privacy.dp.epsilon must be a number in (0, 1e6]");
  }
  CR_TRY(PeriodAt(dp.refresh, clock.NowUnix()));
  Ledger ledger(room_dir, room_key, dp, clock);
  CR_TRY(ReadAnchored(ledger.log_path_, room_key.pub(), kChargeFields, ledger.audit_path_,
                      kAnchorKey, "budget.log"));
  return ledger;
}

std::string Ledger::AnswerPath(const std::string& period, const std::string& query_key) const {
  // Both parts are validated (period ids are made here, keys are hex).
  return JoinPath(answers_dir_, period + "." + query_key + ".ans");
}

Result<Charge> Ledger::Spend(const std::string& query_key, double epsilon, const std::string& party) {
  if (!IsQueryKey(query_key)) {
    return Fail(ErrorCode::BAD_INPUT, "query key must be 64 lower-case hex digits");
  }
  if (!std::isfinite(epsilon) || epsilon <= 0) {
    return Fail(ErrorCode::BAD_INPUT, "epsilon to spend must be a positive number");
  }
  const int64_t units = ToUnits(epsilon);
  if (units < 1) return Fail(ErrorCode::BAD_INPUT, "epsilon to spend is below the ledger's unit (1e-12)");
  if (party.empty()) return Fail(ErrorCode::BAD_INPUT, "the spending party is not named");

  Fd fd(::open(log_path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (fd.get() < 0) return Fail(ErrorCode::INTERNAL, "cannot open {}: {}", log_path_, strerror(errno));
  // Held until fd closes: read, check and append are one step, so two
  // processes can never both see the same remaining budget.
  CR_TRY(Lock(fd.get(), LOCK_EX, log_path_));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Fail(ErrorCode::INTERNAL, "cannot stat {}", log_path_);
  CR_ASSIGN(std::string data, ReadAllFd(fd.get(), log_path_));
  CR_ASSIGN(std::vector<json> entries, VerifiedEntries(data, log_path_, room_key_->pub()));
  // Again under the lock: the file may have been put back since Open.
  CR_TRY(CheckAgainstAnchor(entries, audit_path_, room_key_->pub()));
  CR_ASSIGN(Period period, PeriodAt(dp_.refresh, clock_->NowUnix()));

  int64_t spent = 0;
  bool charged_before = false;
  for (const json& e : entries) {
    if (e["period"] != period.id) continue;
    spent += e["units"].get<int64_t>();
    if (e["query_key"] == query_key) charged_before = true;
  }
  if (charged_before) {
    const std::string path = AnswerPath(period.id, query_key);
    if (PathExists(path)) {
      CR_ASSIGN(std::string sealed, ReadFile(path));
      crypto::SecureBuffer key = room_key_->DeriveKey(1, kAnswerKeyContext);
      auto plain = crypto::AeadOpen(key, sealed, period.id + "/" + query_key);
      if (!plain) return Fail(ErrorCode::TAMPERED, "a stored answer in {} does not open (changed)", answers_dir_);
      return Charge{true, std::string(plain->view()), 0};
    }
    // Charged but never answered (the query failed after paying): it runs
    // again and pays again, so a missing answer can never be had for free.
  }
  if (spent > total_units_ - units) {
    return Fail(ErrorCode::BUDGET_EXHAUSTED,
                "the query needs epsilon {} but {} of {} is left in period {}", epsilon,
                FromUnits(total_units_ - spent), dp_.epsilon, period.id);
  }

  json entry = {
      {"seq", entries.size() + 1},
      {"time", clock_->NowRfc3339()},
      {"period", period.id},
      {"query_key", query_key},
      {"party", party},
      {"epsilon", epsilon},
      {"units", units},
      {"prev", entries.empty() ? std::string(kGenesis) : entries.back()["hash"].get<std::string>()},
  };
  CR_TRY(AppendSigned(fd.get(), st.st_size, *room_key_, log_path_, room_dir_, &entry));
  // Still under the ledger's lock, so heads reach the audit log in ledger
  // order. If this append fails the charge stands (fail closed: budget spent,
  // nothing released) and the ledger is one entry ahead of its anchor.
  audit::AuditLog log(audit_path_, *room_key_, *clock_);
  CR_TRY(log.Append("budget.charge", party,
                    {{kAnchorKey, {{"seq", entries.size() + 1}, {"hash", entry["hash"]}}},
                     {"period", period.id},
                     {"epsilon", epsilon}}));
  return Charge{false, "", epsilon};
}

Status Ledger::StoreAnswer(const std::string& query_key, std::string_view answer) {
  if (!IsQueryKey(query_key)) {
    return Fail(ErrorCode::BAD_INPUT, "query key must be 64 lower-case hex digits");
  }
  CR_ASSIGN(std::vector<json> entries, ReadLedger(log_path_, room_key_->pub()));
  // The answer belongs to the period that paid for it, even when the clock
  // has moved on into the next one while the query ran.
  std::string period;
  for (const json& e : entries) {
    if (e["query_key"] == query_key) period = e["period"].get<std::string>();
  }
  if (period.empty()) {
    return Fail(ErrorCode::BAD_INPUT, "no charge for this query key: an unpaid answer is not stored");
  }
  CR_TRY(MakeDirs(answers_dir_, 0700));
  crypto::SecureBuffer key = room_key_->DeriveKey(1, kAnswerKeyContext);
  std::string sealed = crypto::AeadSeal(key, answer, period + "/" + query_key);
  return WriteFileAtomic(AnswerPath(period, query_key), sealed, 0600);
}

Result<size_t> Ledger::Rekey(const std::string& from_dir, const std::string& to_dir,
                             const crypto::Identity& from, const crypto::Identity& to) {
  size_t rewritten = 0;
  // Both signed logs (the budget's and the query counts') keep their hashes
  // and chain; each entry is signed again by the new key.
  auto resign = [&](const char* name, Fields fields) -> Status {
    const std::string log = JoinPath(from_dir, name);
    if (!PathExists(log)) return Ok();
    CR_ASSIGN(std::vector<json> entries, ReadLedger(log, from.pub(), fields));
    std::string text;
    for (json& e : entries) {
      std::string raw_hash;
      if (!FromHex(e["hash"].get<std::string>(), &raw_hash)) {
        return Fail(ErrorCode::TAMPERED, "the room's {} holds a malformed hash", name);
      }
      e["sig"] = crypto::Base64Encode(to.Sign(raw_hash));
      text += Dump(e) + "\n";
      ++rewritten;
    }
    return WriteFileAtomic(JoinPath(to_dir, name), text, 0600);
  };
  CR_TRY(resign("budget.log", kChargeFields));
  CR_TRY(resign("usage.log", kUseFields));
  const std::string answers = JoinPath(from_dir, "budget-answers");
  if (!PathExists(answers)) return rewritten;
  CR_TRY(MakeDirs(JoinPath(to_dir, "budget-answers"), 0700));
  const crypto::SecureBuffer old_key = from.DeriveKey(1, kAnswerKeyContext);
  const crypto::SecureBuffer new_key = to.DeriveKey(1, kAnswerKeyContext);
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator(answers, ec)) {
    const std::string name = f.path().filename().string();
    // PERIOD.QUERYKEY.ans, bound to "PERIOD/QUERYKEY" (AnswerPath).
    const size_t dot = name.size() > 4 ? name.rfind('.', name.size() - 5) : std::string::npos;
    if (!name.ends_with(".ans") || dot == std::string::npos) continue;
    const std::string ad = name.substr(0, dot) + "/" + name.substr(dot + 1, name.size() - dot - 5);
    CR_ASSIGN(std::string sealed, ReadFile(f.path().string()));
    auto plain = crypto::AeadOpen(old_key, sealed, ad);
    if (!plain) return Fail(ErrorCode::TAMPERED, "a stored answer in {} does not open (changed)", answers);
    CR_TRY(WriteFileAtomic(JoinPath(JoinPath(to_dir, "budget-answers"), name),
                           crypto::AeadSeal(new_key, plain->view(), ad), 0600));
    ++rewritten;
  }
  if (ec) return Fail(ErrorCode::INTERNAL, "cannot list {}: {}", answers, ec.message());
  return rewritten;
}

Result<Summary> Ledger::Summarize() const {
  CR_ASSIGN(std::vector<Summary> all, History());
  return all.back();  // History always ends with the current period
}

Result<std::vector<Summary>> Ledger::History() const {
  CR_ASSIGN(std::vector<json> entries, ReadLedger(log_path_, room_key_->pub()));
  CR_ASSIGN(Period current, PeriodAt(dp_.refresh, clock_->NowUnix()));
  std::vector<std::string> order;
  std::map<std::string, std::pair<int64_t, int64_t>> totals;  // id -> (units, queries)
  std::map<std::string, Period> periods;
  periods[current.id] = current;
  for (const json& e : entries) {
    std::string id = e["period"].get<std::string>();
    if (!totals.count(id)) {
      order.push_back(id);
      // The bounds of a past period, from when its first entry was written.
      auto p = PeriodAt(dp_.refresh, ParseStamp(e["time"].get<std::string>()));
      if (!periods.count(id)) periods[id] = p && p->id == id ? *p : Period{id, "", ""};
    }
    totals[id].first += e["units"].get<int64_t>();
    totals[id].second += 1;
  }
  if (!totals.count(current.id)) order.push_back(current.id);
  std::vector<Summary> out;
  for (const std::string& id : order) {
    Summary s;
    s.epsilon_total = FromUnits(total_units_);
    s.epsilon_spent = FromUnits(totals[id].first);
    s.epsilon_left = FromUnits(std::max<int64_t>(0, total_units_ - totals[id].first));
    s.queries = totals[id].second;
    s.period = periods[id];
    out.push_back(s);
  }
  // The current period last, whatever the clock did (an older id can follow).
  for (size_t i = 0; i + 1 < out.size(); ++i) {
    if (out[i].period.id == current.id) {
      Summary cur = out[i];
      out.erase(out.begin() + static_cast<long>(i));
      out.push_back(cur);
      break;
    }
  }
  return out;
}

// ----- Usage budgets ------------------------------------------------------------------

namespace {

constexpr const char* kUsageAnchorKey = "usage";

Result<std::string> UsageRefresh(const std::string& per) {
  if (per == "day") return std::string("daily");
  if (per == "week") return std::string("weekly");
  if (per == "month") return std::string("monthly");
  if (per == "lifetime") return std::string("none");
  return Fail(ErrorCode::SPEC_INVALID, "max_queries.per must be day, week, month or lifetime");
}

// Queries already counted for `limit` in its current window.
int64_t UsedIn(const std::vector<json>& entries, const UsageLimit& limit,
               const std::string& period) {
  int64_t used = 0;
  for (const json& e : entries) {
    for (const json& u : e["uses"]) {
      if (u.is_object() && u.value("dataset", "") == limit.dataset &&
          u.value("per", "") == limit.max.per && u.value("period", "") == period) {
        ++used;
      }
    }
  }
  return used;
}

Result<std::vector<UsageCount>> CountAll(const std::vector<json>& entries,
                                         const std::vector<UsageLimit>& limits,
                                         const Clock& clock) {
  std::vector<UsageCount> out;
  for (const UsageLimit& l : limits) {
    CR_ASSIGN(std::string refresh, UsageRefresh(l.max.per));
    CR_ASSIGN(Period p, PeriodAt(refresh, clock.NowUnix()));
    out.push_back({l, p, UsedIn(entries, l, p.id)});
  }
  return out;
}

}  // namespace

UsageLedger::UsageLedger(const std::string& room_dir, const crypto::Identity& room_key,
                         const Clock& clock)
    : room_dir_(room_dir),
      log_path_(JoinPath(room_dir, "usage.log")),
      audit_path_(JoinPath(room_dir, "audit.log")),
      room_key_(&room_key),
      clock_(&clock) {}

Result<UsageLedger> UsageLedger::Open(const std::string& room_dir, const crypto::Identity& room_key,
                                      const Clock& clock) {
  UsageLedger ledger(room_dir, room_key, clock);
  CR_TRY(ReadAnchored(ledger.log_path_, room_key.pub(), kUseFields, ledger.audit_path_,
                      kUsageAnchorKey, "usage.log"));
  return ledger;
}

Result<std::vector<UsageCount>> UsageLedger::Counts(const std::vector<UsageLimit>& limits) const {
  CR_ASSIGN(std::vector<json> entries, ReadLedger(log_path_, room_key_->pub(), kUseFields));
  return CountAll(entries, limits, *clock_);
}

UsageLedger::Reservation::~Reservation() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock: nothing was counted
}

UsageLedger::Reservation::Reservation(Reservation&& o) noexcept
    : fd_(o.fd_),
      size_(o.size_),
      room_dir_(std::move(o.room_dir_)),
      log_path_(std::move(o.log_path_)),
      audit_path_(std::move(o.audit_path_)),
      room_key_(o.room_key_),
      clock_(o.clock_),
      entry_(std::move(o.entry_)) {
  o.fd_ = -1;
}

Result<UsageLedger::Reservation> UsageLedger::Reserve(const std::vector<UsageLimit>& limits,
                                                      const std::string& party) const {
  if (party.empty()) return Fail(ErrorCode::BAD_INPUT, "the querying party is not named");
  Reservation r;
  r.room_dir_ = room_dir_;
  r.log_path_ = log_path_;
  r.audit_path_ = audit_path_;
  r.room_key_ = room_key_;
  r.clock_ = clock_;
  r.fd_ = ::open(log_path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (r.fd_ < 0) return Fail(ErrorCode::INTERNAL, "cannot open {}: {}", log_path_, strerror(errno));
  // Held until Commit or the reservation ends: two queries never both take
  // the last query of a budget.
  CR_TRY(Lock(r.fd_, LOCK_EX, log_path_));
  struct stat st;
  if (::fstat(r.fd_, &st) != 0) return Fail(ErrorCode::INTERNAL, "cannot stat {}", log_path_);
  r.size_ = st.st_size;
  CR_ASSIGN(std::string data, ReadAllFd(r.fd_, log_path_));
  CR_ASSIGN(std::vector<json> entries,
            VerifiedEntries(data, log_path_, room_key_->pub(), kUseFields));
  CR_TRY(CheckAgainstAnchor(entries, audit_path_, room_key_->pub(), kUsageAnchorKey, "usage.log"));
  CR_ASSIGN(std::vector<UsageCount> counts, CountAll(entries, limits, *clock_));
  json uses = json::array();
  for (const UsageCount& c : counts) {
    if (c.used >= c.limit.max.count) {
      return Fail(ErrorCode::USAGE_EXHAUSTED,
                  "dataset {} allows {} queries per {} and all {} are used in period {}",
                  c.limit.dataset, c.limit.max.count, c.limit.max.per, c.used, c.period.id);
    }
    uses.push_back(
        {{"dataset", c.limit.dataset}, {"per", c.limit.max.per}, {"period", c.period.id}});
  }
  r.entry_ = {
      {"seq", entries.size() + 1},
      {"time", clock_->NowRfc3339()},
      {"party", party},
      {"uses", std::move(uses)},
      {"prev", entries.empty() ? std::string(kGenesis) : entries.back()["hash"].get<std::string>()},
  };
  return r;
}

Status UsageLedger::Reservation::Commit() {
  if (fd_ < 0) return Fail(ErrorCode::INTERNAL, "a usage reservation was committed twice");
  json entry = entry_;
  CR_TRY(AppendSigned(fd_, size_, *room_key_, log_path_, room_dir_, &entry));
  // Still under the lock, so heads reach the audit log in ledger order. If
  // this append fails the query stays counted (fail closed) and is refused.
  audit::AuditLog log(audit_path_, *room_key_, *clock_);
  json datasets = json::array();
  for (const json& u : entry["uses"]) datasets.push_back(u["dataset"]);
  Status st = log.Append("usage.charge", entry["party"].get<std::string>(),
                         {{kUsageAnchorKey, {{"seq", entry["seq"]}, {"hash", entry["hash"]}}},
                          {"datasets", std::move(datasets)}});
  ::close(fd_);
  fd_ = -1;
  return st;
}

std::vector<UsageLimit> UsageLimits(const spec::Spec& spec,
                                    const std::vector<std::string>& datasets) {
  std::vector<UsageLimit> out;
  for (const auto& name : datasets) {
    const spec::Dataset* d = spec.FindDataset(name);
    if (d && d->rule.max_queries) out.push_back({name, *d->rule.max_queries});
  }
  return out;
}

}  // namespace cr::budget
